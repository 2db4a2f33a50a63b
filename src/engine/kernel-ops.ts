// The element-wise kernels the pool can split, as (arrays, scalars, start, end) entry points over a
// range of rows or elements. Shared by the calling thread and kernel-worker.ts.

import { softmaxRows, trainSoftmaxBackwardRows, trainSoftmaxRows } from './softmax.js';
import { crossEntropyRows } from './cross-entropy.js';
import { gegluTanhBackwardRange, gegluTanhRange, swigluBackwardRange, swigluRange } from './activations.js';
import { addRmsnormRows, rmsnormBackwardRows, rmsnormRows } from './rmsnorm.js';

export const KERNEL_OPS = ['softmaxRows', 'swiglu', 'gegluTanh', 'rmsnorm', 'addRmsnorm', 'trainSoftmax', 'trainSoftmaxBackward',
  'rmsnormBackward', 'swigluBackward', 'gegluTanhBackward', 'crossEntropyRows'] as const;
export type KernelOp = (typeof KERNEL_OPS)[number];

type Impl = (arrays: Float32Array[], s: ArrayLike<number>, start: number, end: number) => void;

export const KERNEL_OPS_IMPL: Impl[] = [
  // softmaxRows: arrays [x, invSums?]; scalars [rows, G, S, first, window (-1: none)]
  (a, s, start, end) => softmaxRows(a[0]!, s[0]!, s[1]!, s[2]!, s[3]!, s[4]! < 0 ? null : s[4]!, start, end, a[1]),
  // swiglu: arrays [out, gate, up]
  (a, _s, start, end) => swigluRange(a[0]!, a[1]!, a[2]!, start, end),
  // gegluTanh: arrays [out, gate, up]
  (a, _s, start, end) => gegluTanhRange(a[0]!, a[1]!, a[2]!, start, end),
  // rmsnorm: arrays [out, inp, weight, rstd?]; scalars [C, eps, offset]; items are rows
  (a, s, start, end) => rmsnormRows(a[0]!, a[1]!, a[2]!, s[0]!, s[1]!, s[2]!, start, end, a[3]),
  // addRmsnorm: arrays [x, delta, out, weight]; scalars [C, eps, offset]; items are rows
  (a, s, start, end) => addRmsnormRows(a[0]!, a[1]!, a[2]!, a[3]!, s[0]!, s[1]!, s[2]!, start, end),
  // trainSoftmax: arrays [x, lo, lse]; scalars [rows, G, S, first]
  (a, s, start, end) => trainSoftmaxRows(a[0]!, a[1]!, a[2]!, s[0]!, s[1]!, s[2]!, s[3]!, start, end),
  // trainSoftmaxBackward: arrays [s, dp, lo, lse, dsum]; scalars [rows, G, S, first]
  (a, s, start, end) => trainSoftmaxBackwardRows(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, s[0]!, s[1]!, s[2]!, s[3]!, start, end),
  // rmsnormBackward (no weight gradient): arrays [dinp, dout, inp, weight, rstd]; scalars [C, offset]
  (a, s, start, end) => rmsnormBackwardRows(a[0]!, null, a[1]!, a[2]!, a[3]!, a[4]!, s[0]!, s[1]!, start, end),
  // swigluBackward: arrays [dgate, dup, dout, gate, up]
  (a, _s, start, end) => swigluBackwardRange(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, start, end),
  // gegluTanhBackward: arrays [dgate, dup, dout, gate, up]
  (a, _s, start, end) => gegluTanhBackwardRange(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, start, end),
  // crossEntropyRows: arrays [logits, rowTargets, rowLoss, rowCorrect, rowScale]; scalars [V, gradScale, wantGrad]
  (a, s, start, end) => crossEntropyRows(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, s[0]!, s[1]!, s[2]! !== 0, start, end),
];
