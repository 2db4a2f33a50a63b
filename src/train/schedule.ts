// Learning-rate schedule, as Hugging Face transformers schedules it (get_linear_schedule_with_warmup,
// get_cosine_schedule_with_warmup with half a cycle, get_constant_schedule_with_warmup, driven by
// torch's LambdaLR): optimizer step k (1-based) runs at peak × λ(k − 1), where for s = k − 1
//   warmup  s < W:  s / max(1, W)                       (so the first step of a warmup runs at 0)
//   linear:         max(0, (T − s) / max(1, T − W))      (the last step runs at peak / (T − W), not 0)
//   cosine:         max(0, ½(1 + cos(π (s − W) / max(1, T − W))))
//   constant:       1
// and W = ceil(T × warmup ratio) (TrainingArguments.get_warmup_steps).

export type DecayKind = 'linear' | 'cosine' | 'constant';

export function warmupStepsFor(totalSteps: number, warmupRatio: number): number {
  return Math.ceil(totalSteps * warmupRatio);
}

export function learningRateAt(step: number, totalSteps: number, peak: number, warmupSteps: number, decay: DecayKind): number {
  const s = step - 1;
  if (s < warmupSteps) return (peak * s) / Math.max(1, warmupSteps);
  if (decay === 'constant') return peak;
  const span = Math.max(1, totalSteps - warmupSteps);
  if (decay === 'linear') return peak * Math.max(0, (totalSteps - s) / span);
  return peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((s - warmupSteps) / span))));
}
