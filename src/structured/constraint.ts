// Constrained decoding for one sequence: which tokens may come next so that the text stays a prefix of
// a value the response format accepts (JSON, JSON of a schema, one of an enum's values), and the budget
// rule — a token is allowed only if the shortest completion after it still fits in the tokens left
// (every completion byte can be its own token: byte-level and byte-fallback vocabularies have them).
// So the value closes before maxOutputTokens whenever the budget holds its shortest form; when the
// budget is below even that, the output is the longest valid prefix and ends with MAX_TOKENS.
// End-of-sequence tokens are allowed only where the value is complete.

import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { accepting, canContinue, inFreeString, jsonStart, minRest, rawStart, step, stepAll, wrappedStart, type State } from './automaton.js';
import type { SchemaNode } from './schema.js';
import { vocabularyOf, type Vocabulary } from './vocabulary.js';

/** What the response must be: a JSON value of a schema (ANY for plain JSON mode), or one of raw texts. */
export type ResponseFormat =
  | { kind: 'json'; schema: SchemaNode }
  | { kind: 'enum'; values: string[] }
  /** A JSON value between fixed texts (a tool call in the template's markup). */
  | { kind: 'wrapped'; prefix: string; schema: SchemaNode; suffix: string }
  /** Any one of several formats (a tool call or a JSON answer), decided by the bytes written. */
  | { kind: 'union'; options: ResponseFormat[] };

/** The automaton's start state for a format: a union starts every option's threads. */
function startState(format: ResponseFormat): State {
  switch (format.kind) {
    case 'json': return jsonStart(format.schema);
    case 'enum': return rawStart(format.values);
    case 'wrapped': return wrappedStart(format.prefix, format.schema, format.suffix);
    case 'union': return format.options.flatMap(startState);
  }
}

export class TokenConstraint {
  private state: State;
  private readonly vocab: Vocabulary;

  constructor(tokenizer: Tokenizer, size: number, format: ResponseFormat, private readonly stopIds: readonly number[]) {
    this.vocab = vocabularyOf(tokenizer, size);
    this.state = startState(format);
  }

  /** The value is complete: the text may end here. */
  get complete(): boolean {
    return accepting(this.state);
  }

  /** Complete, and no byte can follow. */
  get closed(): boolean {
    return !canContinue(this.state);
  }

  /**
   * The ids that may come next, `left` tokens including this one. Never empty while the sequence can
   * go on: if the budget rule leaves nothing, the rule is dropped (the value will be cut off).
   */
  allowed(left: number): Int32Array {
    const within = (s: State) => minRest(s) <= left - 1;
    const v = this.vocab;
    if (inFreeString(this.state)) {
      // Plain tokens keep the state as it is: all or none of them, by the budget (one typed copy).
      const plain = within(this.state);
      const extra: number[] = [];
      for (const id of v.special) {
        const s = stepAll(this.state, v.bytes[id]!);
        if (s && within(s)) extra.push(id);
      }
      if (extra.length > 0 || plain) {
        const out = new Int32Array((plain ? v.plain.length : 0) + extra.length);
        if (plain) out.set(v.plain);
        out.set(extra, plain ? v.plain.length : 0);
        return out;
      }
    }
    const out: number[] = [];
    if (accepting(this.state)) out.push(...this.stopIds);
    this.walk(out, within);
    if (out.length === 0 && !accepting(this.state)) {
      // Not even the shortest completion fits: the longest valid prefix, cut by maxOutputTokens.
      this.walk(out, () => true);
    }
    return Int32Array.from(out);
  }

  /** Walks the vocabulary trie from the current state, skipping subtrees the automaton rejects. */
  private walk(out: number[], keep: (s: State) => boolean): void {
    const v = this.vocab;
    const states: (State | null)[] = [this.state];
    for (let i = 0; i < v.nodes; ) {
      const d = v.nodeDepth[i]!;
      const s = step(states[d - 1]!, v.nodeByte[i]!);
      if (s === null) {
        i = v.nodeEnd[i]!;
        continue;
      }
      states[d] = s;
      const id = v.nodeToken[i]!;
      if (id >= 0 && keep(s)) {
        out.push(id);
        const more = v.sameBytes.get(i);
        if (more) out.push(...more);
      }
      i++;
    }
  }

  /** Advances past a sampled token (one of allowed()). */
  accept(id: number): void {
    if (this.stopIds.includes(id)) return;
    const b = this.vocab.bytes[id];
    const s = b ? stepAll(this.state, b) : null;
    if (!s) throw new Error(`internal: token ${id} is not allowed by the response format`);
    this.state = s;
  }
}
