// `tunekit eval`: generate the candidate's (and the baseline's) responses to a dataset's prompts, score
// them with computed and judged metrics, print a summary with bootstrap confidence intervals and write
// results.jsonl, summary.json and report.html to --out.
// A side (candidate, baseline, judge) is a model directory, a PEFT adapter directory (on --base, or on
// the adapter's base_model_name_or_path when that is a directory), or the base URL of an
// OpenAI-compatible server (…/v1; --candidate-model/--baseline-model/--judge-model name the model,
// --api-key or OPENAI_API_KEY the key), or a tunekit endpoint (endpoints/ID or its full name) or
// publisher model (publishers/P/models/M) on the server the client commands use (--api, --key, --project, --location; see `tunekit config`), called
// through its OpenAI-compatible routes. Local sides that share a base model share one serving engine,
// so their requests are batched together.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { InvalidRequestError } from '../../errors.js';
import { loadModel, type LoadedModel } from '../../models/model.js';
import { Engine } from '../../serve/engine.js';
import { openAiChat, openAiJudge, type ChatMessage, type Judge } from '../../eval/judge.js';
import { engineJudge, generateLocal, LOCAL_JUDGE_MAX_TOKENS } from '../../eval/local-model.js';
import { readEvalDataset } from '../../eval/dataset.js';
import { runEvaluation, summaryTable, type EvalSide } from '../../eval/run.js';
import { writeEvalOutputs } from '../../eval/report.js';
import { floatOption, intOption } from '../options.js';
import { createProgress, type Progress } from '../progress.js';
import { clientOf, clientOptions } from '../client-output.js';
import type { ClientFlags } from '../../client/config.js';

interface EvalCliOptions {
  dataset: string;
  candidate: string;
  baseline?: string;
  base?: string;
  metrics: string;
  judge?: string;
  candidateModel?: string;
  baselineModel?: string;
  judgeModel?: string;
  apiKey?: string;
  judgeSamples: number;
  judgeRetries: number;
  judgeTemperature?: number;
  judgeMaxTokens?: number;
  maxTokens: number;
  temperature: number;
  seed?: number;
  parallel: number;
  jsonSchema?: string;
  useStemmer?: boolean;
  out: string;
}

type Target = { kind: 'url'; url: string; model: string; apiKey?: string } | { kind: 'local'; modelDir: string; adapterDir?: string };

const ENDPOINT = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?endpoints\/[^/]+$/;
const PUBLISHER_MODEL = /^(?:projects\/[^/]+\/locations\/[^/]+\/)?(publishers\/[^/]+\/models\/[^/]+)$/;

/**
 * What a side's spec names: a URL, a tunekit endpoint or publisher model (resolved by `endpoint`), a
 * model directory, or an adapter directory on a base. Any other name is refused: tunekit eval calls
 * only the servers it is given, so a model only Vertex AI serves needs a URL that serves it.
 */
export function resolveTarget(spec: string, base: string | undefined, remoteModel: string | undefined, flag: string, endpoint?: (name: string) => Target): Target {
  if (/^https?:\/\//.test(spec)) return { kind: 'url', url: spec, model: remoteModel ?? 'default' };
  const isDir = fs.existsSync(spec) && fs.statSync(spec).isDirectory();
  if (!isDir && (ENDPOINT.test(spec) || PUBLISHER_MODEL.test(spec)) && endpoint) {
    if (remoteModel !== undefined) throw new InvalidRequestError(`${flag}-model applies to URL sides; ${flag} ${spec} is a tunekit endpoint or publisher model.`);
    return endpoint(spec);
  }
  if (!isDir) {
    throw new InvalidRequestError(`${flag} ${spec}: not a directory, an http(s) URL, or a tunekit endpoint / publisher model (endpoints/ID, publishers/P/models/M) on the server of --api. ` +
      `A model only Vertex AI serves (e.g. gemini-2.5-pro) cannot be called by tunekit eval: give the URL of an OpenAI-compatible server that serves it and ${flag}-model NAME.`);
  }
  if (fs.existsSync(path.join(spec, 'config.json'))) return { kind: 'local', modelDir: spec };
  const adapterConfig = path.join(spec, 'adapter_config.json');
  if (fs.existsSync(adapterConfig)) {
    const named = (JSON.parse(fs.readFileSync(adapterConfig, 'utf8')) as { base_model_name_or_path?: unknown }).base_model_name_or_path;
    const modelDir = base ?? (typeof named === 'string' && fs.existsSync(path.join(named, 'config.json')) ? named : undefined);
    if (!modelDir) throw new InvalidRequestError(`${flag} ${spec} is an adapter: give its base model with --base DIR.`);
    return { kind: 'local', modelDir, adapterDir: spec };
  }
  throw new InvalidRequestError(`${flag} ${spec}: neither a model (config.json) nor an adapter (adapter_config.json).`);
}

function describe(t: Target): string {
  return t.kind === 'url' ? `${t.model} at ${t.url}` : t.adapterDir ? `${t.adapterDir} on ${t.modelDir}` : t.modelDir;
}

export function registerEvalCommand(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate a model (against a baseline) on a dataset with computed and judged metrics')
    .requiredOption('--dataset <file.jsonl>', 'examples: {"prompt","reference"}, Vertex "contents" or OpenAI "messages"')
    .requiredOption('--candidate <dir|adapter|url|endpoint|publisher-model>', 'the model evaluated')
    .option('--baseline <dir|adapter|url|endpoint|publisher-model>', 'the model it is compared with')
    .option('--base <dir>', 'base model of adapter sides')
    .requiredOption('--metrics <list>', 'comma-separated: exact_match,bleu,rouge_l,json_valid,coherence,pairwise_instruction_following,...')
    .option('--judge <dir|adapter|url|endpoint|publisher-model>', 'the model that judges judged metrics')
    .option('--candidate-model <name>', 'model name for a URL candidate')
    .option('--baseline-model <name>', 'model name for a URL baseline')
    .option('--judge-model <name>', 'model name for a URL judge')
    .option('--api-key <key>', 'key for URL sides (default: $OPENAI_API_KEY); endpoint sides use --key')
    .option('--judge-samples <n>', 'judgments per instance (mean and spread reported)', intOption('--judge-samples', 1), 1)
    .option('--judge-retries <n>', 'extra attempts after an unusable judgment', intOption('--judge-retries', 0), 2)
    .option('--judge-temperature <t>', 'judge sampling temperature (default 0, or 1 with several samples)', floatOption('--judge-temperature', 0, 2))
    .option('--judge-max-tokens <n>', `tokens per judge answer at most (sent as max_tokens to a URL judge; default ${LOCAL_JUDGE_MAX_TOKENS} for a local judge, the server's own for a URL one)`, intOption('--judge-max-tokens', 1))
    .option('--max-tokens <n>', 'tokens per generated response at most', intOption('--max-tokens', 1), 256)
    .option('--temperature <t>', 'generation temperature (0: greedy)', floatOption('--temperature', 0, 100), 0)
    .option('--seed <n>', 'sampling and bootstrap seed', intOption('--seed'))
    .option('--parallel <n>', 'requests in flight per side', intOption('--parallel', 1), 8)
    .option('--json-schema <file>', 'JSON Schema for json_schema_valid')
    .option('--use-stemmer', 'Porter-stem tokens for the rouge metrics')
    .requiredOption('--out <dir>', 'directory for results.jsonl, summary.json and report.html');
  clientOptions(cmd)
    .action(async (o: EvalCliOptions & ClientFlags) => {
      const examples = readEvalDataset(o.dataset);
      const metrics = o.metrics.split(',').map((m) => m.trim()).filter((m) => m !== '');
      const apiKey = o.apiKey ?? process.env.OPENAI_API_KEY;
      const engines = new Map<string, Promise<{ model: LoadedModel; engine: Engine }>>();
      const engineFor = (dir: string) => {
        const key = path.resolve(dir);
        let e = engines.get(key);
        if (!e) {
          e = loadModel(dir).then((model) => ({ model, engine: new Engine(model, { parallel: o.parallel, maxQueue: Math.max(64, 4 * o.parallel) }) }));
          engines.set(key, e);
        }
        return e;
      };
      const side = (t: Target): EvalSide => ({
        description: describe(t),
        async generate(ex, i) {
          const seed = o.seed === undefined ? undefined : o.seed + i;
          if (t.kind === 'url') {
            const messages: ChatMessage[] = [...(ex.system ? [{ role: 'system' as const, content: ex.system }] : []), { role: 'user', content: ex.prompt }];
            return openAiChat({ url: t.url, model: t.model, apiKey: t.apiKey ?? apiKey }, messages, { temperature: o.temperature, seed, maxTokens: o.maxTokens });
          }
          const { model, engine } = await engineFor(t.modelDir);
          return generateLocal(engine, model, ex.prompt, { system: ex.system, adapterDir: t.adapterDir, maxTokens: o.maxTokens, temperature: o.temperature, seed });
        },
      });
      // Endpoint sides: the client's server and key, the endpoint by its full name as the OpenAI model.
      let usedEndpoint = false;
      const endpoint = (name: string): Target => {
        usedEndpoint = true;
        const client = clientOf(o);
        // Publisher models are not scoped by project: the OpenAI routes take publishers/P/models/M.
        const publisher = PUBLISHER_MODEL.exec(name)?.[1];
        if (publisher) return { kind: 'url', url: `${client.settings.api}/v1`, model: publisher, apiKey: client.settings.key };
        return { kind: 'url', url: `${client.settings.api}/v1`, model: client.name('endpoints', name.startsWith('projects/') ? name : name.slice('endpoints/'.length)), apiKey: client.settings.key };
      };
      const candidate = resolveTarget(o.candidate, o.base, o.candidateModel, '--candidate', endpoint);
      const baseline = o.baseline ? resolveTarget(o.baseline, o.base, o.baselineModel, '--baseline', endpoint) : undefined;
      let judge: Judge | undefined;
      const judgeTarget = o.judge ? resolveTarget(o.judge, o.base, o.judgeModel, '--judge', endpoint) : undefined;
      const clientFlags = (['api', 'key', 'project', 'location'] as const).filter((f) => o[f] !== undefined);
      if (!usedEndpoint && clientFlags.length) {
        throw new InvalidRequestError(`${clientFlags.map((f) => `--${f}`).join(', ')}: these apply to tunekit endpoint sides (endpoints/ID), and no side is one.`);
      }
      if (o.judgeMaxTokens !== undefined && !judgeTarget) throw new InvalidRequestError('--judge-max-tokens limits the judge\'s answers, and no --judge is given.');
      if (judgeTarget) {
        const t = judgeTarget;
        if (t.kind === 'url') judge = openAiJudge({ url: t.url, model: t.model, apiKey: t.apiKey ?? apiKey });
        else {
          const { model, engine } = await engineFor(t.modelDir);
          judge = engineJudge(engine, model, { description: describe(t), adapterDir: t.adapterDir });
        }
      }
      const schema = o.jsonSchema ? JSON.parse(fs.readFileSync(o.jsonSchema, 'utf8')) as unknown : undefined;
      const progress = evalProgress();
      const outcome = await runEvaluation(examples, side(candidate), baseline ? side(baseline) : undefined, {
        metrics,
        judge: judge && { judge, samples: o.judgeSamples, retries: o.judgeRetries, temperature: o.judgeTemperature, maxTokens: o.judgeMaxTokens, seed: o.seed, concurrency: o.parallel },
        computed: { useStemmer: o.useStemmer ?? false, schema },
        concurrency: o.parallel,
        bootstrapSeed: o.seed ?? 0,
        onProgress: progress.onProgress,
      }).finally(progress.stop);
      const config = {
        dataset: o.dataset, candidate: describe(candidate), ...(baseline ? { baseline: describe(baseline) } : {}),
        ...(judge ? { judge: judge.description, judgeSamples: o.judgeSamples, judgeRetries: o.judgeRetries, judgeMaxTokens: o.judgeMaxTokens ?? null } : {}),
        metrics, examples: examples.length, maxTokens: o.maxTokens, temperature: o.temperature, seed: o.seed ?? null,
        useStemmer: o.useStemmer ?? false, createdAt: new Date().toISOString(),
      };
      const files = writeEvalOutputs(o.out, outcome, config);
      process.stdout.write(`${summaryTable(outcome.summary, baseline !== undefined)}\n\nwrote ${files.results}, ${files.summary} and ${files.report}\n`);
    });
}

/** Progress on stderr: the shared bar per phase on a terminal, one line per finished phase otherwise. */
function evalProgress(): { onProgress: (what: string, done: number, total: number) => void; stop: () => void } {
  let bar: Progress | undefined;
  let phase = '';
  const stop = () => bar?.stop();
  return {
    stop,
    onProgress(what, done, total) {
      if (what !== phase) {
        stop();
        phase = what;
        bar = createProgress({ label: what, total });
      }
      if (bar!.live) bar!.update(done);
      else if (done === total) process.stderr.write(`${what}: ${done}/${total}\n`);
    },
  };
}
