// The web console (/console) in a real browser (Debian's chromium through playwright-core) against a
// real server socket: a tuning job created through the API is watched to SUCCEEDED with its loss curve
// drawn (points and inked canvas pixels) and its dataset histograms; the playground streams the tuned
// endpoint's answer beside the base model's, equal to what the API answers, and every control reaches
// the request; the model and endpoint pages show versions, checkpoints and the traffic split (also
// split between two deployed models); the evaluation the job ran after tuning shows its metrics, and
// its report.html opens in the sandboxed report frame, read through the Cloud Storage API and as a
// file; the pages fit a phone's width and are reachable by keyboard; a second job is created with the
// console's form (after a refused one) and cancelled on its page; a wrong key is reported. Any console
// error, page error, failed or 4xx/5xx request, or request to another origin fails the test (where
// one is expected, exactly that one). Also, without a browser: the served files' types, caching
// headers, and that no path reaches a file outside the console's table.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { cliMain } from './helpers/platform.js';
import { launchBrowser, noBrowser, pixelsOfColor, screenshot, watchedPage, type WatchedPage } from './helpers/browser.js';
import { startServe } from './helpers/serve.js';
import { createJob, signIn, startConsoleServer, watchJob, type ConsoleServer } from './helpers/console-flow.js';

let s: ConsoleServer;
let browser: Browser | undefined;
let jobName: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-console-'));

before(async () => {
  s = await startConsoleServer();
  jobName = await createJob(s); // trains while the browser starts
  if (!noBrowser) browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await s.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A GET with the path exactly as given (fetch would normalise dot segments away). */
function rawGet(url: string, rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    http.get({ host: u.hostname, port: u.port, path: rawPath, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject);
  });
}

test('served files: content types, revalidation, security headers, and no path outside the console', async () => {
  const types: [string, RegExp][] = [
    ['/console', /^text\/html; charset=utf-8$/], ['/console/', /^text\/html/], ['/console/main.js', /^text\/javascript/],
    ['/console/console.css', /^text\/css/], ['/console/vendor/uPlot.esm.js', /^text\/javascript/],
    ['/console/vendor/uPlot.min.css', /^text\/css/], ['/console/viewer.html', /^text\/html/], ['/console/main.js.map', /^application\/json/],
  ];
  for (const [p, type] of types) {
    const r = await rawGet(s.url, p);
    assert.equal(r.status, 200, p);
    assert.match(String(r.headers['content-type']), type, p);
    assert.equal(r.headers['cache-control'], 'no-cache', p);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
    assert.match(String(r.headers.etag), /^"[A-Za-z0-9+/]{27}"$/, p);
    const again = await rawGet(s.url, p, { 'if-none-match': String(r.headers.etag) });
    assert.equal(again.status, 304, `${p} revalidated`);
    assert.equal(again.body, '');
  }
  const page = await rawGet(s.url, '/console');
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'; script-src 'self' 'sha256-[^']+'; .*connect-src 'self'/);
  assert.match(String((await rawGet(s.url, '/console/viewer.html')).headers['content-security-policy']), /^sandbox allow-scripts; default-src 'none'/);
  // The served uPlot is the installed package's file, byte for byte.
  const uplot = fs.readFileSync(path.join(path.dirname(cliMain), '..', '..', '..', 'node_modules', 'uplot', 'dist', 'uPlot.esm.js'), 'utf8');
  assert.equal((await rawGet(s.url, '/console/vendor/uPlot.esm.js')).body, uplot);
  for (const p of [
    '/console/../package.json', '/console/..%2fpackage.json', '/console/%2e%2e/%2e%2e/package.json', '/console/vendor/../../package.json',
    '/console/vendor/..%2F..%2Fpackage.json', '/console/vendor/%2e%2e%2f%2e%2e%2fpackage.json', '/console//etc/passwd', '/console/%2Fetc%2Fpasswd',
    '/console/main.js%00.html', '/console/main.ts', '/console/tsconfig.json', '/console/index.html/..', '/console/..\\package.json',
    '/console/vendor/', '/console/vendor/uPlot.cjs.js', '/console/routes.js', '/console/%2e%2e%5cpackage.json',
  ]) {
    const r = await rawGet(s.url, p);
    // 400: Node's HTTP parser refuses the request line itself (a backslash).
    assert.ok(r.status === 404 || r.status === 400 || (r.status === 200 && /<title>tunekit console<\/title>/.test(r.body)), `${p}: ${r.status}`);
    assert.doesNotMatch(r.body, /"name": "tunekit"|root:x:0|registerServeCommand/, p);
    if (r.status === 404) assert.equal((JSON.parse(r.body) as { error: { status: string } }).error.status, 'NOT_FOUND', p);
  }
});

test('tunekit serve prints the console URL and serves the console there', async () => {
  const served = await startServe(path.join(tmp, 'serve-data'), {}, ['--insecure-no-auth']);
  try {
    while (!/web console: /.test(served.stdout)) await new Promise((r) => setTimeout(r, 20)); // the line after the URL's
    const url = /^tunekit: web console: (\S+)$/m.exec(served.stdout)![1]!;
    assert.equal(url, `${served.url}/console`);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<title>tunekit console<\/title>/);
  } finally {
    await served.kill();
  }
});

test('the console: job to SUCCEEDED with charts, playground streaming tuned vs base, registry pages, an eval report, phone and keyboard', { skip: noBrowser }, async () => {
  const w: WatchedPage = await watchedPage(browser!, s.url);
  const { page, problems } = w;
  const id = jobName.split('/').pop()!;

  await signIn(page, s);
  await watchJob(page, jobName);
  // The loss chart plots every point the API has, and draws the train curve (its colour on the canvas).
  const metrics = (await s.call('GET', `/v1/${jobName}/metrics`)).json.metrics as { name: string; points: unknown[] }[];
  const lossPoints = metrics.filter((m) => m.name === '/train_total_loss' || m.name === '/eval_total_loss').reduce((n, m) => n + m.points.length, 0);
  assert.ok(lossPoints >= 3, JSON.stringify(metrics.map((m) => [m.name, m.points.length])));
  const loss = '[data-metric="Loss"] .chart';
  await page.waitForFunction((sel) => document.querySelector(sel)?.querySelector('canvas') !== null, loss);
  assert.equal(Number(await page.getAttribute(loss, 'data-points')), lossPoints);
  assert.ok(await pixelsOfColor(page, loss, [0x2b, 0x6c, 0xb0]) > 50, 'the train loss curve is drawn');
  assert.ok(await pixelsOfColor(page, loss, [0xdd, 0x6b, 0x20]) > 5, 'the eval loss curve is drawn');
  assert.equal(await page.locator('[data-metric="Next-token accuracy"] .chart canvas').count(), 1);
  // Dataset statistics: three histograms with the job's buckets.
  const stats = (await s.call('GET', `/v1/${jobName}`)).json.tuningDataStats.supervisedTuningDataStats;
  assert.deepEqual(await page.$$eval('#dataset-charts .chart', (els) => els.map((e) => Number(e.getAttribute('data-points')))),
    [stats.userInputTokenDistribution.buckets.length, stats.userOutputTokenDistribution.buckets.length, stats.userMessagePerExampleDistribution.buckets.length]);
  assert.ok(await pixelsOfColor(page, '#dataset-charts .chart', [0x2b, 0x6c, 0xb0]) > 50, 'histogram bars are drawn');
  await page.getByText(`of ${stats.tuningStepCount}`).first().waitFor();
  // The evaluation the job ran after tuning: its aggregate metrics as the API gives them, and where its report is.
  const job = (await s.call('GET', `/v1/${jobName}`)).json;
  const run = job.evaluateDatasetRuns[0];
  assert.equal(run.error, undefined, JSON.stringify(run.error));
  const results = run.evaluateDatasetResponse.aggregationOutput.aggregationResults as Record<string, any>[];
  assert.equal(await page.locator('section[aria-label="Evaluation run 1"] tbody tr').count(), results.length);
  const exact = results.find((r) => r.exactMatchMetricValue)!.exactMatchMetricValue.score as number;
  assert.deepEqual(await page.locator('section[aria-label="Evaluation run 1"] tr', { hasText: 'exactMatchMetricValue.score' }).locator('td').allTextContents(),
    ['exactMatchMetricValue.score', 'AVERAGE', Number.isInteger(exact) ? String(exact) : exact.toFixed(4)]);
  const reportUri = `${run.evaluateDatasetResponse.outputInfo.gcsOutputDirectory}report.html`;
  await page.getByText(reportUri).waitFor();
  await screenshot(page, 'console-job');
  // Its report, read through the server's Cloud Storage API, in the sandboxed report frame.
  await page.click('section[aria-label="Evaluation run 1"] button.open-report');
  const jobReport = page.frameLocator('#report-frame');
  await jobReport.locator('#rows tr').nth(16).waitFor(); // header + the 16 validation examples
  assert.equal(await jobReport.locator('#rows tr').count(), 17);
  assert.match(await jobReport.locator('h1').textContent() ?? '', new RegExp(`Evaluation: tuning job ${id} .* vs publishers/google/models/gemma3-tiny`));
  assert.equal(await jobReport.locator('#summary .card').count(), 3);
  // The sandbox: the report's script runs, but in no origin (it cannot read the console's key).
  assert.equal(await jobReport.locator('body').evaluate(() => { try { return String(localStorage.length); } catch (e) { return (e as Error).name; } }), 'SecurityError');

  // Playground: tuned endpoint beside the base model, streamed.
  const endpoint = job.tunedModel.endpoint as string;
  await page.getByRole('link', { name: /Open in the playground/ }).click();
  await page.locator('#prompt').waitFor();
  assert.equal(await page.inputValue('#target'), endpoint);
  assert.equal(await page.inputValue('#compare'), 'publishers/google/models/gemma3-tiny');
  const prompt = 'the sky is red today';
  await page.fill('#prompt', prompt);
  await page.fill('#max-tokens', '12');
  await page.evaluate(() => {
    // Counts text arriving in the tuned side's answer (one mutation per streamed chunk).
    const w = window as unknown as { chunks: number };
    w.chunks = 0;
    new MutationObserver((ms) => {
      for (const m of ms) if ((m.target as Element).closest?.('.answer-panel[data-target^="projects/"] .answer')) w.chunks++;
    }).observe(document.getElementById('outputs')!, { childList: true, subtree: true });
  });
  await page.click('#run');
  await page.waitForFunction(() => document.querySelectorAll('.answer-panel .status.done').length === 2, undefined, { timeout: 30_000 });
  const shown = await page.textContent('.answer-panel[data-target^="projects/"] .answer');
  const request = { contents: [{ role: 'user', parts: [{ text: prompt }] }], generationConfig: { temperature: 0, maxOutputTokens: 12 } };
  const direct = (await s.call('POST', `/v1beta1/${endpoint}:generateContent`, request)).json;
  assert.equal(shown, direct.candidates[0].content.parts.map((p: any) => p.text).join(''));
  assert.ok(shown!.length > 0);
  assert.ok(await page.evaluate(() => (window as unknown as { chunks: number }).chunks) >= 2, 'the answer arrived in several chunks');
  const baseShown = await page.textContent('.answer-panel[data-target^="publishers/"] .answer');
  const baseDirect = (await s.call('POST', '/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemma3-tiny:generateContent', request)).json;
  assert.equal(baseShown, baseDirect.candidates[0].content.parts.map((p: any) => p.text ?? '').join(''));
  const meta = await page.textContent('.answer-panel[data-target^="projects/"] .meta');
  assert.match(meta!, new RegExp(`prompt ${direct.usageMetadata.promptTokenCount} tokens · answer ${direct.usageMetadata.candidatesTokenCount} tokens`));
  await page.getByRole('button', { name: 'Count tokens' }).click();
  const counted = (await s.call('POST', `/v1beta1/${endpoint}:countTokens`, { contents: request.contents })).json;
  await page.getByText(`prompt: ${counted.totalTokens} tokens`).waitFor();
  await screenshot(page, 'console-playground');

  // Every control reaches the request: the base model alone, not streamed, with a system instruction,
  // top-p, a thinking budget and JSON mode with a schema — which the base model, babbling otherwise, obeys.
  const schema = { type: 'object', properties: { tone: { type: 'string', enum: ['warm', 'cold'] } }, required: ['tone'] };
  await page.selectOption('#target', 'publishers/google/models/gemma3-tiny');
  await page.selectOption('#compare', '');
  await page.fill('#system', 'Answer in JSON.');
  await page.fill('#top-p', '0.9');
  await page.fill('#max-tokens', '24');
  await page.fill('#thinking-budget', '0');
  await page.check('#json-mode');
  await page.fill('#json-schema', JSON.stringify(schema));
  await page.uncheck('#stream');
  const sent = page.waitForRequest((r) => r.url().endsWith('/publishers/google/models/gemma3-tiny:generateContent'));
  await page.click('#run');
  assert.deepEqual((await sent).postDataJSON(), {
    contents: [{ role: 'user', parts: [{ text: prompt }] }],
    systemInstruction: { parts: [{ text: 'Answer in JSON.' }] },
    generationConfig: { temperature: 0, topP: 0.9, maxOutputTokens: 24, thinkingConfig: { thinkingBudget: 0 }, responseMimeType: 'application/json', responseJsonSchema: schema },
  });
  await page.locator('.answer-panel .status.done').waitFor();
  assert.equal(await page.locator('.answer-panel').count(), 1);
  const json = JSON.parse(await page.textContent('.answer-panel .answer') ?? '') as { tone: string };
  assert.ok(['warm', 'cold'].includes(json.tone), JSON.stringify(json));

  // Registry pages: the model's version and checkpoints, the endpoint's traffic split.
  const modelId = (job.tunedModel.model as string).split('/').pop()!.replace(/@.*/, '');
  await page.click('#nav a[href="#/models"]');
  await page.click(`a[href="#/models/${modelId}"]`);
  await page.getByRole('heading', { name: 'Version 1' }).waitFor();
  assert.equal(await page.locator('table:has(caption) tbody tr').count(), job.tunedModel.checkpoints.length);
  await page.click('#nav a[href="#/endpoints"]');
  await page.click(`a[href="#/endpoints/${endpoint.split('/').pop()}"]`);
  await page.getByRole('heading', { name: 'Deployed models' }).waitFor();
  assert.equal(await page.locator('.traffic .seg').first().textContent(), '100%');
  // A second deployment on it (the epoch-5 checkpoint) taking half the traffic: two segments, two rows.
  const first = (await s.call('GET', `/v1/${endpoint}`)).json.deployedModels[0].id as string;
  const op = await s.call('POST', `/v1/${endpoint}:deployModel`, { deployedModel: { model: job.tunedModel.model, checkpointId: '5' }, trafficSplit: { 0: 50, [first]: 50 } });
  assert.equal(op.status, 200, JSON.stringify(op.json));
  await page.reload();
  await page.getByRole('heading', { name: 'Deployed models' }).waitFor();
  assert.deepEqual(await page.locator('.traffic .seg').allTextContents(), ['50%', '50%']);
  assert.deepEqual(await page.locator('tbody tr td:nth-child(4)').allTextContents(), ['final', '5']);

  // A report file (as `tunekit eval --out DIR` writes them): the job's report.html, downloaded, opened from disk.
  const [, bucket, object] = /^gs:\/\/([^/]+)\/(.+)$/.exec(reportUri)!;
  const media = await fetch(`${s.url}/storage/v1/b/${bucket}/o/${encodeURIComponent(object!)}?alt=media`, { headers: { 'x-goog-api-key': s.key } });
  assert.equal(media.status, 200);
  const reportFile = path.join(tmp, 'report.html');
  fs.writeFileSync(reportFile, Buffer.from(await media.arrayBuffer()));
  await page.click('#nav a[href="#/evaluations"]');
  await page.locator('section[aria-label="Evaluation run 1"]').waitFor(); // the job, listed with its evaluation
  await page.setInputFiles('#report-file', reportFile);
  const report = page.frameLocator('#file-report #report-frame');
  await report.locator('#rows tr').nth(16).waitFor();
  await report.locator('#filter').fill('red');
  assert.match(await report.locator('#count').textContent() ?? '', /^\d+ of 16 examples$/);
  await screenshot(page, 'console-evaluation');

  // A phone: nothing wider than the screen; the job page still shows its charts.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${s.url}/console#/jobs/${id}`);
  await page.locator('.badge.state-succeeded').waitFor();
  await page.locator(`${loss} canvas`).waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling on a phone');
  await screenshot(page, 'console-phone');
  for (const [route, heading] of [['jobs', 'Tuning jobs'], ['models', 'Models'], [`models/${modelId}`, 'tone'], ['endpoints', 'Endpoints'],
    [`endpoints/${endpoint.split('/').pop()}`, 'Deployed models'], ['playground', 'Playground'], ['evaluations', 'Evaluations'], ['jobs/new', 'Create a tuning job'], ['settings', 'Settings']]) {
    await page.goto(`${s.url}/console#/${route}`);
    await page.getByRole('heading', { name: heading, exact: true }).waitFor();
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `no sideways scrolling on a phone: #/${route}`);
  }
  await page.goto(`${s.url}/console#/playground`);
  await page.locator('#prompt').waitFor();
  await screenshot(page, 'console-phone-playground');

  // Keyboard: the skip link comes first, then the sections; Enter follows a link and focus moves to the new view's heading.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto('about:blank');
  await page.goto(`${s.url}/console#/jobs`);
  await page.getByRole('heading', { name: 'Tuning jobs' }).waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
  for (let i = 0; i < 3; i++) await page.keyboard.press('Tab'); // brand, Tuning jobs, Models
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Models');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Models' }).waitFor();
  await page.waitForFunction(() => document.activeElement?.tagName === 'H1');

  // A job created from the console's form (refused first: a dataset that does not exist), then cancelled on its page.
  await page.click('#nav a[href="#/jobs"]');
  await page.click('#create-job');
  await page.fill('input[name=tunedModelDisplayName]', 'tone-cancelled');
  await page.fill('input[name=trainingDatasetUri]', 'gs://us-data/missing.jsonl');
  await page.fill('input[name=epochCount]', '10');
  await page.selectOption('select[name=adapterSize]', 'ADAPTER_SIZE_EIGHT');
  const seen = problems.length;
  await page.click('button[type=submit]');
  await page.locator('[role=status] .error').waitFor();
  assert.match(await page.textContent('[role=status] .error') ?? '', /gs:\/\/us-data\/missing\.jsonl/);
  await screenshot(page, 'console-create');
  const refused = problems.splice(seen);
  assert.ok(refused.length > 0 && refused.every((p) => /HTTP 40[04]|status of 40[04]/.test(p)), refused.join('\n'));
  await page.fill('input[name=trainingDatasetUri]', 'gs://us-data/tone-train.jsonl');
  const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/tuningJobs'));
  await page.click('button[type=submit]');
  const createdJob = await (await created).json() as { name: string; state: string };
  assert.deepEqual((await created).request().postDataJSON(), {
    baseModel: 'publishers/google/models/gemma3-tiny', tunedModelDisplayName: 'tone-cancelled',
    supervisedTuningSpec: { trainingDatasetUri: 'gs://us-data/tone-train.jsonl', hyperParameters: { epochCount: 10, adapterSize: 'ADAPTER_SIZE_EIGHT', learningRateMultiplier: 1 } },
  });
  const second = createdJob.name;
  await page.waitForURL(`**/console#/jobs/${second.split('/').pop()}`);
  page.once('dialog', (d) => void d.accept());
  await page.click('#cancel-job');
  await page.locator('.badge.state-cancelled').waitFor({ timeout: 60_000 });
  assert.equal((await s.call('GET', `/v1/${second}`)).json.state, 'JOB_STATE_CANCELLED');

  assert.deepEqual(problems, []);
  await w.context.close();

  // A wrong key: the settings say the server refused it, and a view says so with the way back to Settings.
  const bad = await watchedPage(browser!, s.url);
  await bad.page.goto(`${s.url}/console`);
  await bad.page.fill('input[name=apiKey]', 'not-a-key');
  await bad.page.fill('input[name=project]', 'p');
  await bad.page.click('button[type=submit]');
  await bad.page.getByText('Saved, but the server refused a request with them').waitFor();
  await bad.page.goto(`${s.url}/console#/models`);
  await bad.page.getByRole('link', { name: 'Check the API key and project in Settings' }).waitFor();
  assert.match(await bad.page.textContent('.error') ?? '', /key/i);
  // The only problems are the two refused requests (and the browser's own log lines about them).
  const base = `${s.url}/v1beta1/projects/p/locations/us-central1`;
  assert.deepEqual(bad.problems.filter((p) => p.startsWith('HTTP')).map((p) => p.replace(/\?.*/, '')), [`HTTP 401: GET ${base}/tuningJobs`, `HTTP 401: GET ${base}/models`]);
  assert.ok(bad.problems.every((p) => /status of 401|^HTTP 401/.test(p)), bad.problems.join('\n'));
  await bad.context.close();
});
