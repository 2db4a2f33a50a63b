// The PyTorch peer of bench:train: runs bench/train_torch.py (LoRA steps on the same model, batch shape
// and thread count) with Debian's /usr/bin/python3 and python3-torch in a child process, and returns its
// measurement. Anything that keeps it from running — no python3, no torch, a crash — is a null result
// with the reason, so the benchmark can still report tunekit alone.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TorchPeerOptions {
  /** A Hugging Face model directory (config.json, model.safetensors) ... */
  modelDir?: string;
  /** ... or a config.json whose weights the peer draws itself: normal(0, initStd), norms neutral. */
  configFile?: string;
  initStd?: number;
  threads: number;
  batch: number;
  seq: number;
  /** Timed steps, after `warmup` untimed ones (default 1). */
  steps: number;
  warmup?: number;
  rank?: number;
  alpha?: number;
  lr?: number;
  /** Share of each packed example's predictions that carry loss (1 = all). */
  lossFraction?: number;
  seed?: number;
  /** Default /usr/bin/python3: Debian's interpreter, where python3-torch installs. */
  python?: string;
  timeoutMs?: number;
}

export interface TorchPeerResult {
  tokensPerSecond: number; // batch·seq / mean timed step
  stepSeconds: number;
  stepTimes: number[];
  /** Mean CPU seconds (user + system, all threads) per timed step; near threads × stepSeconds on an idle machine. */
  stepCpuSeconds: number;
  lossFirst: number; // first step, before its update
  lossLast: number; // last timed step, before its update
  threads: number;
  torchVersion: string;
  targetTokens: number;
  attention: string;
  /** Peak resident set of the PyTorch process (ru_maxrss). */
  peakRssBytes: number;
}

export type TorchPeerRun = { result: TorchPeerResult; reason: null } | { result: null; reason: string };

const here = path.dirname(fileURLToPath(import.meta.url));
/** bench/train_torch.py in the source tree (this file runs from dist/bench/). */
export const TRAIN_TORCH_SCRIPT = path.join(here, '..', '..', 'bench', 'train_torch.py');
const INSTALL_HINT = 'apt-get install -y python3-torch python3-numpy';

function tail(text: string, lines = 8): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

export async function runTorchPeer(opts: TorchPeerOptions): Promise<TorchPeerRun> {
  const python = opts.python ?? '/usr/bin/python3';
  if (!fs.existsSync(python)) return { result: null, reason: `${python} not found (${INSTALL_HINT})` };
  const probe = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    return { result: null, reason: `python3-torch is not usable from ${python} (${INSTALL_HINT}): ${tail(probe.stderr ?? '', 1)}` };
  }
  if ((opts.modelDir === undefined) === (opts.configFile === undefined)) throw new Error('internal: runTorchPeer needs one of modelDir, configFile');
  const model = opts.modelDir !== undefined ? ['--model', path.resolve(opts.modelDir)] : ['--config', path.resolve(opts.configFile!)];
  const args = [
    TRAIN_TORCH_SCRIPT, ...model, '--threads', String(opts.threads),
    '--batch', String(opts.batch), '--seq', String(opts.seq), '--steps', String(opts.steps),
  ];
  const optional: Array<[string, number | undefined]> = [
    ['--rank', opts.rank], ['--alpha', opts.alpha], ['--lr', opts.lr], ['--loss-fraction', opts.lossFraction], ['--seed', opts.seed], ['--init-std', opts.initStd], ['--warmup', opts.warmup],
  ];
  for (const [flag, value] of optional) if (value !== undefined) args.push(flag, String(value));

  const child = spawn(python, args, { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : undefined;
  const code = await new Promise<number | null>((resolve) => {
    child.on('close', resolve);
    child.on('error', (err) => { stderr += String(err); resolve(null); });
  });
  if (timer) clearTimeout(timer);
  if (code !== 0) return { result: null, reason: `train_torch.py exited with ${code ?? 'a signal'}: ${tail(stderr)}` };

  let j: Record<string, unknown>;
  try {
    j = JSON.parse(tail(stdout, 1)) as Record<string, unknown>;
  } catch {
    return { result: null, reason: `train_torch.py printed no JSON result: ${tail(stdout + stderr)}` };
  }
  return {
    reason: null,
    result: {
      tokensPerSecond: Number(j.tokens_per_second),
      stepSeconds: Number(j.step_seconds),
      stepTimes: (j.step_times as number[]) ?? [],
      stepCpuSeconds: Number(j.step_cpu_seconds),
      lossFirst: Number(j.loss_first),
      lossLast: Number(j.loss_last),
      threads: Number(j.threads),
      torchVersion: String(j.torch_version),
      targetTokens: Number(j.target_tokens),
      attention: String(j.attention),
      peakRssBytes: Number(j.peak_rss_bytes),
    },
  };
}
