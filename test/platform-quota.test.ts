// The concurrent-tuning-jobs quota: RESOURCE_EXHAUSTED naming the quota when full, a slot freed when a
// job ends, per project and location, and exact under concurrent creates from several processes.
// Also the job records the quota counts: states, cancel, paging, crash recovery, metrics.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Platform } from '../src/platform/platform.js';
import { platformDir, runScript, tempDirs, throwsCode, rejectsCode } from './helpers/platform.js';

const freshDir = tempDirs('platform-quota');
const job = (project = 'proj', location = 'us-central1') => ({ project, location, baseModel: 'publishers/google/models/tiny', request: { x: 1 } });

test('a second concurrent job is RESOURCE_EXHAUSTED naming the quota; the slot frees when the job ends', async () => {
  const p = await Platform.open({ dataDir: freshDir() });
  const first = await p.jobs.create(job());
  assert.equal(first.state, 'JOB_STATE_PENDING');
  assert.match(first.name, /^projects\/proj\/locations\/us-central1\/tuningJobs\/[1-9]\d{18}$/);
  await rejectsCode(p.jobs.create(job()), 'RESOURCE_EXHAUSTED',
    /^Quota exceeded for quota "concurrent tuning jobs" in project proj, location us-central1: limit 1, 1 in use\. Wait for a job to finish, cancel one, or raise the limit\.$/);
  // Other projects and locations have their own slots.
  await p.jobs.create(job('proj', 'europe-west4'));
  await p.jobs.create(job('other'));
  assert.deepEqual(await p.quotas.tuningJobUsage('proj', 'us-central1'), { quota: 'concurrent tuning jobs', project: 'proj', location: 'us-central1', limit: 1, used: 1 });
  // Running still holds it; a terminal state frees it.
  assert.equal((await p.jobs.claimNext(process.pid))?.id, first.id);
  await rejectsCode(p.jobs.create(job()), 'RESOURCE_EXHAUSTED', /concurrent tuning jobs/);
  assert.ok(await p.jobs.finish(first.id, { state: 'JOB_STATE_FAILED', error: { code: 13, message: 'boom' } }));
  await p.jobs.create(job());
  // Raising the limit; a limit of 0 refuses every job.
  await p.config.setQuotaLimit('concurrent_tuning_jobs', 2, { project: 'proj' });
  await p.jobs.create(job());
  await rejectsCode(p.jobs.create(job()), 'RESOURCE_EXHAUSTED', /limit 2, 2 in use/);
  await p.config.setQuotaLimit('concurrent_tuning_jobs', 0, { project: 'zero' });
  await rejectsCode(p.jobs.create(job('zero')), 'RESOURCE_EXHAUSTED', /limit 0, 0 in use/);
  // A refused create inserts nothing.
  assert.equal((await p.jobs.list('zero', 'us-central1')).jobs.length, 0);
  await p.close();
});

test('withTuningJobSlot runs nothing when full and rolls the insert back when it throws', async () => {
  const p = await Platform.open({ dataDir: freshDir() });
  await assert.rejects(p.quotas.withTuningJobSlot('proj', 'us-central1', async () => {
    await p.db.run(`INSERT INTO tuning_jobs (id, project, location, state, base_model, request, create_time, update_time)
      VALUES ('1', 'proj', 'us-central1', 'JOB_STATE_PENDING', 'm', '{}', 't', 't')`);
    throw new Error('validation failed after insert');
  }), /validation failed/);
  assert.equal((await p.quotas.tuningJobUsage('proj', 'us-central1')).used, 0);
  await p.jobs.create(job());
  let ran = false;
  await rejectsCode(p.quotas.withTuningJobSlot('proj', 'us-central1', async () => { ran = true; }), 'RESOURCE_EXHAUSTED', /concurrent tuning jobs/);
  assert.equal(ran, false);
  await p.close();
});

test('concurrent creates from eight processes, each trying five times: exactly the limit succeeds', async () => {
  for (const limit of [1, 3]) {
    const dir = freshDir();
    const setup = await Platform.open({ dataDir: dir });
    await setup.config.setQuotaLimit('concurrent_tuning_jobs', limit);
    await setup.close();
    // Each child waits for a common start time, then creates as fast as it can.
    const start = Date.now() + 1500;
    const script = `import { Platform } from ${JSON.stringify(path.join(platformDir, 'platform.js'))};
      const p = await Platform.open({ dataDir: process.argv[process.argv.length - 1] });
      const out = { ok: 0, exhausted: 0 };
      while (Date.now() < ${start}) {}
      for (let i = 0; i < 5; i++) {
        try {
          await p.jobs.create({ project: 'proj', location: 'us-central1', baseModel: 'm', request: {} });
          out.ok++;
        } catch (e) {
          if (e.code !== 'RESOURCE_EXHAUSTED') throw e;
          out.exhausted++;
        }
      }
      p.close();
      process.stdout.write(JSON.stringify(out));`;
    const runs = await Promise.all(Array.from({ length: 8 }, () => runScript(script, [dir])));
    let ok = 0;
    let exhausted = 0;
    for (const r of runs) {
      assert.equal(r.code, 0, r.err);
      const o = JSON.parse(r.out) as { ok: number; exhausted: number };
      ok += o.ok;
      exhausted += o.exhausted;
    }
    assert.equal(ok, limit);
    assert.equal(exhausted, 40 - limit);
    const check = await Platform.open({ dataDir: dir });
    assert.equal((await check.quotas.tuningJobUsage('proj', 'us-central1')).used, limit);
    await check.close();
  }
});

test('concurrent async creates in one process (interleaved with awaits) respect the limit', async () => {
  const p = await Platform.open({ dataDir: freshDir() });
  await p.config.setQuotaLimit('concurrent_tuning_jobs', 2);
  const results = await Promise.allSettled(Array.from({ length: 10 }, async (_, i) => {
    await new Promise((r) => setTimeout(r, i % 3));
    return await p.jobs.create(job());
  }));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
  assert.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as { code: string }).code === 'RESOURCE_EXHAUSTED'));
  await p.close();
});

test('job records: get, list newest first with pages, cancel, finish, recover after a crash, metrics', async () => {
  const p = await Platform.open({ dataDir: freshDir() });
  await p.config.setQuotaLimit('concurrent_tuning_jobs', 10);
  const made = [];
  for (let i = 0; i < 5; i++) made.push(await p.jobs.create({ ...job(), displayName: 'd' }));
  const got = await p.jobs.get('proj', 'us-central1', made[0]!.id);
  assert.deepEqual(got.request, { x: 1 });
  assert.equal(got.displayName, 'd');
  await rejectsCode(p.jobs.get('proj', 'europe-west4', made[0]!.id), 'NOT_FOUND', /tuning job projects\/proj\/locations\/europe-west4\/tuningJobs\/\d+ does not exist/);
  await rejectsCode(p.jobs.get('other', 'us-central1', made[0]!.id), 'NOT_FOUND', /does not exist/);

  const seen: string[] = [];
  let pageToken: string | undefined;
  do {
    const page = await p.jobs.list('proj', 'us-central1', { pageSize: 2, pageToken });
    seen.push(...page.jobs.map((j) => j.id));
    pageToken = page.nextPageToken;
  } while (pageToken);
  const newestFirst = [...made].sort((a, b) => (b.createTime + b.id).localeCompare(a.createTime + a.id)).map((j) => j.id);
  assert.deepEqual(seen, newestFirst);
  await rejectsCode(p.jobs.list('proj', 'us-central1', { pageToken: 'garbage' }), 'INVALID_ARGUMENT', /pageToken "garbage" is not valid/);

  // Cancel: PENDING ends at once; RUNNING goes through CANCELLING; ended jobs cannot be cancelled.
  const pending = await p.jobs.cancel('proj', 'us-central1', made[0]!.id);
  assert.equal(pending.state, 'JOB_STATE_CANCELLED');
  assert.deepEqual(pending.error, { code: 1, message: 'CANCELLED' });
  assert.ok(pending.endTime);
  await rejectsCode(p.jobs.cancel('proj', 'us-central1', made[0]!.id), 'FAILED_PRECONDITION', /is in state JOB_STATE_CANCELLED and cannot be cancelled/);
  const running = (await p.jobs.claimNext(4242))!;
  assert.equal(running.id, made[1]!.id, 'oldest pending first');
  assert.equal(running.state, 'JOB_STATE_RUNNING');
  assert.equal(running.workerPid, 4242);
  assert.ok(running.startTime);
  assert.equal((await p.jobs.cancel('proj', 'us-central1', running.id)).state, 'JOB_STATE_CANCELLING');
  assert.ok(await p.jobs.finish(running.id, { state: 'JOB_STATE_CANCELLED' }));
  assert.equal((await p.jobs.find(running.id))!.error?.code, 1);

  // A crash: the worker of a RUNNING job is gone; it goes back to PENDING keeping its checkpoint and start time.
  const crashed = (await p.jobs.claimNext(999_999))!;
  await p.jobs.setCheckpoint(crashed.id, '/ckpt/epoch-1');
  assert.deepEqual(await p.jobs.recoverInterrupted((pid) => pid !== 999_999), [crashed.id]);
  const back = (await p.jobs.find(crashed.id))!;
  assert.equal(back.state, 'JOB_STATE_PENDING');
  assert.equal(back.checkpoint, '/ckpt/epoch-1');
  assert.equal(back.startTime, crashed.startTime);
  const again = (await p.jobs.claimNext(1))!;
  assert.equal(again.id, crashed.id);
  assert.equal(again.attempts, 2);
  assert.ok(await p.jobs.finish(again.id, { state: 'JOB_STATE_SUCCEEDED', result: { tunedModel: { model: 'm@1' } } }));
  assert.deepEqual((await p.jobs.find(again.id))!.result, { tunedModel: { model: 'm@1' } });
  assert.equal(await p.jobs.finish(again.id, { state: 'JOB_STATE_FAILED', error: { code: 13, message: 'late' } }), false, 'an ended job stays ended');

  await p.jobs.recordMetrics(again.id, 1, { '/train_total_loss': 2.5, '/train_fraction_of_correct_next_step_preds': 0.1 }, 0);
  await p.jobs.recordMetrics(again.id, 2, { '/train_total_loss': 2.0 });
  await p.jobs.recordMetrics(again.id, 2, { '/train_total_loss': 1.9 });
  assert.deepEqual((await p.jobs.metrics(again.id)).map((m) => [m.name, m.step, m.value, m.epoch]), [
    ['/train_fraction_of_correct_next_step_preds', 1, 0.1, 0],
    ['/train_total_loss', 1, 2.5, 0],
    ['/train_total_loss', 2, 1.9, undefined],
  ]);
  await p.close();
});
