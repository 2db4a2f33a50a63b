// How many layers of a training workspace recompute their activations in the backward pass. `auto`
// recomputes the fewest layers that bring the workspace (activations, gradient scratch, cross-entropy
// and attention scratch: every buffer it allocates) within WORKSPACE_BUDGET_BYTES, so that at the
// published shapes and 2048 tokens per step the process stays within the f32 weights + 2 GB;
// `all` and `none` are the two ends.

import type { ModelConfig } from '../models/config.js';
import { workspaceAllocations } from '../core/workspace.js';

export const RECOMPUTE_MODES = ['auto', 'all', 'none'] as const;
export type RecomputeMode = (typeof RECOMPUTE_MODES)[number];

/** What the training workspace may take; the rest of 2 GB is the runtime, the batch and the optimizer. */
export const WORKSPACE_BUDGET_BYTES = 1.5 * 2 ** 30;

export interface RecomputeOptions {
  maxTokens: number;
  loraRank: number;
  dropout?: boolean;
  mode: RecomputeMode;
}

/** Bytes of a training workspace that recomputes its last `recomputeLayers` layers. */
export function trainingWorkspaceBytes(config: ModelConfig, o: Omit<RecomputeOptions, 'mode'>, recomputeLayers: number): number {
  const sizes = workspaceAllocations(config, { maxTokens: o.maxTokens, loraRank: o.loraRank, dropout: o.dropout, backward: true, recomputeLayers });
  return 4 * sizes.reduce((a, n) => a + n, 0);
}

/** The number of layers (the last ones) whose activations are recomputed. */
export function recomputeLayers(config: ModelConfig, o: RecomputeOptions): number {
  const L = config.numLayers;
  if (o.mode === 'none') return 0;
  if (o.mode === 'all') return L;
  for (let r = 0; r < L; r++) if (trainingWorkspaceBytes(config, o, r) <= WORKSPACE_BUDGET_BYTES) return r;
  return L;
}
