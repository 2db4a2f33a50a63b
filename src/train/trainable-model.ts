// Training on the model core: a packed batch (several examples back to back, positions restarting per
// example) runs through the one decoder (src/core/decoder.ts) in a workspace that keeps activations
// for the backward pass. The base weights are frozen; the LoRA pairs (when given, as the one adapter
// every row runs) and, in full fine-tuning, every base weight receive gradients. Parameter gradients
// accumulate (+=) across calls until the caller zeroes them.
// Dimension letters: N tokens in the batch.

import type { ModelConfig } from '../models/config.js';
import type { ModelWeights } from '../models/weights.js';
import type { LoraAdapter } from '../lora/lora.js';
import { Decoder, type AdapterLookup, type WeightGrads } from '../core/decoder.js';
import { createWorkspace, type Workspace } from '../core/workspace.js';
import type { Batch } from '../core/batch.js';
import type { CrossEntropyResult } from '../engine/cross-entropy.js';

export type { WeightGrads } from '../core/decoder.js';

/** A packed batch: several examples back to back, as one sequence of N tokens. */
export interface TrainBatch {
  N: number;
  tokens: Int32Array; // (N)
  targets: Int32Array; // (N) next token where it carries loss, else -1
  positions: Int32Array; // (N) restart at 0 per example
  segStart: Int32Array; // (N) index of the first token of each token's example
}

export interface TrainableModelOptions {
  /** Largest batch (tokens) this model will see. */
  maxTokens: number;
  lora?: LoraAdapter;
  /** Gradients of the LoRA pairs, same structure as `lora`. */
  loraGrads?: LoraAdapter;
  /** Gradients of every base weight (full fine-tuning). */
  weightGrads?: WeightGrads;
  /** Layers (the last ones) whose activations are recomputed in the backward pass (src/train/memory.ts). */
  recomputeLayers?: number;
}

/** The adapter id the rows of a training batch carry. */
const TRAINED = 0;

export class TrainableModel {
  readonly decoder: Decoder;
  private readonly ws: Workspace;
  private readonly adapters: AdapterLookup | undefined;

  constructor(readonly config: ModelConfig, readonly weights: ModelWeights, readonly opts: TrainableModelOptions) {
    this.decoder = new Decoder(config, weights, opts.weightGrads !== undefined);
    this.ws = createWorkspace(config, {
      maxTokens: opts.maxTokens, backward: true, recomputeLayers: opts.recomputeLayers, loraRank: opts.lora?.config.rank ?? 0,
      dropout: (opts.lora?.config.dropout ?? 0) > 0,
    });
    const entry = opts.lora ? { adapter: opts.lora, grads: opts.loraGrads } : undefined;
    this.adapters = entry ? { get: (id) => (id === TRAINED ? entry : undefined) } : undefined;
  }

  /** Loss statistics of a batch without gradients (no dropout unless a mask seed is given, for tests). */
  evaluate(batch: TrainBatch, dropoutSeed: number | null = null): CrossEntropyResult {
    const pass = this.decoder.forward(this.coreBatch(batch), this.ws, { adapters: this.adapters, dropoutSeed: dropoutSeed ?? undefined });
    return this.decoder.loss(pass);
  }

  /**
   * Forward and backward over the batch; gradients of the mean loss × (count / lossDenominator)
   * accumulate into the gradient buffers, so batches of one step can be summed and divided once.
   */
  forwardBackward(batch: TrainBatch, lossDenominator: number, dropoutSeed = 0): CrossEntropyResult {
    const pass = this.decoder.forward(this.coreBatch(batch), this.ws, { adapters: this.adapters, dropoutSeed });
    return this.decoder.loss(pass, { scale: 1 / lossDenominator, weights: this.opts.weightGrads });
  }

  /** The packed batch as the core's batch: each example is a sequence (its id, its first row). */
  private coreBatch(b: TrainBatch): Batch {
    const batch: Batch = { N: b.N, tokens: b.tokens, positions: b.positions, seqIds: b.segStart, targets: b.targets };
    if (this.adapters) batch.adapters = new Int32Array(b.N).fill(TRAINED);
    return batch;
  }
}
