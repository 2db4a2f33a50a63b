// Worker threads for element-wise kernels. BLAS already spreads matrix products over the cores; the
// element-wise work between them (softmax, gated activations) would otherwise run on one core.
// Work is split by rows: the calling thread takes the first share, each worker one of the others.
// Arrays handed to the pool must live in SharedArrayBuffers (allocate them with sharedFloat32).
// Protocol, per worker: a shared Int32Array `ctrl` — the caller writes the op and its arguments, bumps
// ctrl[SEQ] and notifies; the worker runs its share, copies SEQ into ctrl[DONE] and notifies back.
// New buffers travel to the worker over a MessagePort that it drains synchronously before each task.

import * as os from 'node:os';
import { MessageChannel, Worker } from 'node:worker_threads';
import { KERNEL_OPS, KERNEL_OPS_IMPL, type KernelOp } from './kernel-ops.js';

export const SEQ = 0;
export const DONE = 1;
export const OP = 2;
export const RANGE = 3; // start, end
export const ARRAYS = 5; // up to MAX_ARRAYS x (buffer id, byte offset, length)
export const MAX_ARRAYS = 6;

export const MAX_SCALARS = 8;
const CTRL_BYTES = 256 + 8 * MAX_SCALARS;

export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(4, n * 4)));
}

/**
 * A copy of w in shared memory, made once per cache (norm weights the workers must read). The copy is
 * taken when first asked for: callers whose weights change (full fine-tuning) must not use it.
 */
export function sharedCopy(cache: Map<Float32Array, Float32Array>, w: Float32Array): Float32Array {
  let s = cache.get(w);
  if (!s) {
    s = sharedFloat32(w.length);
    s.set(w);
    cache.set(w, s);
  }
  return s;
}

interface PoolWorker {
  worker: Worker;
  ctrl: Int32Array;
  scalars: Float64Array;
  port: MessagePort;
  known: WeakSet<SharedArrayBuffer>;
}

type MessagePort = import('node:worker_threads').MessagePort;

let pool: KernelPool | null | undefined;

export function configuredThreads(): number {
  const env = Number(process.env.TUNEKIT_THREADS ?? 0);
  return env > 0 ? env : Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

export class KernelPool {
  private readonly workers: PoolWorker[] = [];
  private readonly ids = new WeakMap<SharedArrayBuffer, number>();
  private nextId = 1;
  private seq = 0;

  /** The process-wide pool, or null when one thread is configured. */
  static get(): KernelPool | null {
    if (pool === undefined) {
      const threads = configuredThreads();
      pool = threads > 1 && process.env.TUNEKIT_KERNEL_POOL !== 'off' ? new KernelPool(threads - 1) : null;
    }
    return pool;
  }

  private constructor(workerCount: number) {
    for (let i = 0; i < workerCount; i++) {
      const sab = new SharedArrayBuffer(CTRL_BYTES);
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(new URL('./kernel-worker.js', import.meta.url), {
        workerData: { ctrl: sab, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.workers.push({ worker, ctrl: new Int32Array(sab), scalars: new Float64Array(sab, 256, MAX_SCALARS), port: port1, known: new WeakSet() });
    }
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Runs op over items [0, items): the caller's thread takes the first share. `arrays` must be views of
   * SharedArrayBuffers. Returns when every share is done.
   */
  run(op: KernelOp, items: number, arrays: Float32Array[], scalars: number[]): void {
    const shares = this.workers.length + 1;
    const per = Math.ceil(items / shares);
    const seq = ++this.seq;
    const opIndex = KERNEL_OPS.indexOf(op);
    let started = 0;
    for (let w = 0; w < this.workers.length; w++) {
      const start = (w + 1) * per;
      const end = Math.min(items, start + per);
      if (start >= end) break;
      const pw = this.workers[w]!;
      pw.ctrl[OP] = opIndex;
      pw.ctrl[RANGE] = start;
      pw.ctrl[RANGE + 1] = end;
      arrays.forEach((a, i) => {
        const sab = a.buffer as SharedArrayBuffer;
        let id = this.ids.get(sab);
        if (id === undefined) {
          id = this.nextId++;
          this.ids.set(sab, id);
        }
        if (!pw.known.has(sab)) {
          pw.port.postMessage({ id, sab });
          pw.known.add(sab);
        }
        pw.ctrl[ARRAYS + 3 * i] = id;
        pw.ctrl[ARRAYS + 3 * i + 1] = a.byteOffset;
        pw.ctrl[ARRAYS + 3 * i + 2] = a.length;
      });
      scalars.forEach((s, i) => { pw.scalars[i] = s; });
      Atomics.store(pw.ctrl, SEQ, seq);
      Atomics.notify(pw.ctrl, SEQ);
      started++;
    }
    KERNEL_OPS_IMPL[opIndex]!(arrays, scalars, 0, Math.min(items, per));
    for (let w = 0; w < started; w++) {
      const ctrl = this.workers[w]!.ctrl;
      let spins = 0;
      while (Atomics.load(ctrl, DONE) !== seq) {
        if (++spins > 2000) Atomics.wait(ctrl, DONE, Atomics.load(ctrl, DONE), 1);
      }
    }
  }
}

/** Elements of work below which splitting costs more than it saves. */
const MIN_PARALLEL_WORK = 32768;

/**
 * Runs an element-wise op over items [0, items), split across the pool when there is enough work
 * (`work`, in elements touched) and every array is shared; otherwise on the calling thread.
 */
export function runSplit(op: KernelOp, items: number, work: number, arrays: Float32Array[], scalars: number[]): void {
  const p = work >= MIN_PARALLEL_WORK ? KernelPool.get() : null;
  if (p && items > 1 && arrays.every((a) => a.buffer instanceof SharedArrayBuffer)) p.run(op, items, arrays, scalars);
  else KERNEL_OPS_IMPL[KERNEL_OPS.indexOf(op)]!(arrays, scalars, 0, items);
}
