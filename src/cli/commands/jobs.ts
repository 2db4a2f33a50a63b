// `tunekit jobs list | get | watch | cancel`: tuning jobs on a running `tunekit serve`. `watch` polls the
// job and its metrics: on a terminal a live bar (steps done of the job's tuningStepCount) with the last
// loss and a loss sparkline; otherwise one line per change. It exits 0 when the job SUCCEEDED and 1
// (one error line) when it FAILED, was CANCELLED or EXPIRED.

import type { Command } from 'commander';
import { TunekitError } from '../../errors.js';
import { TERMINAL_JOB_STATES } from '../../platform/jobs.js';
import type { ApiClient } from '../../client/api.js';
import type { TuningJob, TuningJobMetrics } from '../../client/types.js';
import type { ClientFlags } from '../../client/config.js';
import { clientOf, clientOptions, details, idOf, printJson, shortTime, table } from '../client-output.js';
import { createProgress, sparkline, type Progress } from '../progress.js';
import { floatOption } from '../options.js';

type ReadFlags = ClientFlags & { json?: boolean };

const state = (s: string | undefined): string => (s ?? '').replace(/^JOB_STATE_/, '');

export function registerJobsCommands(program: Command): void {
  const jobs = program.command('jobs').description('tuning jobs on a tunekit server (see `tunekit config`)');

  clientOptions(jobs.command('list').description('list tuning jobs, newest first'))
    .option('--filter <expr>', 'server-side filter, e.g. \'state="JOB_STATE_RUNNING"\' or \'tuned_model_display_name="NAME"\'')
    .option('--json', 'the API\'s ListTuningJobsResponse (all pages)')
    .action(async (o: ReadFlags & { filter?: string }) => {
      const { items } = await clientOf(o).listTuningJobs(o.filter);
      if (o.json) return printJson(items.length ? { tuningJobs: items } : {});
      if (items.length === 0) return void process.stdout.write('no tuning jobs\n');
      process.stdout.write(table(['JOB', 'STATE', 'DISPLAY NAME', 'BASE MODEL', 'CREATED', 'ENDED'],
        items.map((j) => [idOf(j.name), state(j.state), j.tunedModelDisplayName ?? '', baseModelOf(j), shortTime(j.createTime), shortTime(j.endTime)])));
    });

  clientOptions(jobs.command('get').description('show a tuning job').argument('<job>', 'job ID or projects/P/locations/L/tuningJobs/ID'))
    .option('--json', 'the API\'s TuningJob')
    .action(async (id: string, o: ReadFlags) => {
      const job = await clientOf(o).getTuningJob(id);
      if (o.json) return printJson(job);
      process.stdout.write(describeJob(job));
    });

  clientOptions(jobs.command('watch').description('follow a tuning job until it ends; exit 1 unless it SUCCEEDED').argument('<job>', 'job ID or full name'))
    .option('--interval <seconds>', 'seconds between polls', floatOption('--interval', 0.1, 3600), 1)
    .action(async (id: string, o: ClientFlags & { interval: number }) => {
      await watchJob(clientOf(o), id, o.interval);
    });

  clientOptions(jobs.command('cancel').description('cancel a pending or running tuning job').argument('<job>', 'job ID or full name'))
    .action(async (id: string, o: ClientFlags) => {
      const client = clientOf(o);
      await client.cancelTuningJob(id);
      process.stdout.write(`cancelling ${client.name('tuningJobs', id)}\n`);
    });
}

/** The job's base model: baseModel, or a continuous tuning job's preTunedModel.baseModel. */
const baseModelOf = (j: TuningJob): string => j.baseModel ?? j.preTunedModel?.baseModel ?? '';

export function describeJob(j: TuningJob): string {
  const hp = j.supervisedTuningSpec?.hyperParameters;
  const stats = j.tuningDataStats?.supervisedTuningDataStats;
  let out = details([
    ['name', j.name], ['state', state(j.state)], ['display name', j.tunedModelDisplayName], ['base model', baseModelOf(j)],
    ['continued from', j.preTunedModel?.tunedModelName], ['from checkpoint', j.preTunedModel?.checkpointId],
    ['description', j.description],
    ['training data', j.supervisedTuningSpec?.trainingDatasetUri], ['validation data', j.supervisedTuningSpec?.validationDatasetUri],
    ['epochs', hp?.epochCount], ['adapter size', hp?.adapterSize], ['lr multiplier', hp?.learningRateMultiplier?.toString()],
    ['examples', stats?.tuningDatasetExampleCount], ['steps', stats?.tuningStepCount],
    ['labels', j.labels ? Object.entries(j.labels).map(([k, v]) => `${k}=${v}`).join(',') : undefined],
    ['created', shortTime(j.createTime)], ['started', shortTime(j.startTime)], ['ended', shortTime(j.endTime)],
    ['tuned model', j.tunedModel?.model], ['endpoint', j.tunedModel?.endpoint],
    ['error', j.error ? `${j.error.message} (code ${j.error.code})` : undefined],
  ]);
  const ck = j.tunedModel?.checkpoints ?? [];
  if (ck.length) out += `\n${table(['CHECKPOINT', 'EPOCH', 'STEP'], ck.map((c) => [c.checkpointId, c.epoch ?? '', c.step ?? '']))}`;
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The training loss values in step order, and the step and epoch reached. */
function progressOf(m: TuningJobMetrics): { losses: number[]; step: number; epoch?: string } {
  const points = m.metrics.find((s) => s.name === '/train_total_loss')?.points ?? [];
  const last = points[points.length - 1];
  return { losses: points.map((p) => p.value), step: last ? Number(last.step) : 0, epoch: last?.epoch };
}

async function watchJob(client: ApiClient, id: string, intervalSeconds: number): Promise<void> {
  const tty = process.stdout.isTTY === true;
  let bar: Progress | undefined;
  let lastLine = '';
  try {
    for (;;) {
      const job = await client.getTuningJob(id);
      const { losses, step, epoch } = progressOf(await client.tuningJobMetrics(id));
      const total = Number(job.tuningDataStats?.supervisedTuningDataStats?.tuningStepCount ?? 0);
      const loss = losses.length ? losses[losses.length - 1]!.toFixed(4) : undefined;
      const ended = TERMINAL_JOB_STATES.includes(job.state);
      if (tty) {
        bar ??= createProgress({ label: 'job', total, stream: process.stdout });
        bar.setTotal(total);
        bar.update(step, [state(job.state), ...(loss ? [`loss ${loss}`, sparkline(losses, 16)] : [])].join(' '));
      } else {
        const line = [job.state, `step ${step}/${total}`, ...(epoch ? [`epoch ${epoch}`] : []), ...(loss ? [`loss ${loss}`] : [])].join(' ');
        if (line !== lastLine) process.stdout.write(`${line}\n`);
        lastLine = line;
      }
      if (ended) {
        bar?.stop();
        bar = undefined;
        if (job.state === 'JOB_STATE_SUCCEEDED') {
          process.stdout.write(`${job.name} SUCCEEDED: model ${job.tunedModel?.model ?? '?'}, endpoint ${job.tunedModel?.endpoint ?? '?'}\n`);
          return;
        }
        const why = job.error?.message ? `: ${job.error.message.replace(/\s*\n\s*/g, ' ')}` : '';
        throw new TunekitError(job.state === 'JOB_STATE_CANCELLED' ? 'CANCELLED' : 'FAILED_PRECONDITION', `tuning job ${job.name} ended ${job.state}${why}`);
      }
      await sleep(intervalSeconds * 1000);
    }
  } finally {
    bar?.stop();
  }
}
