// Shared by the platform tests: temporary data dirs, assertions on typed errors, child node processes
// that import the compiled platform modules.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TunekitError } from '../../src/errors.js';

/** dist/src/platform, for child processes. */
export const platformDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'platform');
export const cliMain = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

/** A factory of fresh directories under one temporary root removed at exit. */
export function tempDirs(label: string): () => string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `tunekit-${label}-`));
  process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
  let n = 0;
  return () => path.join(root, `d${n++}`);
}

function checkError(err: unknown, code: string, message: RegExp): true {
  assert.ok(err instanceof TunekitError, `expected a TunekitError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(err.message, message);
  return true;
}

export function throwsCode(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => checkError(err, code, message));
}

export async function rejectsCode(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => checkError(err, code, message));
}

export interface NodeRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Runs `node ...args`; `onStdout` sees output as it arrives (to kill the child at a chosen moment). */
export function runNode(args: string[], onStdout?: (chunk: string, kill: () => void) => void, env?: NodeJS.ProcessEnv): Promise<NodeRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      onStdout?.(d.toString(), () => child.kill('SIGKILL'));
    });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

/** Runs an ES module script given as text (it may import platformDir modules by absolute path). */
export function runScript(script: string, args: string[] = [], onStdout?: (chunk: string, kill: () => void) => void): Promise<NodeRun> {
  return runNode(['--input-type=module', '-e', script, '--', ...args], onStdout);
}
