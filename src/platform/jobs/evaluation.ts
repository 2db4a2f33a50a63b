// A tuning job's evaluation (supervised_tuning_spec.evaluation_config), run by its worker after tuning
// and before the job is committed: the tuned model (base + the job's adapter) and the base model (the
// baseline) answer the validation dataset's prompts on one serving engine, the metrics score them
// through the same run as `tunekit eval` (src/eval/run.ts), and results.jsonl, summary.json and
// report.html go to the evaluation's output directory:
//   output_config.gcs_destination.output_uri_prefix/<job id>/evaluation/  when the config gives one,
//   <TuningJob.output_uri>/<job id>/evaluation/                          when the job has an output_uri,
//   gs://<tunekit's bucket>/tuningJobs/<job id>/evaluation/              otherwise.
// The outcome is one EvaluateDatasetRun for the last checkpoint (the tuned model): its
// evaluate_dataset_response (the aggregation results and the output directory), and `error` when the
// evaluation failed or a metric could not score a single instance. An evaluation failure does not fail
// the job: its tuning succeeded, and the run's error says what went wrong.
// Crash safety: the finished run is written to the job's staging directory (evaluation/run.json) before
// the commit, so a worker resumed after a crash neither tunes again (the trainer resumes at the last
// epoch checkpoint and has nothing left to run) nor evaluates again.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { TunekitError } from '../../errors.js';
import { loadModel } from '../../models/model.js';
import { Engine } from '../../serve/engine.js';
import { readEvalDataset } from '../../eval/dataset.js';
import { engineJudge, generateLocal } from '../../eval/local-model.js';
import { aggregationResults, metricDef } from '../../eval/job-evaluation.js';
import { runEvaluation, type EvalSide } from '../../eval/run.js';
import { writeEvalOutputs } from '../../eval/report.js';
import { gsUri, parseGsUri } from '../gcs-names.js';
import type { ObjectStore } from '../storage.js';
import { ensureManagedBucket, jobError } from './outcome.js';
import { listCheckpoints, VALIDATION_FILE, type JobSpec } from './spec.js';

const RUN_FILE = 'run.json';

/** The gs:// directory (ending in /) the evaluation's files go to. */
export async function evaluationOutputDir(spec: JobSpec, storage: ObjectStore): Promise<string> {
  const under = (uri: string) => {
    const { bucket, object } = parseGsUri(uri, { allowBucketOnly: true });
    return gsUri(bucket, `${object && !object.endsWith('/') ? `${object}/` : object}${spec.jobId}/evaluation/`);
  };
  const prefix = spec.evaluation?.outputUriPrefix ?? spec.outputUri;
  if (prefix) return under(prefix);
  return gsUri(await ensureManagedBucket(storage, spec.project, spec.location), `tuningJobs/${spec.jobId}/evaluation/`);
}

/**
 * Evaluates the tuned model in `outDir` (its final adapter) against the base; returns the
 * EvaluateDatasetRun. `check` runs between instances (the worker's cancel / orphan check).
 */
export async function evaluateTunedModel(spec: JobSpec, jobDir: string, outDir: string, storage: ObjectStore, check: () => void): Promise<Record<string, unknown>> {
  const ev = spec.evaluation!;
  const local = path.join(jobDir, 'evaluation');
  const runFile = path.join(local, RUN_FILE);
  if (fs.existsSync(runFile)) return JSON.parse(fs.readFileSync(runFile, 'utf8')) as Record<string, unknown>;
  const checkpointId = String(listCheckpoints(outDir).pop()?.epoch ?? spec.options.epochs);
  let run: Record<string, unknown>;
  try {
    const examples = readEvalDataset(path.join(jobDir, VALIDATION_FILE));
    const model = await loadModel(spec.baseDir);
    const engine = new Engine(model, { parallel: 8, maxQueue: 64 });
    const { maxTokens, temperature, seed } = ev.generation;
    const side = (description: string, adapterDir?: string): EvalSide => ({
      description,
      generate: (ex, i) => generateLocal(engine, model, ex.prompt, { system: ex.system, adapterDir, maxTokens, temperature, seed: seed === undefined ? undefined : seed + i }),
    });
    let judgeSettings;
    if (ev.judge) {
      const same = path.resolve(ev.judge.modelDir) === path.resolve(spec.baseDir);
      const judgeModel = same ? model : await loadModel(ev.judge.modelDir);
      const judgeEngine = same ? engine : new Engine(judgeModel, { parallel: 8, maxQueue: 64 });
      judgeSettings = { judge: engineJudge(judgeEngine, judgeModel, { description: ev.judge.model, adapterDir: ev.judge.adapterDir }), samples: ev.judge.samples, seed: seed ?? 0 };
    }
    const outcome = await runEvaluation(examples, side(`tuning job ${spec.jobId} (checkpoint ${checkpointId})`, outDir), side(spec.baseModel), {
      metrics: ev.metrics.map(metricDef), judge: judgeSettings, bootstrapSeed: seed ?? 0, onProgress: () => check(),
    });
    const outputDir = await evaluationOutputDir(spec, storage);
    const files = writeEvalOutputs(path.join(local, 'files'), outcome, {
      dataset: ev.datasetUri, candidate: `tuning job ${spec.jobId} (checkpoint ${checkpointId})`, baseline: spec.baseModel,
      ...(ev.judge ? { judge: ev.judge.model, judgeSamples: ev.judge.samples } : {}),
      metrics: ev.metrics.map((m) => m.name), examples: examples.length, maxTokens, temperature, seed: seed ?? null,
      tuningJob: `projects/${spec.project}/locations/${spec.location}/tuningJobs/${spec.jobId}`, createdAt: new Date().toISOString(),
    });
    const { bucket, object } = parseGsUri(outputDir, { allowBucketOnly: true });
    for (const f of [files.results, files.summary, files.report]) await storage.putObject(bucket, object + path.basename(f), fs.readFileSync(f));
    const { results, unscored } = aggregationResults(ev.metrics, outcome);
    run = {
      checkpointId,
      evaluateDatasetResponse: {
        aggregationOutput: { dataset: { gcsSource: { uris: [ev.datasetUri] } }, aggregationResults: results },
        outputInfo: { gcsOutputDirectory: outputDir },
      },
      ...(unscored.length ? {
        error: { code: 13, message: `No instance could be scored for ${unscored.join(', ')} (see results.jsonl in ${outputDir} for each instance's error).` },
      } : {}),
    };
  } catch (err) {
    if (!(err instanceof TunekitError)) process.stderr.write(`tunekit worker: job ${spec.jobId}: evaluation: ${err instanceof Error ? err.stack : String(err)}\n`);
    run = { checkpointId, error: jobError(err) };
  }
  fs.mkdirSync(local, { recursive: true });
  fs.writeFileSync(`${runFile}.tmp`, JSON.stringify(run));
  fs.renameSync(`${runFile}.tmp`, runFile);
  return run;
}
