// The llama.cpp serving engine (`tunekit serve --engine llama.cpp`): node-llama-cpp runs the forward
// passes — on a GPU through its CUDA or Vulkan build — and tunekit does everything else, as for its own
// engine. A base model is exported once to GGUF (src/export, cached under a hash of the model files)
// and loaded once; a tuned model's PEFT adapter is exported to a GGUF LoRA (cached likewise) and
// applied to the contexts of its requests, so all adapters of a base share its one copy in memory.
// The prompt arrives as token ids (tunekit rendered and tokenized it), and each step llama.cpp returns
// the next-token distribution over the whole vocabulary, from which SequenceState samples with the
// request's options — temperature, top-k, top-p, seed, penalties, stop sequences, the thinking
// budget, constrained decoding, log probabilities — exactly as under tunekit's engine: every option
// keeps its meaning. A step whose choice is greedy and needs only the chosen token's probability asks
// llama.cpp for the token alone (no vocabulary crosses into JavaScript).
// Requests: at most `parallel` run at once (each with a context of its own: node-llama-cpp sets
// LoRAs per context, so requests of different adapters cannot share one), `maxQueue` more wait. A
// context is allocated whole, so its size is bounded (--context-size) where tunekit's grows.
// node-llama-cpp is imported on first use only, so `--engine tunekit` never loads it.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ControlledEvaluateInputItem, Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token, TokenBias } from 'node-llama-cpp';
import { InvalidRequestError, throwIfAborted } from '../errors.js';
import { exportGguf } from '../export/gguf.js';
import { exportGgufLora } from '../export/gguf-lora.js';
import { loadModelInfo, type ModelInfo } from '../models/model.js';
import { SequenceState, type GenerationChunk, type GenerationResult } from '../generate/sequence.js';
import type { ServableModel, ServingBackend } from '../api/catalog.js';
import { checkQueue, DEFAULT_ENGINE_OPTIONS, withFinally, type EngineOptions, type EngineStats, type ServingEngine, type SubmitOptions } from './engine.js';
import { EngineRequest } from './request.js';

/** `serve --gpu`: which node-llama-cpp build runs the model ('off': the CPU build, no layer offloaded). */
export const GPU_CHOICES = ['auto', 'cuda', 'vulkan', 'off'] as const;
export type GpuChoice = typeof GPU_CHOICES[number];

/** `serve --engine`. */
export const ENGINES = ['tunekit', 'llama.cpp'] as const;
export type EngineName = typeof ENGINES[number];

export interface LlamaCppOptions {
  gpu: GpuChoice;
  /** Where the GGUF exports are kept (serve: DATA_DIR/gguf). */
  cacheDir: string;
  /** CPU threads llama.cpp may use (TUNEKIT_THREADS, else every core). */
  threads?: number;
  /** Tokens of one request's context at most (prompt and output): llama.cpp allocates a context whole. */
  contextSize?: number;
}

/** `serve --context-size` by default. */
export const DEFAULT_LLAMACPP_CONTEXT = 8192;

/** node-llama-cpp's Llama instance for one serve process, and the GGUF exports it loads. */
export class LlamaCppRuntime {
  private readonly exports = new Map<string, Promise<string>>();
  /** Hashes of directories' files, by path: a served directory is read once, as tunekit's engine reads it. */
  private readonly hashes = new Map<string, Promise<string>>();
  /** Base models in llama.cpp's memory now (loads finished, disposals not). */
  loadedModels = 0;

  private constructor(readonly lib: typeof import('node-llama-cpp'), readonly llama: Llama, readonly opts: LlamaCppOptions) {}

  /** Loads node-llama-cpp and the build `opts.gpu` names (prebuilt binaries only: never a compile or a download). */
  static async open(opts: LlamaCppOptions): Promise<LlamaCppRuntime> {
    let lib: typeof import('node-llama-cpp');
    try {
      lib = await import('node-llama-cpp');
    } catch (err) {
      throw new InvalidRequestError(`--engine llama.cpp needs the node-llama-cpp package, an optional dependency of tunekit that is not installed here (npm install node-llama-cpp@3.21.1): ${(err as Error).message.split('\n')[0]}`);
    }
    const { getLlama, LlamaLogLevel } = lib;
    let llama: Llama;
    try {
      llama = await getLlama({
        gpu: opts.gpu === 'off' ? false : opts.gpu,
        build: 'never', usePrebuiltBinaries: true, skipDownload: true, progressLogs: false,
        logLevel: LlamaLogLevel.error,
        maxThreads: opts.threads ?? (Number(process.env.TUNEKIT_THREADS) || os.availableParallelism()),
      });
    } catch (err) {
      throw new InvalidRequestError(`--gpu ${opts.gpu}: node-llama-cpp has no usable ${opts.gpu === 'off' ? 'CPU' : opts.gpu} build here: ${(err as Error).message.split('\n')[0]}`);
    }
    return new LlamaCppRuntime(lib, llama, opts);
  }

  /** One line for the log: the build and the devices it runs on. */
  async describe(): Promise<string> {
    const gpu = this.llama.gpu;
    const devices = gpu === false ? [] : await this.llama.getGpuDeviceNames();
    return `llama.cpp (node-llama-cpp ${this.llama.buildType}, ${gpu === false ? 'CPU' : `${gpu}: ${devices.join(', ') || 'no device'}`}, ${this.llama.maxThreads} threads)`;
  }

  /** The catalog's backend: base models served on this runtime. */
  backend(): ServingBackend {
    return async (dir) => {
      const model = await loadModelInfo(dir);
      const handle = new ModelHandle(this, model, await this.baseGguf(dir));
      return {
        model,
        engine: (opts) => new LlamaCppEngine(this, handle, opts),
        dispose: () => handle.unloadWhenIdle(),
      } satisfies ServableModel;
    };
  }

  /** The GGUF of a model directory, exported once: DIR/gguf/HASH.gguf, HASH over the directory's files. */
  baseGguf(dir: string): Promise<string> {
    return this.cached(async () => `${await this.hash(dir)}.gguf`, async (out) => { await exportGguf({ modelDir: dir, out, dtype: 'f32' }); });
  }

  /** The GGUF LoRA of a PEFT adapter on the base in `baseDir`, exported once (hash of both). */
  adapterGguf(baseDir: string, adapterDir: string): Promise<string> {
    return this.cached(
      async () => `lora-${createHash('sha256').update(await this.hash(baseDir)).update(await this.hash(adapterDir)).digest('hex').slice(0, 32)}.gguf`,
      async (out) => { await exportGgufLora({ modelDir: baseDir, adapterDir, out }); },
    );
  }

  private hash(dir: string): Promise<string> {
    const key = path.resolve(dir);
    let h = this.hashes.get(key);
    if (!h) {
      h = hashFiles(key);
      this.hashes.set(key, h);
      h.catch(() => this.hashes.delete(key));
    }
    return h;
  }

  /** A file of the cache, written by `write` (to a temporary name, then renamed) unless it exists. */
  private async cached(name: () => Promise<string>, write: (out: string) => Promise<void>): Promise<string> {
    const file = path.join(this.opts.cacheDir, await name());
    let p = this.exports.get(file);
    if (!p) {
      p = (async () => {
        if (fs.existsSync(file)) return file;
        fs.mkdirSync(this.opts.cacheDir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        try {
          await write(tmp);
          fs.renameSync(tmp, file);
        } finally {
          fs.rmSync(tmp, { force: true });
        }
        return file;
      })();
      this.exports.set(file, p);
      p.catch(() => this.exports.delete(file));
    }
    return p;
  }
}

/** sha256 over the names and contents of a directory's files (sorted; subdirectories left out), 128 bits in hex. */
async function hashFiles(dir: string): Promise<string> {
  const h = createHash('sha256');
  // Followed links count as files: a Hugging Face cache snapshot is links to blobs.
  const names = fs.readdirSync(dir).filter((name) => fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.isFile()).sort();
  for (const name of names) {
    h.update(`${name}\0`);
    for await (const chunk of fs.createReadStream(path.join(dir, name))) h.update(chunk as Buffer);
    h.update('\0');
  }
  return h.digest('hex').slice(0, 32);
}

/**
 * A base model's llama.cpp model: loaded on first use, unloaded once the catalog dropped it and no
 * request holds it (a request that still comes, holding the dropped model, loads it for its run).
 */
class ModelHandle {
  private loading: Promise<LlamaModel> | undefined;
  private users = 0;
  private unload = false;

  constructor(readonly runtime: LlamaCppRuntime, readonly info: ModelInfo, readonly gguf: string) {}

  async acquire(): Promise<LlamaModel> {
    this.users++;
    try {
      this.loading ??= this.runtime.llama.loadModel({ modelPath: this.gguf, ...(this.runtime.llama.gpu === false ? { gpuLayers: 0 } : {}) })
        .then((m) => { this.runtime.loadedModels++; return m; });
      return await this.loading;
    } catch (err) {
      this.loading = undefined;
      this.release();
      throw err;
    }
  }

  release(): void {
    this.users--;
    this.maybeUnload();
  }

  unloadWhenIdle(): Promise<void> {
    this.unload = true;
    this.maybeUnload();
    return Promise.resolve();
  }

  private maybeUnload(): void {
    if (!this.unload || this.users > 0 || !this.loading) return;
    const p = this.loading;
    this.loading = undefined;
    void p.then(async (m) => {
      await m.dispose();
      this.runtime.loadedModels--;
    }, () => undefined);
  }
}

/** The requests of one submit (one, or one per candidate): they share a context, one sequence each. */
interface Group {
  reqs: EngineRequest[];
  adapterDir: string | undefined;
}

export class LlamaCppEngine implements ServingEngine {
  private readonly opts: EngineOptions;
  private readonly queue: Group[] = [];
  private running = 0;
  private active = 0;
  private passes = 0;
  /** GGUF LoRA files this engine's requests used, with their sizes (llama.cpp keeps each loaded). */
  private readonly adapterFiles = new Map<string, number>();
  private readonly contexts = new Set<LlamaContext>();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly runtime: LlamaCppRuntime, private readonly handle: ModelHandle, opts: Partial<EngineOptions> = {}) {
    this.opts = { ...DEFAULT_ENGINE_OPTIONS, ...opts };
  }

  submit(promptIds: number[], opts: SubmitOptions): AsyncGenerator<GenerationChunk, GenerationResult> {
    return this.submitCandidates(promptIds, [opts])[0]!;
  }

  /** Candidates read the prompt each (llama.cpp cannot copy a sequence's cache into another here), in one batch. */
  submitCandidates(promptIds: number[], opts: SubmitOptions[]): AsyncGenerator<GenerationChunk, GenerationResult>[] {
    const states = opts.map((o) => new SequenceState(this.handle.info, promptIds, { ...o, contextSize: this.contextSize(promptIds.length, o) }));
    const signal = opts[0]!.signal;
    throwIfAborted(signal);
    checkQueue(this.queue.length, this.running, this.opts);
    const group: Group = { reqs: states.map((st, i) => new EngineRequest(st, opts[i]!.adapterDir, signal)), adapterDir: opts[0]!.adapterDir };
    this.queue.push(group);
    this.active++;
    const streams = group.reqs.map((r) => r.read(() => this.dequeueIfDone(group)));
    if (signal) {
      const onAbort = () => { for (const r of group.reqs) r.cancel(); this.dequeueIfDone(group); };
      signal.addEventListener('abort', onAbort, { once: true });
      let open = group.reqs.length;
      const detach = () => { if (--open === 0) signal.removeEventListener('abort', onAbort); };
      this.admit();
      return streams.map((it) => withFinally(it, detach));
    }
    this.admit();
    return streams;
  }

  /**
   * A request's context: prompt + maxTokens within the runtime's --context-size. A request that leaves
   * maxTokens at the model's context (the API's default: until the context ends) ends there; one that
   * asks for more output than fits is refused.
   */
  private contextSize(promptTokens: number, o: SubmitOptions): number {
    const cap = Math.min(this.runtime.opts.contextSize ?? DEFAULT_LLAMACPP_CONTEXT, this.handle.info.config.maxPositionEmbeddings);
    const want = o.contextSize ?? promptTokens + o.maxTokens;
    if (want > cap && o.maxTokens < this.handle.info.config.maxPositionEmbeddings && promptTokens < cap) {
      throw new InvalidRequestError(`Invalid value at 'generation_config.max_output_tokens': the prompt (${promptTokens} tokens) and ${o.maxTokens} output tokens exceed the context of the llama.cpp engine, ${cap} tokens (serve --context-size)`);
    }
    return Math.min(want, cap);
  }

  stats(): EngineStats {
    let adapterBytes = 0;
    for (const n of this.adapterFiles.values()) adapterBytes += n;
    let kvBytes = 0;
    for (const c of this.contexts) kvBytes += c.stateSize;
    return { running: this.running, queued: this.queue.reduce((n, g) => n + g.reqs.length, 0), passes: this.passes, adapterBytes, kvBytes };
  }

  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** A queued group whose requests were all cancelled leaves the queue at once. */
  private dequeueIfDone(group: Group): void {
    if (!group.reqs.every((r) => r.over)) return;
    const i = this.queue.indexOf(group);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.finished();
  }

  private finished(): void {
    if (--this.active > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Starts queued groups while slots are free, oldest first. */
  private admit(): void {
    while (this.queue.length > 0 && this.running < this.opts.parallel) {
      const group = this.queue.shift()!;
      this.running += group.reqs.length;
      void this.run(group).finally(() => {
        this.running -= group.reqs.length;
        this.finished();
        this.admit();
      });
    }
  }

  /** One group from its context's creation to its disposal. */
  private async run(group: Group): Promise<void> {
    let model: LlamaModel | undefined;
    let context: LlamaContext | undefined;
    try {
      const lora = group.adapterDir === undefined ? undefined : await this.runtime.adapterGguf(this.handle.info.dir, group.adapterDir);
      if (lora && !this.adapterFiles.has(lora)) this.adapterFiles.set(lora, fs.statSync(lora).size);
      if (group.reqs.every((r) => r.over)) return;
      model = await this.handle.acquire();
      if (group.reqs.every((r) => r.over)) return;
      const contextSize = Math.max(...group.reqs.map((r) => r.state.contextSize));
      // A float32 KV cache and no flash attention: what the GGUF computes then differs from tunekit's
      // engine by float rounding only, so both engines give the same greedy answers.
      context = await model.createContext({
        contextSize, sequences: group.reqs.length, batchSize: Math.min(contextSize * group.reqs.length, 512),
        flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
        ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
      });
      this.contexts.add(context);
      const ctx = context;
      const m = model;
      await Promise.all(group.reqs.map((r) => this.decode(r, ctx.getSequence(), m)));
    } catch (err) {
      for (const r of group.reqs) r.fail(err);
    } finally {
      // The context (its KV cache) goes with the group; the next request's is made fresh.
      if (context) {
        this.contexts.delete(context);
        await context.dispose();
      }
      if (model) this.handle.release();
    }
  }

  /** Runs one request on its sequence; whatever fails, fails that request only. */
  private async decode(r: EngineRequest, seq: LlamaContextSequence, model: LlamaModel): Promise<void> {
    try {
      await this.steps(r, seq, model);
    } catch (err) {
      r.fail(err);
    }
  }

  /** Reads the prompt, then one token per step until the sequence finishes or its caller leaves. */
  private async steps(r: EngineRequest, seq: LlamaContextSequence, model: LlamaModel): Promise<void> {
    r.phase = 'prompt';
    r.startedAt = performance.now();
    const V = this.handle.info.config.vocabSize;
    let feed: readonly number[] = r.promptIds;
    // The ids greedy steps may not pick, as llama.cpp's logit bias (the same list from step to step, mostly).
    let bias: { key: string; bias: TokenBias } | undefined;
    const tokenBias = (): TokenBias => {
      const ids = r.state.excludedIds;
      const key = ids.join(',');
      if (bias?.key !== key) {
        const b = new this.runtime.lib.TokenBias(model.tokenizer);
        for (const id of ids) b.set(id as Token, 'never');
        bias = { key, bias: b };
      }
      return bias.bias;
    };
    for (;;) {
      if (r.over) return;
      const greedy = r.state.needsOnlyArgmax;
      const last = feed[feed.length - 1]! as Token;
      const input: ControlledEvaluateInputItem[] = [
        ...(feed.slice(0, -1) as Token[]),
        [last, { generateNext: greedy ? { token: true, confidence: r.state.recordsLogprobs, options: { temperature: 0, tokenBias: tokenBias() } } : { probabilities: true } }],
      ];
      const out = await seq.controlledEvaluate(input);
      this.passes++;
      if (r.over) return;
      const next = out[input.length - 1]?.next;
      if (r.phase === 'prompt') {
        r.phase = 'generating';
        r.firstTokenAt = performance.now();
      }
      let step: { chunks: GenerationChunk[]; feed: number[] };
      if (greedy) {
        // The token's probability costs llama.cpp a sort of the vocabulary: asked for only when recorded.
        if (next?.token == null) throw new Error('internal: llama.cpp returned no token');
        step = r.state.nextChosen(next.token, next.confidence === undefined ? undefined : Math.log(next.confidence));
      } else {
        // Log probabilities serve as logits: SequenceState's softmax, sampler and masks read them alike.
        if (!next?.probabilities) throw new Error('internal: llama.cpp returned no probabilities');
        const logits = new Float32Array(V).fill(-Infinity);
        for (const [id, p] of next.probabilities) if (id < V) logits[id] = Math.log(p);
        step = r.state.next(logits);
      }
      r.push(step.chunks);
      if (r.state.finished) {
        r.complete();
        return;
      }
      feed = step.feed;
    }
  }
}
