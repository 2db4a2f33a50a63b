// AdamW (decoupled weight decay, Loshchilov & Hutter), as torch.optim.AdamW computes it, over a list of
// parameter tensors with their gradients and two moment buffers each. Also global gradient-norm
// clipping. One flat loop per tensor.

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface ParamGroup {
  name: string;
  param: Float32Array;
  grad: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

export function createParamGroup(name: string, param: Float32Array, grad: Float32Array): ParamGroup {
  return { name, param, grad, m: new Float32Array(param.length), v: new Float32Array(param.length) };
}

/** sqrt(Σ g²) over every gradient. */
export function gradNorm(groups: ParamGroup[]): number {
  let ss = 0;
  for (const g of groups) {
    const d = g.grad;
    for (let i = 0; i < d.length; i++) ss += d[i] * d[i];
  }
  return Math.sqrt(ss);
}

/**
 * One update at step `step` (1-based) with learning rate lr; gradients are multiplied by gradScale first
 * (clipping). torch: p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − lr·(m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps).
 */
export function adamwStep(groups: ParamGroup[], step: number, lr: number, o: AdamWOptions, gradScale = 1): void {
  const bc1 = 1 - o.beta1 ** step;
  const bc2 = 1 - o.beta2 ** step;
  const stepSize = lr / bc1;
  const decay = 1 - lr * o.weightDecay;
  const b1 = o.beta1;
  const b2 = o.beta2;
  for (const { param: p, grad: gr, m, v } of groups) {
    for (let i = 0; i < p.length; i++) {
      const g = gr[i] * gradScale;
      const mi = b1 * m[i] + (1 - b1) * g;
      const vi = b2 * v[i] + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - (stepSize * mi) / (Math.sqrt(vi / bc2) + o.eps);
    }
  }
}
