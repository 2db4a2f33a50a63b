// The element-wise kernels the pool can split, as (arrays, scalars, start, end) entry points over a
// range of rows or elements. Shared by the calling thread and kernel-worker.ts.

import { softmaxRows } from './softmax.js';
import { gegluTanhRange, swigluRange } from './activations.js';

export const KERNEL_OPS = ['softmaxRows', 'swiglu', 'gegluTanh'] as const;
export type KernelOp = (typeof KERNEL_OPS)[number];

type Impl = (arrays: Float32Array[], s: ArrayLike<number>, start: number, end: number) => void;

export const KERNEL_OPS_IMPL: Impl[] = [
  // softmaxRows: arrays [x]; scalars [rows, G, S, first, window (-1: none)]
  (a, s, start, end) => softmaxRows(a[0]!, s[0]!, s[1]!, s[2]!, s[3]!, s[4]! < 0 ? null : s[4]!, start, end),
  // swiglu: arrays [out, gate, up]
  (a, _s, start, end) => swigluRange(a[0]!, a[1]!, a[2]!, start, end),
  // gegluTanh: arrays [out, gate, up]
  (a, _s, start, end) => gegluTanhRange(a[0]!, a[1]!, a[2]!, start, end),
];
