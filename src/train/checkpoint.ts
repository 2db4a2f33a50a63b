// Training checkpoints: at each epoch end, the trainable parameters (a PEFT adapter, or every weight in
// full fine-tuning), the optimizer's moments and the trainer's position, in one directory written
// atomically (a temporary directory renamed into place), so `--resume` continues exactly where the
// uninterrupted run would be.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsHeader, readTensorF32, writeSafetensors } from '../models/safetensors.js';
import { InvalidRequestError } from '../errors.js';
import type { ParamGroup } from './adamw.js';

export const CHECKPOINT_FILES = {
  state: 'trainer_state.json',
  optimizer: 'optimizer.safetensors',
  params: 'params.safetensors',
} as const;

export interface TrainerState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed. */
  step: number;
  totalSteps: number;
  /** Hash of the options that must not change on resume (data, model, hyper-parameters). */
  fingerprint: string;
  elapsedSeconds: number;
}

export function checkpointDir(outDir: string, epoch: number): string {
  return path.join(outDir, 'checkpoints', `epoch-${epoch}`);
}

/** Writes the checkpoint; `extra` writes the human-facing files (PEFT adapter, model) into the same directory. */
export function writeCheckpoint(dir: string, groups: ParamGroup[], state: TrainerState, extra: (tmp: string) => void): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  writeSafetensors(path.join(tmp, CHECKPOINT_FILES.params), groups.map((g) => ({ name: g.name, shape: [g.param.length], data: g.param })));
  writeSafetensors(path.join(tmp, CHECKPOINT_FILES.optimizer), groups.flatMap((g) => [
    { name: `${g.name}.exp_avg`, shape: [g.m.length], data: g.m },
    { name: `${g.name}.exp_avg_sq`, shape: [g.v.length], data: g.v },
  ]));
  fs.writeFileSync(path.join(tmp, CHECKPOINT_FILES.state), JSON.stringify(state, null, 2) + '\n');
  extra(tmp);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(tmp, dir);
}

/** Restores parameters and moments in place; returns the saved state. */
export function readCheckpoint(dir: string, groups: ParamGroup[], fingerprint: string): TrainerState {
  const stateFile = path.join(dir, CHECKPOINT_FILES.state);
  if (!fs.existsSync(stateFile)) throw new InvalidRequestError(`--resume ${dir}: not a tunekit checkpoint (no ${CHECKPOINT_FILES.state})`);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as TrainerState;
  if (state.fingerprint !== fingerprint) {
    throw new InvalidRequestError(`--resume ${dir}: the checkpoint was made with another base model, dataset or hyper-parameters; resume with the same options`);
  }
  const params = readSafetensorsHeader(path.join(dir, CHECKPOINT_FILES.params));
  const opt = readSafetensorsHeader(path.join(dir, CHECKPOINT_FILES.optimizer));
  for (const g of groups) {
    for (const [header, name, dst] of [[params, g.name, g.param], [opt, `${g.name}.exp_avg`, g.m], [opt, `${g.name}.exp_avg_sq`, g.v]] as const) {
      const data = readTensorF32(header, name);
      if (data.length !== dst.length) throw new InvalidRequestError(`--resume ${dir}: tensor ${name} has ${data.length} values, expected ${dst.length}`);
      dst.set(data);
    }
  }
  return state;
}
