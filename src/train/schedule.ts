// Learning-rate schedule: linear warmup from 0 to the peak, then linear or cosine decay to 0 at the
// last step. Steps are 1-based.

export type DecayKind = 'linear' | 'cosine' | 'constant';

export function learningRateAt(step: number, totalSteps: number, peak: number, warmupSteps: number, decay: DecayKind): number {
  if (warmupSteps > 0 && step <= warmupSteps) return (peak * step) / warmupSteps;
  if (decay === 'constant') return peak;
  const span = Math.max(1, totalSteps - warmupSteps);
  const progress = Math.min(1, (step - warmupSteps) / span);
  if (decay === 'linear') return peak * (1 - progress);
  return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
}
