// `tunekit data show`: one example as the model will see it, token by token, with the tokens that carry
// loss marked, so masking mistakes are found before a run rather than after.

import { Tokenizer } from '../tokenizer/tokenizer.js';
import { InvalidRequestError } from '../errors.js';
import { DatasetError, type DatasetProblem } from './errors.js';
import { parseExample } from './formats.js';
import { parseJsonLine, readLines } from './jsonl.js';
import { renderForTraining } from './render.js';

export interface ShownToken {
  id: number;
  /** The token's text (decoded alone). */
  text: string;
  loss: boolean;
}

export interface ShownExample {
  line: number;
  tokens: ShownToken[];
  total: number;
  /** Tokens carrying loss (output tokens). */
  output: number;
  input: number;
}

/** Renders the example on 1-based `line` of the file with the tokenizer in `modelDir`. */
export async function showExample(file: string, line: number, modelDir: string): Promise<ShownExample> {
  let text: string | null = null;
  const onProblem = (p: DatasetProblem): void => {
    if (p.line === line) throw new DatasetError(p); // other lines' problems are not this command's business
  };
  for await (const l of readLines(file, { onProblem })) {
    if (l.line === line) {
      text = l.text;
      break;
    }
    if (l.line > line) break;
  }
  if (text === null) throw new InvalidRequestError(`${file} has no example on line ${line} (the line is blank or past the end)`);
  const parsed = parseJsonLine(text, file, line);
  if ('problem' in parsed) throw new DatasetError(parsed.problem);
  const result = parseExample(parsed.value, { file, line });
  if (!result.conversation) throw new DatasetError(result.problems[0]);
  const tokenizer = await Tokenizer.load(modelDir);
  const { tokens, lossMask } = renderForTraining(result.conversation, tokenizer);
  const shown = tokens.map((id, t) => ({ id, text: tokenizer.decode([id]), loss: lossMask[t] === 1 }));
  const output = shown.filter((t) => t.loss).length;
  return { line, tokens: shown, total: tokens.length, output, input: tokens.length - output };
}

/**
 * The example as text with loss-carrying tokens marked: on a terminal they are green (token boundaries
 * alternate two shades); otherwise each run of them is wrapped in [[ ]] and tokens are separated by |.
 * Then a table of every token: position, id, loss flag, text.
 */
export function formatShownExample(ex: ShownExample, opts: { color?: boolean; table?: boolean } = {}): string {
  const out: string[] = [];
  let text = '';
  if (opts.color) {
    ex.tokens.forEach((t, i) => {
      const style = t.loss ? (i % 2 ? '\x1b[42;30m' : '\x1b[102;30m') : (i % 2 ? '\x1b[2m' : '');
      text += `${style}${t.text}\x1b[0m`;
    });
  } else {
    ex.tokens.forEach((t, i) => {
      const prev = ex.tokens[i - 1];
      if (t.loss && !prev?.loss) text += '[[';
      else if (!t.loss && prev?.loss) text += ']]';
      else if (i > 0) text += '|';
      text += t.text;
    });
    if (ex.tokens[ex.tokens.length - 1]?.loss) text += ']]';
  }
  out.push(`line ${ex.line}: ${ex.total} tokens, ${ex.output} carry loss (output), ${ex.input} do not (input)`);
  out.push(opts.color ? 'loss-carrying tokens in green; token boundaries alternate shades' : 'loss-carrying tokens inside [[ ]]; tokens separated by |');
  out.push('', text, '');
  if (opts.table !== false) {
    out.push('   pos       id loss text');
    ex.tokens.forEach((t, i) => out.push(`${String(i).padStart(6)} ${String(t.id).padStart(8)}  ${t.loss ? ' * ' : '   '} ${JSON.stringify(t.text)}`));
  }
  return out.join('\n') + '\n';
}
