// The Hub as a model source end to end: a tiny checkpoint served the way huggingface.co serves a repo,
// `tunekit generate --model org/name` downloads it into the cache and generates exactly what the same
// directory gives when read from disk; a second run works with the server gone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeHub } from './helpers/fake-hub.js';
import { tinyModelDir } from './helpers/tiny-models.js';

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

test('generate --model org/name downloads a tiny model from a Hub and matches the local directory', async () => {
  const dir = tinyModelDir('gemma3');
  const files: Record<string, Buffer> = {};
  for (const f of fs.readdirSync(dir)) files[f] = fs.readFileSync(path.join(dir, f));
  const hub = await startFakeHub({ 'tunekit-test/gemma3-tiny': files });
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-hubgen-'));
  let open = true;
  try {
    const args = ['--prompt', 'The weather', '--max-tokens', '12', '--temperature', '0.8', '--seed', '3'];
    const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '' };
    const local = await run(['generate', '--model', dir, ...args], {});
    const remote = await run(['generate', '--model', 'tunekit-test/gemma3-tiny', ...args], env);
    assert.equal(remote.code, 0, remote.err);
    assert.equal(remote.out, local.out);
    assert.ok(fs.existsSync(path.join(cache, 'models--tunekit-test--gemma3-tiny', 'snapshots')));
    await hub.close();
    open = false;
    const offline = await run(['generate', '--model', 'tunekit-test/gemma3-tiny', ...args], env);
    assert.equal(offline.code, 0, offline.err);
    assert.equal(offline.out, local.out);
  } finally {
    if (open) await hub.close();
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
