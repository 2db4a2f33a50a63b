// A JSONL dataset file read as Conversations: the streaming reader, the per-line parser, and the one
// rule across lines (every line in the same layout). The first problem is thrown as a DatasetError;
// a validator that wants all of them passes `onProblem` and gets the good lines still.

import { DatasetError, type DatasetProblem } from './errors.js';
import type { Conversation } from './conversation.js';
import { FORMAT_NAMES, parseExample, type DatasetFormat } from './formats.js';
import { readJsonl } from './jsonl.js';

export interface ReadOptions {
  /** Receives every problem instead of throwing the first; bad lines are skipped. */
  onProblem?: (problem: DatasetProblem) => void;
}

/** Tracks the first line's layout; a line in another layout is a problem. */
export class FormatConsistency {
  private first: { format: DatasetFormat; line: number } | null = null;
  constructor(private readonly file: string) {}

  get format(): DatasetFormat | null {
    return this.first?.format ?? null;
  }

  /** Starts from a layout seen elsewhere (a parallel scan's other half). */
  seed(format: DatasetFormat, line: number): void {
    this.first ??= { format, line };
  }

  check(format: DatasetFormat | null, line: number): DatasetProblem | null {
    if (format === null) return null;
    if (this.first === null) {
      this.first = { format, line };
      return null;
    }
    if (format === this.first.format) return null;
    return {
      file: this.file, line, path: '',
      message: `this line is in the ${FORMAT_NAMES[format]} layout but line ${this.first.line} is in the ` +
        `${FORMAT_NAMES[this.first.format]} layout; a file must use one layout throughout`,
      kind: 'mixed_layout',
    };
  }
}

export interface DatasetExample {
  format: DatasetFormat;
  conversation: Conversation;
}

/** The examples of a JSONL file, one per good non-blank line, in file order, with their layout. */
export async function* readExamples(file: string, opts: ReadOptions = {}): AsyncGenerator<DatasetExample> {
  const report = (p: DatasetProblem): void => {
    if (!opts.onProblem) throw new DatasetError(p);
    opts.onProblem(p);
  };
  const formats = new FormatConsistency(file);
  for await (const { line, value } of readJsonl(file, { onProblem: opts.onProblem })) {
    const parsed = parseExample(value, { file, line });
    const mixed = formats.check(parsed.format, line);
    if (mixed) report(mixed);
    else if (parsed.conversation && parsed.format) yield { format: parsed.format, conversation: parsed.conversation };
    else parsed.problems.forEach(report);
  }
}

/** The whole file in memory, with its layout. A file without examples is a problem. */
export async function readDataset(file: string, opts: ReadOptions = {}): Promise<{ format: DatasetFormat | null; conversations: Conversation[] }> {
  const conversations: Conversation[] = [];
  let format: DatasetFormat | null = null;
  for await (const example of readExamples(file, opts)) {
    format = example.format;
    conversations.push(example.conversation);
  }
  if (conversations.length === 0) {
    const problem = { file, line: 0, path: '', message: 'holds no usable examples (one JSON object per line expected)', kind: 'no_examples' as const };
    if (!opts.onProblem) throw new DatasetError(problem);
    opts.onProblem(problem);
  }
  return { format, conversations };
}
