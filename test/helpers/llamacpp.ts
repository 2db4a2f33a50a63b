// node-llama-cpp set up as a reference runtime for tests and benchmarks: the prebuilt CPU backend
// only (never a build, a download or a GPU), float32 KV cache and no flash attention, so that what it
// computes differs from our float32 transformer by rounding only. One Llama instance per process.

import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';

let llamaPromise: Promise<Llama> | undefined;

/** The process-wide CPU-only Llama instance. */
export function cpuLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  return llamaPromise;
}

export interface LlamaCppSession {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
  dispose(): Promise<void>;
}

export interface LlamaCppSessionOptions {
  contextSize?: number;
  threads?: number;
  /** KV cache element type; F32 (the default) keeps the reference exact to float32 rounding. */
  kvCacheType?: 'F32' | 'F16';
  /** A GGUF LoRA adapter applied to the context at scale 1. */
  lora?: string;
}

/** Loads a GGUF file and opens one context sequence on it. */
export async function openGguf(file: string, opts: LlamaCppSessionOptions = {}): Promise<LlamaCppSession> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0, useMmap: false });
  const kv = opts.kvCacheType ?? 'F32';
  const context = await model.createContext({
    contextSize: opts.contextSize ?? 256,
    batchSize: opts.contextSize ?? 256,
    threads: opts.threads ?? 1,
    flashAttention: false,
    experimentalKvCacheKeyType: kv,
    experimentalKvCacheValueType: kv,
    sequences: 1,
    ...(opts.lora ? { lora: { adapters: [{ filePath: opts.lora, scale: 1 }] } } : {}),
  });
  const sequence = context.getSequence();
  return {
    llama, model, context, sequence,
    async dispose() {
      sequence.dispose();
      await context.dispose();
      await model.dispose();
    },
  };
}

export interface GreedyStep {
  token: number;
  /** The full next-token distribution this token was picked from (V entries), when requested. */
  probabilities?: Float64Array;
}

/**
 * Evaluates `prompt` from an empty sequence and greedily generates `steps` tokens (temperature 0, no
 * penalties, end-of-generation tokens included), optionally with each step's distribution.
 */
export async function greedyDecode(
  session: LlamaCppSession, prompt: number[], steps: number, opts: { probabilities?: { vocabSize: number } } = {},
): Promise<GreedyStep[]> {
  await session.sequence.clearHistory();
  const out: GreedyStep[] = [];
  const it = session.sequence.evaluateWithMetadata(prompt as Token[], { probabilities: opts.probabilities !== undefined }, {
    temperature: 0,
    yieldEogToken: true,
  });
  for await (const step of it) {
    const s: GreedyStep = { token: step.token };
    const probs = (step as { probabilities?: Map<Token, number> }).probabilities;
    if (probs) {
      const dense = new Float64Array(opts.probabilities!.vocabSize);
      for (const [id, p] of probs) dense[id] = p;
      s.probabilities = dense;
    }
    out.push(s);
    if (out.length >= steps) break;
  }
  return out;
}

/** log softmax in float64, to compare with llama.cpp's probabilities. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (x) => x - lse);
}
