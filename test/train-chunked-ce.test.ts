// Cross-entropy over a real vocabulary (Gemma 3's 262,144 tokens) runs in chunks of rows, so the
// (tokens, vocabulary) logits never exist whole: the loss and the gradients the chunked path gives
// equal the independent PyTorch reference's (tools/torch-reference/grads.py, float64, which
// materialises every logit), for LoRA and full fine-tuning (where the tied embedding also takes the
// output layer's gradient); and no buffer a training workspace allocates at 2048 tokens per step is
// anywhere near tokens × vocabulary. The PyTorch part needs Debian's python3-torch and is skipped
// without it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTinyModel } from '../src/models/tiny.js';
import { loadModelConfig, loadModelWeights } from '../src/models/loader.js';
import { parseModelConfig } from '../src/models/config.js';
import { recomputeLayers, trainingWorkspaceBytes, WORKSPACE_BUDGET_BYTES } from '../src/train/memory.js';
import { workspaceAllocations } from '../src/core/workspace.js';
import { CE_CHUNK_BYTES, ceChunkRows } from '../src/engine/cross-entropy.js';
import { assertGradsEqualTorch, torchMissing } from './helpers/torch-grads.js';
import { randomPackedBatch } from './helpers/train-batch.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const PUBLISHED = path.join(here, '..', '..', 'test', 'fixtures', 'published-configs');
const GEMMA_VOCAB = 262144;



test('chunked cross-entropy over 262,144 tokens equals the unchunked PyTorch reference (loss, LoRA and full gradients)', { skip: torchMissing() }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-chunked-ce-'));
  try {
    const modelDir = path.join(dir, 'model');
    initTinyModel({ family: 'gemma3', size: 'tiny', seed: 3, out: modelDir, vocabSize: GEMMA_VOCAB });
    const config = loadModelConfig(modelDir);
    const weights = loadModelWeights(modelDir, config);
    // More rows with a target than one chunk holds, so the loss and gradients span chunks.
    const rows = ceChunkRows(GEMMA_VOCAB);
    const batch = randomPackedBatch([120, 100, 110], GEMMA_VOCAB, 11, 0.9);
    const count = batch.targets.filter((t) => t !== -1).length;
    assert.ok(count > rows && count < batch.N, `${count} targets for chunks of ${rows} rows`);

    assertGradsEqualTorch(dir, modelDir, config, weights, batch, 5);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a training workspace at the published shapes and 2048 tokens holds no (tokens, vocabulary) buffer and fits its budget', () => {
  const N = 2048;
  for (const file of ['gemma-3-270m.json', 'Qwen3-0.6B.json', 'Llama-3.2-1B.json']) {
    const config = parseModelConfig(JSON.parse(fs.readFileSync(path.join(PUBLISHED, file), 'utf8')) as Record<string, unknown>, file);
    const V = config.vocabSize;
    const R = ceChunkRows(V);
    assert.ok(R * V * 4 <= CE_CHUNK_BYTES && R >= 16, `${file}: chunk of ${R} rows`);
    const recomputed = recomputeLayers(config, { maxTokens: N, loraRank: 8, mode: 'auto' });
    const sizes = workspaceAllocations(config, { maxTokens: N, loraRank: 8, backward: true, recomputeLayers: recomputed });
    // The logits are one (R, V) chunk of at most CE_CHUNK_BYTES, and no buffer comes within 8x of (N, V).
    assert.ok(sizes.includes(R * V), `${file}: chunk of ${R} rows`);
    assert.ok(Math.max(...sizes) * 8 <= N * V, `${file}: a buffer of ${Math.max(...sizes)} floats`);
    const bytes = trainingWorkspaceBytes(config, { maxTokens: N, loraRank: 8 }, recomputed);
    assert.ok(bytes <= WORKSPACE_BUDGET_BYTES, `${file}: workspace ${bytes} bytes with ${recomputed} layers recomputed`);
    // `auto` recomputes no more layers than the budget needs.
    if (recomputed > 0) assert.ok(trainingWorkspaceBytes(config, { maxTokens: N, loraRank: 8 }, recomputed - 1) > WORKSPACE_BUDGET_BYTES);
  }
});
