// `tunekit serve` as a child process for the api-conformance, jobs-* and api-tuning-* tests: started on a free port over
// a data directory, resolved once it prints its URL; kill() sends a signal and waits for the exit.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface ServeProcess {
  url: string;
  pid: number;
  stdout: string;
  stderr: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export function startServe(dataDir: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<ServeProcess> {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data-dir', dataDir, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env },
  });
  const s = { url: '', pid: child.pid!, stdout: '', stderr: '' } as ServeProcess;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  s.kill = async (signal = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  child.stderr!.on('data', (d: Buffer) => { s.stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      s.stdout += d.toString();
      const m = / at (http:\/\/\S+)/.exec(s.stdout);
      if (m && !s.url) {
        s.url = m[1]!;
        resolve(s);
      }
    });
    child.once('exit', (code) => reject(new Error(`tunekit serve exited with ${code}: ${s.stderr}`)));
  });
}

/** Pids of the live children of `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(e));
    } catch {
      // gone
    }
  }
  return out;
}
