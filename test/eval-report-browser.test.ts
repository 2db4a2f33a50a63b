// `tunekit eval`'s report.html (src/eval/report.ts) in a real browser (Debian's chromium through
// playwright-core): a real run of the CLI on two tiny local models (references are the candidate's
// own greedy answers, so the candidate wins exact_match) with a pairwise metric judged by a scripted
// OpenAI-protocol judge on a local HTTP server, opened from its file: the metric cards and their SVG
// charts render with the summary's values, the side-by-side table holds every example, the filter
// and the column sorting work, and the page makes no request and logs no error. Screenshot kept in
// .cache/test-artifacts/eval-report.png.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { cliMain } from './helpers/platform.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { launchBrowser, noBrowser, screenshot, watchedPage } from './helpers/browser.js';
import { loadModel } from '../src/models/model.js';
import { Engine } from '../src/serve/engine.js';
import { generateLocal } from '../src/eval/local-model.js';
import type { MetricSummary } from '../src/eval/run.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tunekit-eval-report-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("tunekit eval's report.html renders, charts its metrics, filters and sorts, without errors", { skip: noBrowser }, async () => {
  const candidateDir = tinyModelDir('qwen3', { seed: 1 });
  const baselineDir = tinyModelDir('qwen3', { seed: 2 });
  const prompts = ['Name a colour.', 'Count to three.', 'Say hello.', 'What is 2+2?', 'Spell cat.'];
  const model = await loadModel(candidateDir);
  const engine = new Engine(model);
  const refs = await Promise.all(prompts.map((p) => generateLocal(engine, model, p, { maxTokens: 6, temperature: 0 })));
  const dataset = path.join(tmp, 'eval.jsonl');
  fs.writeFileSync(dataset, prompts.map((p, i) => JSON.stringify({ prompt: p, reference: refs[i] })).join('\n') + '\n');

  // The judge prefers the response shown as B, and says so.
  const judge = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      choices: [{ message: { role: 'assistant', content: '{"explanation": "B is clearer", "choice": "B"}' } }],
    })));
  });
  await new Promise<void>((resolve) => judge.listen(0, '127.0.0.1', resolve));
  const out = path.join(tmp, 'out');
  const run = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const child = spawn(process.execPath, [cliMain, 'eval', '--dataset', dataset, '--candidate', candidateDir, '--baseline', baselineDir,
      '--metrics', 'exact_match,rouge_l,pairwise_fluency', '--judge', `http://127.0.0.1:${(judge.address() as AddressInfo).port}/v1`,
      '--judge-model', 'scripted', '--max-tokens', '6', '--seed', '7', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, err }));
  });
  judge.close();
  assert.equal(run.code, 0, run.err);
  const summary = (JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { summary: MetricSummary[] }).summary;

  const browser = await launchBrowser();
  try {
    const report = pathToFileURL(path.join(out, 'report.html')).href;
    const { page, problems } = await watchedPage(browser, (url) => url === report);
    await page.goto(report);

    // Metric cards: one per metric, each with its chart; exact_match's candidate bar is full (1.0) and the baseline's empty.
    assert.match(await page.textContent('h1') ?? '', new RegExp(`Evaluation: .*${path.basename(candidateDir)} vs .*${path.basename(baselineDir)}`));
    assert.deepEqual(await page.$$eval('#summary .card h3', (hs) => hs.map((e) => e.childNodes[0]!.textContent!.trim())), ['exact_match', 'rouge_l', 'pairwise_fluency']);
    assert.equal(await page.locator('#summary svg.chart').count(), 3);
    const bars = await page.$$eval('#summary .card:first-child svg.chart rect', (rs) => rs.map((r) => ({ width: Number(r.getAttribute('width')), title: r.querySelector('title')?.textContent })));
    const em = summary.find((s) => s.metric === 'exact_match')!;
    assert.deepEqual(bars.map((b) => b.title), [em.candidate!.mean.toFixed(4), em.baseline!.mean.toFixed(4)]);
    assert.equal(em.candidate!.mean, 1);
    assert.ok(bars[0]!.width > 100 && bars[1]!.width === 0, JSON.stringify(bars));
    const box = await page.locator('#summary svg.chart').first().boundingBox();
    assert.ok(box && box.width > 200 && box.height > 40, 'the chart is laid out');

    // The table: every example, then filtered to one, then all again.
    const rows = page.locator('#rows tr:not(:first-child)');
    assert.equal(await rows.count(), prompts.length);
    assert.equal(await page.textContent('#count'), `${prompts.length} of ${prompts.length} examples`);
    await page.fill('#filter', 'spell');
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().locator('td').nth(1).textContent(), 'Spell cat.');
    assert.equal(await page.textContent('#count'), `1 of ${prompts.length} examples`);
    await page.fill('#filter', 'B is clearer');
    assert.equal(await rows.count(), prompts.length); // judge explanations are searched too
    await page.fill('#filter', 'no such text anywhere');
    assert.equal(await rows.count(), 0);
    await page.fill('#filter', '');

    // Sorting: by prompt ascending, then descending; by # back in dataset order.
    const column = (i: number) => page.$$eval(`#rows tr:not(:first-child) td:nth-child(${i + 1})`, (tds) => tds.map((td) => td.textContent ?? ''));
    await page.click('#rows th:has-text("prompt")');
    const ascending = [...prompts].sort((a, b) => a.localeCompare(b));
    assert.deepEqual(await column(1), ascending);
    assert.match(await page.textContent('#rows th:nth-child(2)') ?? '', /▲$/);
    await page.click('#rows th:has-text("prompt")');
    assert.deepEqual(await column(1), [...ascending].reverse());
    assert.match(await page.textContent('#rows th:nth-child(2)') ?? '', /▼$/);
    await page.click('#rows th:first-child');
    assert.deepEqual(await column(0), prompts.map((_, i) => String(i)));
    // The configuration table names the run's settings.
    assert.match(await page.textContent('#config') ?? '', /pairwise_fluency/);

    await screenshot(page, 'eval-report');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
