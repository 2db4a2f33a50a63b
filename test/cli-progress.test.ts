// The CLI's progress display: frames rendered at an explicit width (the bar shrinks, the line never
// passes the width), the loss sparkline, aligned tables; and long local commands as a user sees them:
// on a pseudo-terminal (script(1)) `validate`, `data stats`, `export gguf` and `merge` draw the bar with
// 100% and their size on stderr (tune: steps, loss, accuracy; its checkpoint lines above the bar), with a
// pipe they print no bar at all.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderBar, sparkline, formatBytes, formatDuration } from '../src/cli/progress.js';
import { table } from '../src/cli/client-output.js';
import { cliMain } from './helpers/platform.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-cli-progress-'));
process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));

test('renderBar: fraction, counts, detail and ETA, within the width', () => {
  const s = { label: 'validate a.jsonl', done: 250, total: 1000, elapsed: 5, detail: 'x', unit: 'count' as const };
  assert.equal(renderBar(s, 200), `validate a.jsonl ${'█'.repeat(6)}${'░'.repeat(18)}  25% 250/1000 x ETA 15s`);
  assert.equal(renderBar({ ...s, done: 1000, elapsed: 75 }, 200), `validate a.jsonl ${'█'.repeat(24)} 100% 1000/1000 x in 1m15s`);
  assert.equal(renderBar({ ...s, done: 0 }, 200), `validate a.jsonl ${'░'.repeat(24)}   0% 0/1000 x ETA ?`);
  assert.equal(renderBar({ ...s, unit: 'bytes', done: 1_500_000, total: 3_000_000 }, 200), `validate a.jsonl ${'█'.repeat(12)}${'░'.repeat(12)}  50% 1.5 MB/3.0 MB x ETA 5s`);
  // Narrow: the bar shrinks to 8, then the detail is cut, and the count and ETA stay.
  const long = { ...s, detail: 'epoch 1 loss 2.3456 acc 0.512 lr 1.00e-4 2000 tok/s' };
  assert.equal(renderBar(long, 60), `validate a.jsonl ${'█'.repeat(2)}${'░'.repeat(6)}  25% 250/1000 epoch 1 lo… ETA 15s`);
  assert.equal([...renderBar(long, 60)].length, 59);
  assert.equal(renderBar(long, 52), `validate a.jsonl ${'█'.repeat(2)}${'░'.repeat(6)}  25% 250/1000 ep… ETA 15s`);
  const fifty = renderBar(long, 50);
  assert.match(fifty, /^validate a\.jsonl █+░+  25% 250\/1000 ETA 15s$/);
  assert.ok([...fifty].length <= 49);
  assert.equal(renderBar(long, 20), 'validate a.jsonl ██');
});

test('sparkline: the last values scaled between their minimum and maximum', () => {
  assert.equal(sparkline([3, 2, 1, 0], 10), '█▆▃▁');
  assert.equal(sparkline([9, 3, 2, 1, 0], 4), '█▆▃▁');
  assert.equal(sparkline([5, 5, 5], 8), '▁▁▁');
  assert.equal(sparkline([1, NaN, 2], 8), '▁█');
  assert.equal(sparkline([], 8), '');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1_234_567), '1.2 MB');
  assert.equal(formatDuration(3725), '1h02m');
});

test('table: columns aligned to their widest cell', () => {
  assert.equal(table(['A', 'LONG HEADER', 'C'], [['xyz', '1', 'last'], ['q', '22', '']]), 'A    LONG HEADER  C\nxyz  1            last\nq    22\n');
});

const hasScript = spawnSync('script', ['--version']).status === 0;

/** Runs the CLI on a pseudo-terminal; what it drew on stdout and stderr together. */
function onTerminal(args: string[]): { status: number | null; screen: string } {
  const cmd = [process.execPath, cliMain, ...args].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-q', '-e', '-c', cmd, '/dev/null'], { encoding: 'utf8' });
  return { status: r.status, screen: r.stdout };
}

function piped(args: string[]) {
  return spawnSync(process.execPath, [cliMain, ...args], { encoding: 'utf8' });
}

test('validate, data stats, export gguf, tune and merge: a bar on a terminal, none in a pipe', async (t) => {
  if (!hasScript) return t.skip('script(1) is not installed');
  const model = tinyModelDir('llama');
  const data = path.resolve('examples/data/tone-train.jsonl');
  const bytes = fs.statSync(data).size;
  const frame = (label: string, total: string) => new RegExp(`\\r${label} █{8,24} 100% ${total}/${total} in \\d+s\\x1b\\[K`);

  let r = onTerminal(['validate', data, '--model', model]);
  assert.equal(r.status, 0, r.screen);
  assert.match(r.screen, frame('validate tone-train\\.jsonl', formatBytes(bytes).replace('.', '\\.')));
  let p = piped(['validate', data, '--model', model]);
  assert.equal(p.status, 0);
  assert.doesNotMatch(p.stderr + p.stdout, /█|░|\r/);

  r = onTerminal(['data', 'stats', data, '--model', model]);
  assert.equal(r.status, 0, r.screen);
  assert.match(r.screen, frame('stats tone-train\\.jsonl', formatBytes(bytes).replace('.', '\\.')));
  p = piped(['data', 'stats', data, '--model', model]);
  assert.doesNotMatch(p.stderr, /█|░|\r/);

  const gguf = path.join(root, 'm.gguf');
  r = onTerminal(['export', 'gguf', '--model', model, '--out', gguf]);
  assert.equal(r.status, 0, r.screen);
  assert.match(r.screen, frame('export m\\.gguf', formatBytes(fs.statSync(gguf).size).replace('.', '\\.')));
  p = piped(['export', 'gguf', '--model', model, '--out', path.join(root, 'm2.gguf')]);
  assert.doesNotMatch(p.stderr, /█|░|\r/);

  const adapter = path.join(root, 'tuned');
  r = onTerminal(['tune', '--base', model, '--train', data, '--out', adapter, '--epochs', '1', '--adapter-size', '2', '--batch-tokens', '512', '--max-seq-len', '128']);
  assert.equal(r.status, 0, r.screen);
  const steps = /(\d+) in all/.exec(r.screen)![1]!;
  assert.match(r.screen, new RegExp(`\\rtune █{8,24} 100% ${steps}/${steps} epoch 1 loss \\d+\\.\\d{4} acc [\\d.]+ [^\\r]* in \\d+s\\x1b\\[K`));
  assert.match(r.screen, /\r\x1b\[Kcheckpoint: \S+\r?\n/, 'a line above the bar');
  r = onTerminal(['merge', '--base', model, '--adapter', adapter, '--out', path.join(root, 'merged')]);
  assert.equal(r.status, 0, r.screen);
  const size = fs.statSync(path.join(root, 'merged', 'model.safetensors')).size;
  assert.match(r.screen, frame('merge merged', formatBytes(size).replace('.', '\\.')));
  p = piped(['merge', '--base', model, '--adapter', adapter, '--out', path.join(root, 'merged2')]);
  assert.equal(p.status, 0);
  assert.doesNotMatch(p.stderr, /█|░|\r/);
});
