// A kernel-pool worker: waits on its control block, runs its share of an element-wise op over shared
// buffers, signals completion. See kernel-pool.ts for the protocol.

import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { KERNEL_OPS_IMPL } from './kernel-ops.js';
import { ARRAYS, DONE, MAX_ARRAYS, MAX_SCALARS, OP, RANGE, SEQ } from './kernel-pool.js';

const { ctrl: sab, port } = workerData as { ctrl: SharedArrayBuffer; port: MessagePort };
const ctrl = new Int32Array(sab);
const scalars = new Float64Array(sab, 256, MAX_SCALARS);
const buffers = new Map<number, SharedArrayBuffer>();
const views = new Array<Float32Array>(MAX_ARRAYS);

// Spin briefly before sleeping: element-wise ops come in bursts between matrix products, and a futex
// wake-up costs more than a short op.
const SPINS = 2000;

let last = 0;
for (;;) {
  let seq = Atomics.load(ctrl, SEQ);
  for (let i = 0; seq === last && i < SPINS; i++) seq = Atomics.load(ctrl, SEQ);
  if (seq === last) {
    Atomics.wait(ctrl, SEQ, last);
    seq = Atomics.load(ctrl, SEQ);
    if (seq === last) continue;
  }
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const { id, sab: b } = m.message as { id: number; sab: SharedArrayBuffer };
    buffers.set(id, b);
  }
  const op = ctrl[OP]!;
  let n = 0;
  for (; n < MAX_ARRAYS; n++) {
    const id = ctrl[ARRAYS + 3 * n]!;
    const b = buffers.get(id);
    if (!b || id === 0) break;
    views[n] = new Float32Array(b, ctrl[ARRAYS + 3 * n + 1]!, ctrl[ARRAYS + 3 * n + 2]!);
  }
  KERNEL_OPS_IMPL[op]!(views.slice(0, n), scalars, ctrl[RANGE]!, ctrl[RANGE + 1]!);
  for (let i = 0; i < MAX_ARRAYS; i++) ctrl[ARRAYS + 3 * i] = 0;
  last = seq;
  Atomics.store(ctrl, DONE, seq);
  Atomics.notify(ctrl, DONE);
}
