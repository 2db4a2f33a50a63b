// Rotary position embedding in the "rotate half" layout Hugging Face uses for Llama, Qwen and Gemma:
// within each head, dimension i pairs with i + HD/2 and rotates by position · invFreq[i].
// Dimension letters: T tokens, NH heads, HD head dim.

import type { RopeScaling } from '../models/config.js';

/** Inverse frequencies (HD/2), float32 as PyTorch computes them, with llama3 or linear scaling applied. */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(theta ** Math.fround((2 * i) / headDim));
  if (!scaling) return inv;
  if (scaling.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] = inv[i] / scaling.factor;
    return inv;
  }
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldLen } = scaling;
  const lowFreqWavelen = oldLen / lowFreqFactor;
  const highFreqWavelen = oldLen / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    if (wavelen > lowFreqWavelen) inv[i] = inv[i] / factor;
    else if (wavelen >= highFreqWavelen) {
      const smooth = (oldLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
    }
  }
  return inv;
}

/** cos/sin tables (T, HD/2) for the given positions. */
export function ropeTables(positions: ArrayLike<number>, T: number, invFreq: Float32Array, cos: Float32Array, sin: Float32Array): void {
  const half = invFreq.length;
  for (let t = 0; t < T; t++) {
    const p = positions[t];
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * invFreq[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
}

/** Rotates x (T, NH, HD) in place; rows of x are `stride` floats apart. */
export function ropeForward(
  x: Float32Array, T: number, NH: number, HD: number, stride: number, cos: Float32Array, sin: Float32Array,
): void {
  rotate(x, T, NH, HD, stride, cos, sin, 1);
}

/** Backward of ropeForward: the transpose of a rotation is the rotation by the opposite angle. */
export function ropeBackward(
  dx: Float32Array, T: number, NH: number, HD: number, stride: number, cos: Float32Array, sin: Float32Array,
): void {
  rotate(dx, T, NH, HD, stride, cos, sin, -1);
}

function rotate(
  x: Float32Array, T: number, NH: number, HD: number, stride: number, cos: Float32Array, sin: Float32Array, sign: 1 | -1,
): void {
  const half = HD / 2;
  for (let t = 0; t < T; t++) {
    const c0 = t * half;
    for (let h = 0; h < NH; h++) {
      const base = t * stride + h * HD;
      for (let i = 0; i < half; i++) {
        const a = x[base + i];
        const b = x[base + half + i];
        const c = cos[c0 + i];
        const s = sign * sin[c0 + i];
        x[base + i] = a * c - b * s;
        x[base + half + i] = b * c + a * s;
      }
    }
  }
}
