// Gated MLP activations, fused with the gate product: out = act(gate) · up, over elements [start, end).
// SiLU for Llama/Qwen (SwiGLU), tanh-approximated GELU for Gemma (GeGLU), as PyTorch defines them.

import { fastExp } from './fast-exp.js';

export function swigluRange(out: Float32Array, gate: Float32Array, up: Float32Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const g = gate[i];
    out[i] = (g / (1 + fastExp(-g))) * up[i];
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function gegluTanhRange(out: Float32Array, gate: Float32Array, up: Float32Array, start: number, end: number): void {
  for (let i = start; i < end; i++) {
    const g = gate[i];
    // 0.5·(1 + tanh(u)) = 1 / (1 + e^(-2u))
    const u = SQRT_2_OVER_PI * (g + 0.044715 * g * g * g);
    out[i] = (g / (1 + fastExp(-2 * u))) * up[i];
  }
}

/**
 * Backward of swigluRange: with σ = sigmoid(g), h = g·σ·u:
 * dgate = dh·u·σ·(1 + g·(1 − σ)), dup = dh·g·σ. dgate/dup may alias gate/up (read before written).
 */
export function swigluBackwardRange(
  dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, start: number, end: number,
): void {
  for (let i = start; i < end; i++) {
    const g = gate[i];
    const u = up[i];
    const dh = dout[i];
    const sig = 1 / (1 + fastExp(-g));
    dgate[i] = dh * u * sig * (1 + g * (1 - sig));
    dup[i] = dh * g * sig;
  }
}

/**
 * Backward of gegluTanhRange: gelu(g) = 0.5·g·(1 + tanh(k(g + c·g³))),
 * gelu'(g) = 0.5·(1 + t) + 0.5·g·(1 − t²)·k·(1 + 3c·g²).
 */
export function gegluTanhBackwardRange(
  dgate: Float32Array, dup: Float32Array, dout: Float32Array, gate: Float32Array, up: Float32Array, start: number, end: number,
): void {
  for (let i = start; i < end; i++) {
    const g = gate[i];
    const u = up[i];
    const dh = dout[i];
    const inner = SQRT_2_OVER_PI * (g + 0.044715 * g * g * g);
    const t = 2 / (1 + fastExp(-2 * inner)) - 1; // tanh(inner)
    const gelu = 0.5 * g * (1 + t);
    const dgelu = 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * g * g);
    dgate[i] = dh * u * dgelu;
    dup[i] = dh * gelu;
  }
}
