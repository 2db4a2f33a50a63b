// `tunekit eval`'s report.html (src/eval/report.ts) in a real browser (Debian's chromium through
// playwright-core): a real run of the CLI on two tiny local models (references are the candidate's
// own greedy answers, so the candidate wins exact_match) with a pairwise metric judged by a third tiny
// local model (--judge DIR: decoded under the answer's JSON schema, so every judgment parses),
// opened from its file: the metric cards and their SVG charts render with the summary's values (no
// label under a bar), the side-by-side table holds every example, the filter (judge explanations
// too) and the column sorting work, by mouse and by keyboard (header buttons, aria-sort), and the
// page makes no request and logs no error. Screenshot kept in .cache/test-artifacts/eval-report.png.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliMain } from './helpers/platform.js';
import { tinyModelDir } from './helpers/tiny-models.js';
import { launchBrowser, noBrowser, screenshot, watchedPage } from './helpers/browser.js';
import { loadModel } from '../src/models/model.js';
import { Engine } from '../src/serve/engine.js';
import { generateLocal } from '../src/eval/local-model.js';
import type { InstanceResult, MetricSummary } from '../src/eval/run.js';
import { reportHtml } from '../src/eval/report.js';

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

  // The judge: another tiny model, local, whose choices are whatever its random weights pick.
  const judgeDir = tinyModelDir('qwen3', { seed: 3 });
  const out = path.join(tmp, 'out');
  const run = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const child = spawn(process.execPath, [cliMain, 'eval', '--dataset', dataset, '--candidate', candidateDir, '--baseline', baselineDir,
      '--metrics', 'exact_match,rouge_l,pairwise_fluency', '--judge', judgeDir,
      '--max-tokens', '6', '--seed', '7', '--out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, err }));
  });
  assert.equal(run.code, 0, run.err);
  const summary = (JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { summary: MetricSummary[] }).summary;
  const results = fs.readFileSync(path.join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as InstanceResult);
  // An explanation the judge wrote, as results.jsonl has it (the filter searches explanations too).
  const explanation = results.map((r) => r.pairwise.pairwise_fluency?.explanation?.trim() ?? '').find((e) => e.length >= 3);

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
    // No bar covers its label: each label's text ends left of where the plot (its bar, its whisker) begins.
    const overlaps = await page.$$eval('#summary svg.chart', (svgs) => svgs.flatMap((svg) => {
      const labels = [...svg.querySelectorAll('text')].map((t) => (t as SVGTextElement).getBBox());
      const plotStart = Math.min(...[...svg.querySelectorAll('rect, line')].map((e) => (e as SVGGraphicsElement).getBBox().x));
      return labels.filter((l) => l.x + l.width > plotStart).map((l) => `${svg.getAttribute('aria-label')}: label ends at ${l.x + l.width} > ${plotStart}`);
    }));
    assert.deepEqual(overlaps, []);
    const pairwiseLabels = await page.$$eval('#summary .card:nth-child(3) svg text', (ts) => ts.map((t) => t.textContent));
    assert.deepEqual(pairwiseLabels, ['candidate win']);

    // The table: every example, then filtered to one, then all again.
    const rows = page.locator('#rows tr:not(:first-child)');
    assert.equal(await rows.count(), prompts.length);
    assert.equal(await page.textContent('#count'), `${prompts.length} of ${prompts.length} examples`);
    await page.fill('#filter', 'spell');
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().locator('td').nth(1).textContent(), 'Spell cat.');
    assert.equal(await page.textContent('#count'), `1 of ${prompts.length} examples`);
    assert.ok(explanation, 'the judge explained some choice (its answer schema has an explanation)');
    await page.fill('#filter', explanation);
    const matching = await page.$$eval('#rows tr:not(:first-child) td:last-child', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.ok(matching.length >= 1 && matching.every((t) => t.toLowerCase().includes(explanation.toLowerCase())), `${explanation}: ${matching.join(' | ')}`);
    await page.fill('#filter', 'no such text anywhere');
    assert.equal(await rows.count(), 0);
    await page.fill('#filter', '');

    // Sorting by mouse: by prompt ascending, then descending; by # back in dataset order.
    const column = (i: number) => page.$$eval(`#rows tr:not(:first-child) td:nth-child(${i + 1})`, (tds) => tds.map((td) => td.textContent ?? ''));
    const ariaSort = (i: number) => page.getAttribute(`#rows th:nth-child(${i + 1})`, 'aria-sort');
    assert.equal(await ariaSort(0), 'ascending');
    await page.click('#rows th:has-text("prompt") button');
    const ascending = [...prompts].sort((a, b) => a.localeCompare(b));
    assert.deepEqual(await column(1), ascending);
    assert.match(await page.textContent('#rows th:nth-child(2)') ?? '', /▲$/);
    assert.deepEqual([await ariaSort(0), await ariaSort(1)], ['none', 'ascending']);
    await page.click('#rows th:has-text("prompt") button');
    assert.deepEqual(await column(1), [...ascending].reverse());
    assert.match(await page.textContent('#rows th:nth-child(2)') ?? '', /▼$/);
    assert.equal(await ariaSort(1), 'descending');
    await page.click('#rows th:first-child button');
    assert.deepEqual(await column(0), prompts.map((_, i) => String(i)));

    // Sorting by keyboard: Tab from the filter reaches the first header; Tab again the prompt header;
    // Enter sorts ascending, Space descending, and focus stays on the header through re-renders.
    await page.focus('#filter');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), '# ▲');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'prompt');
    await page.keyboard.press('Enter');
    assert.deepEqual(await column(1), ascending);
    assert.equal(await ariaSort(1), 'ascending');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'prompt ▲');
    await page.keyboard.press('Space');
    assert.deepEqual(await column(1), [...ascending].reverse());
    assert.equal(await ariaSort(1), 'descending');
    // The configuration table names the run's settings.
    assert.match(await page.textContent('#config') ?? '', /pairwise_fluency/);

    await screenshot(page, 'eval-report');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

test('report.html shows failed generations and judgments as errors, and page text as text, never markup', { skip: noBrowser }, async () => {
  const side = (response: string, score: number) => ({ response, scores: { exact_match: score }, std: {}, explanations: {}, errors: {} });
  const results: InstanceResult[] = [
    { index: 0, prompt: 'alpha', reference: 'x', candidate: side('x', 1), baseline: side('y', 0), pairwise: { pairwise_fluency: { choice: 'CANDIDATE', explanation: 'B <b>better</b>' } } },
    { index: 1, prompt: 'beta', reference: 'z', candidate: { ...side('', 0), scores: {}, response: undefined, error: 'boom' }, baseline: side('z', 1), pairwise: { pairwise_fluency: { error: 'a side has no response' } } },
  ];
  const html = reportHtml({ results, summary: [] }, { dataset: 'd', candidate: 'c', baseline: 'b', metrics: ['exact_match', 'pairwise_fluency'] });
  assert.ok(!html.includes('<b>better</b>'), 'text in the page data is escaped');
  const browser = await launchBrowser();
  try {
    const { page, problems } = await watchedPage(browser, () => false);
    await page.setContent(html);
    const cells = await page.$$eval('#rows tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    assert.deepEqual(cells, [
      ['# ▲', 'prompt', 'reference', 'baseline', 'candidate', 'exact_match (cand.)', 'exact_match (base)', 'pairwise_fluency', 'judge explanations'],
      ['0', 'alpha', 'x', 'y', 'x', '1', '0', 'CANDIDATE', 'pairwise_fluency: B <b>better</b>'],
      ['1', 'beta', 'z', 'z', 'error: boom', '', '1', 'error: a side has no response', ''],
    ]);
    assert.equal(await page.locator('#rows b').count(), 0, 'the explanation is shown as text');
    assert.equal(await page.getAttribute('#rows tr:nth-child(3) td:nth-child(5)', 'class'), 'text err');
    await page.fill('#filter', 'BOOM');
    assert.deepEqual(await page.$$eval('#rows tr:not(:first-child) td:nth-child(2)', (tds) => tds.map((td) => td.textContent)), ['beta']);
    assert.equal(await page.textContent('#count'), '1 of 2 examples');
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});
