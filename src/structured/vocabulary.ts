// A tokenizer's vocabulary as byte strings, in the shapes the token mask needs: a trie flattened in
// preorder (node i: its byte, its depth, the token ids ending there, and where its subtree ends), so a
// mask is one linear walk that skips every subtree whose prefix the automaton rejects; and the set of
// "plain" tokens (no quote, backslash or control byte), which are valid everywhere inside a free JSON
// string — that state, where nearly the whole vocabulary is allowed, costs a copy, not a walk.
// Built once per tokenizer (lazily, on the first constrained request) and shared.

import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface Vocabulary {
  /** Ids the model may emit: below min(tokenizer size, embedding rows). */
  size: number;
  bytes: (Uint8Array | null)[];
  /** Trie in preorder. */
  nodeByte: Uint8Array;
  nodeDepth: Uint16Array;
  /** First token id ending at the node, or -1; more ids with the same bytes in `sameBytes`. */
  nodeToken: Int32Array;
  nodeEnd: Int32Array;
  sameBytes: Map<number, number[]>;
  nodes: number;
  /** Tokens valid anywhere inside a free string (printable, no quote or backslash, whole UTF-8 characters). */
  plain: Int32Array;
  /** Tokens that may be valid inside a free string but are not plain (a quote, a backslash or part of a character): checked one by one. */
  special: Int32Array;
}

const cache = new WeakMap<Tokenizer, Map<number, Vocabulary>>();

export function vocabularyOf(tokenizer: Tokenizer, size: number): Vocabulary {
  let m = cache.get(tokenizer);
  if (!m) cache.set(tokenizer, (m = new Map()));
  let v = m.get(size);
  if (!v) m.set(size, (v = buildVocabulary(tokenizer, size)));
  return v;
}

// GPT-2 byte-level BPE writes each byte as a printable character; this is the inverse table.
let byteDecoder: Map<string, number> | null = null;
function byteLevelDecoder(): Map<string, number> {
  if (byteDecoder) return byteDecoder;
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (printable.includes(b)) map.set(String.fromCharCode(b), b);
    else map.set(String.fromCharCode(256 + extra++), b);
  }
  byteDecoder = map;
  return map;
}

/**
 * GPT-2 byte-level vocabularies spell a space "Ġ" (U+0120). A SentencePiece vocabulary may have a piece
 * "Ġ" too (Gemma 3 does) that stands for itself, so the decoder decides.
 */
function isByteLevel(tokenizer: Tokenizer): boolean {
  let known = byteLevelOf.get(tokenizer);
  if (known === undefined) {
    const g = tokenizer.tokenToId('\u0120');
    byteLevelOf.set(tokenizer, (known = g !== undefined && tokenizer.decode([g]) === ' '));
  }
  return known;
}
const byteLevelOf = new WeakMap<Tokenizer, boolean>();

/** The bytes a token stands for: byte-level BPE pieces decoded, SentencePiece's ▁ as a space, <0xNN> as its byte. */
export function tokenBytes(tokenizer: Tokenizer, id: number, byteLevel = isByteLevel(tokenizer)): Uint8Array {
  const piece = tokenizer.idToToken(id) ?? '';
  const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
  if (hex) return Uint8Array.of(parseInt(hex[1]!, 16));
  if (!tokenizer.isSpecial(id) && byteLevel) {
    const table = byteLevelDecoder();
    const out: number[] = [];
    for (const ch of piece) {
      const b = table.get(ch);
      if (b === undefined) return new TextEncoder().encode(piece);
      out.push(b);
    }
    return Uint8Array.from(out);
  }
  return new TextEncoder().encode(piece.replace(/\u2581/g, ' '));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
/** Complete, well-formed UTF-8 (a token that starts or ends inside a character is not). */
function wholeUtf8(b: Uint8Array): boolean {
  for (const x of b) if (x >= 0x80) {
    try {
      strictUtf8.decode(b);
      return true;
    } catch {
      return false;
    }
  }
  return true;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function buildVocabulary(tokenizer: Tokenizer, size: number): Vocabulary {
  const byteLevel = isByteLevel(tokenizer);
  const bytes: (Uint8Array | null)[] = new Array(size).fill(null);
  const ids: number[] = [];
  const plain: number[] = [];
  const special: number[] = [];
  let total = 0;
  // Thinking markers never appear in constrained text, special or not (they would open a block).
  const markers = new Set(['<think>', '</think>'].map((t) => tokenizer.tokenToId(t)));
  for (let id = 0; id < size; id++) {
    if (tokenizer.isSpecial(id) || markers.has(id)) continue;
    const b = tokenBytes(tokenizer, id, byteLevel);
    if (b.length === 0) continue;
    bytes[id] = b;
    ids.push(id);
    total += b.length;
    let first = -1;
    for (let i = 0; i < b.length; i++) if (b[i]! < 0x20 || b[i] === 0x22 || b[i] === 0x5c) { first = b[i]!; break; }
    if (first === -1 && wholeUtf8(b)) plain.push(id);
    else if (first === -1 || first >= 0x20) special.push(id);
    // else: a control byte comes before any quote — never valid inside a string.

  }
  ids.sort((a, b) => compare(bytes[a]!, bytes[b]!));
  const nodeByte = new Uint8Array(total);
  const nodeDepth = new Uint16Array(total);
  const nodeToken = new Int32Array(total).fill(-1);
  const nodeEnd = new Int32Array(total);
  const sameBytes = new Map<number, number[]>();
  const open: number[] = []; // node index per depth on the current path
  let nodes = 0;
  let prev: Uint8Array | null = null;
  for (const id of ids) {
    const b = bytes[id]!;
    let l = 0;
    if (prev) while (l < prev.length && l < b.length && prev[l] === b[l]) l++;
    if (prev && l === b.length && l === prev.length) {
      const node = open[l - 1]!;
      const list = sameBytes.get(node) ?? [];
      list.push(id);
      sameBytes.set(node, list);
      continue;
    }
    while (open.length > l) nodeEnd[open.pop()!] = nodes;
    for (let d = l; d < b.length; d++) {
      nodeByte[nodes] = b[d]!;
      nodeDepth[nodes] = d + 1;
      open.push(nodes);
      nodes++;
    }
    nodeToken[open[b.length - 1]!] = id;
    prev = b;
  }
  while (open.length > 0) nodeEnd[open.pop()!] = nodes;
  return {
    size, bytes, nodeByte, nodeDepth, nodeToken, nodeEnd, sameBytes, nodes,
    plain: Int32Array.from(plain), special: Int32Array.from(special),
  };
}
