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
