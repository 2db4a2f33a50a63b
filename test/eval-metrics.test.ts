// The computed evaluation metrics against the values their reference implementations publish in
// their own tests (sacreBLEU, Google's rouge-score, NLTK's Porter stemmer, Vertex's tool-use example),
// carried over as data in test/fixtures/eval/ with a note of where each came from.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeBleu, corpusBleu, sentenceBleu, tokenize13a, type BleuOptions, type BleuSmoothing } from '../src/eval/bleu.js';
import { porterStem } from '../src/eval/porter.js';
import { lcsIndices, rouge, rougeTokenize, splitSentences, summaryLevelLcs, type RougeType } from '../src/eval/rouge.js';
import { computeMetric, COMPUTED_METRICS } from '../src/eval/computed.js';
import { jsonSchemaValid, jsonValid } from '../src/eval/json.js';
import { exactMatch } from '../src/eval/exact-match.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(here, '..', '..', 'test', 'fixtures', 'eval', name), 'utf8')) as T;

/** Python's assertAlmostEqual(a, b, places): round(a - b, places) == 0. */
function almostEqual(actual: number, expected: number, places: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 0.5 * 10 ** -places, `${what}: ${actual} is not ${expected} to ${places} places`);
}

interface RawCase { hyps: string[]; refs: string[][]; smooth_value: number | null; expected: number; _test?: string }
interface CorpusCase { hyps: string[]; refs: string[][]; kwargs: { tokenize?: 'none' | '13a'; smooth_method?: BleuSmoothing }; expected: number }
interface StatsCase { correct: number[]; total: number[]; sys_len: number; ref_len: number; smooth_method?: BleuSmoothing; offset?: number; expected: number }
interface SentenceCase { sys: string; ref: string; smooth_method: BleuSmoothing; smooth_value: number | null; tokenize: 'none' | '13a'; expected: number }
const bleu = fixture<{
  epsilon_corpus: number; epsilon_sentence: number;
  raw_corpus: RawCase[];
  statistics: { hyps: string[]; refs: string[][]; counts: number[]; totals: number[] }[];
  corpus: CorpusCase[];
  max_ngram_order: { order: number; expected: string }[];
  scoring: StatsCase[];
  degenerate_floor: StatsCase[];
  sentence: { cases: SentenceCase[] };
}>('sacrebleu.json');

const RAW = (smoothValue: number | null): BleuOptions => ({ tokenize: 'none', smoothMethod: 'floor', smoothValue: smoothValue ?? undefined, effectiveOrder: true });

test('sacreBLEU: raw_corpus_bleu cases (no tokenisation, floor smoothing, effective order)', () => {
  for (const c of bleu.raw_corpus) {
    const got = corpusBleu(c.hyps, c.refs, RAW(c.smooth_value)).score / 100;
    assert.ok(Math.abs(got - c.expected) < bleu.epsilon_corpus, `${c._test ?? 'test_raw_bleu'} ${JSON.stringify(c.hyps)}: ${got} != ${c.expected}`);
  }
  for (const c of bleu.statistics) {
    const s = corpusBleu(c.hyps, c.refs, RAW(0.01));
    assert.deepEqual([s.counts, s.totals], [c.counts, c.totals]);
  }
});

test('sacreBLEU: corpus_bleu of the README example (13a, exp smoothing; none tokenisation; empty hypotheses)', () => {
  for (const c of bleu.corpus) {
    const got = corpusBleu(c.hyps, c.refs, { tokenize: c.kwargs.tokenize, smoothMethod: c.kwargs.smooth_method }).score;
    assert.ok(Math.abs(got - c.expected) < bleu.epsilon_corpus, `${JSON.stringify(c.kwargs)}: ${got} != ${c.expected}`);
  }
  const readme = bleu.corpus[0];
  for (const c of bleu.max_ngram_order) {
    assert.equal(corpusBleu(readme.hyps, readme.refs, { maxNgramOrder: c.order }).score.toFixed(2), c.expected, `max_ngram_order ${c.order}`);
  }
});

test('sacreBLEU: compute_bleu from statistics, and degenerate statistics score 0', () => {
  for (const c of bleu.scoring) {
    const got = computeBleu(c.correct, c.total, c.sys_len, c.ref_len, { smoothMethod: c.smooth_method }).score / 100;
    assert.ok(Math.abs(got - c.expected) < bleu.epsilon_corpus, `${got} != ${c.expected}`);
  }
  for (const c of bleu.degenerate_floor) {
    assert.equal(computeBleu(c.correct, c.total, c.sys_len, c.ref_len, { smoothMethod: 'floor', smoothValue: c.offset }).score / 100, c.expected);
  }
});

test('sacreBLEU: sentence BLEU with every smoothing method (effective order, issues #98 and #141)', () => {
  for (const c of bleu.sentence.cases) {
    const got = sentenceBleu(c.sys, [c.ref], { smoothMethod: c.smooth_method, smoothValue: c.smooth_value ?? undefined, tokenize: c.tokenize, effectiveOrder: true }).score;
    assert.ok(Math.abs(got - c.expected) < bleu.epsilon_sentence, `${c.smooth_method}/${c.smooth_value}/${c.tokenize} on ${c.sys}: ${got} != ${c.expected}`);
  }
});

test('13a tokenisation splits punctuation but not numbers, apostrophes or hyphens inside words', () => {
  assert.equal(tokenize13a("It wasn't surprising."), "It wasn't surprising .");
  assert.equal(tokenize13a('Pay $1,000.50 now-ish, 3-4 times &amp; more'), 'Pay $ 1,000.50 now-ish , 3 - 4 times & more');
});

interface RougeCase { test: string; rouge_type: RougeType; target: string; prediction: string; use_stemmer: boolean; precision: number; recall: number; fmeasure: number | null; places: number; fmeasure_places?: number; fmeasure_approx?: number }
const rougeFx = fixture<{
  cases: RougeCase[];
  lcs: { table: { ref: number[]; can: number[]; indices: number[] }[]; summary_level: { refs: number[][]; cans: number[][]; recall: number; precision: number; fmeasure: number; places: number }; summary_level_empty_candidate: { refs: string[][]; cans: string[][]; recall: number } };
  tokenize: { cases: { text: string; tokens: string[] }[] };
}>('rouge-score.json');

test("rouge-score: its test cases, including ROUGE-1.5.5's values with and without the stemmer", () => {
  for (const c of rougeFx.cases) {
    const s = rouge(c.rouge_type, c.target, c.prediction, { useStemmer: c.use_stemmer });
    const what = `${c.test} ${c.rouge_type}${c.use_stemmer ? ' (stemmed)' : ''}`;
    almostEqual(s.precision, c.precision, c.places, `${what} precision`);
    almostEqual(s.recall, c.recall, c.places, `${what} recall`);
    if (c.fmeasure !== null) almostEqual(s.fmeasure, c.fmeasure, c.places, `${what} fmeasure`);
    else almostEqual(s.fmeasure, c.fmeasure_approx!, c.fmeasure_places!, `${what} fmeasure`);
  }
});

test('rouge-score: LCS read-out, union LCS and the summary-level LCS', () => {
  const str = (xs: number[]) => xs.map(String);
  for (const c of rougeFx.lcs.table) assert.deepEqual(lcsIndices(str(c.ref), str(c.can)), c.indices);
  const sl = rougeFx.lcs.summary_level;
  const s = summaryLevelLcs(sl.refs.map(str), sl.cans.map(str));
  assert.equal(s.recall, sl.recall);
  assert.equal(s.precision, sl.precision);
  almostEqual(s.fmeasure, sl.fmeasure, sl.places, 'summary-level fmeasure');
  const e = rougeFx.lcs.summary_level_empty_candidate;
  assert.equal(summaryLevelLcs(e.refs, e.cans).recall, e.recall);
  for (const c of rougeFx.tokenize.cases) assert.deepEqual(rougeTokenize(c.text), c.tokens);
});

test("NLTK's Porter stemmer (the mode rouge-score uses): its published examples", () => {
  for (const c of fixture<{ cases: { word: string; stem: string }[] }>('porter.json').cases) {
    assert.equal(porterStem(c.word), c.stem, c.word);
  }
});

test('rougeLsum with splitSummaries finds sentences, not lines', () => {
  assert.deepEqual(splitSentences('Dr. Smith went home. It rained! Did it? Yes.'), ['Dr. Smith went home.', 'It rained!', 'Did it?', 'Yes.']);
  assert.deepEqual(splitSentences('J. R. R. Tolkien wrote it. The end'), ['J. R. R. Tolkien wrote it.', 'The end']);
  const lines = rouge('rougeLsum', 'w1 w2 w3 w4 w5', 'w1 w2 w6 w7 w8. w1 w3 w8 w9 w5.', { splitSummaries: true });
  assert.equal(lines.recall, 0.8);
  assert.equal(lines.precision, 0.4);
});

test("tool-use metrics on Vertex's published example", () => {
  const fx = fixture<{ reference: string; cases: Record<string, number | string>[] }>('tool-calls.json');
  for (const c of fx.cases) {
    for (const m of ['tool_call_valid', 'tool_name_match', 'tool_parameter_key_match', 'tool_parameter_kv_match']) {
      assert.equal(computeMetric(m, c.prediction as string, fx.reference).score, c[m], `${m} on ${String(c._comment)}`);
    }
  }
  const two = JSON.stringify({ content: '', tool_calls: [{ name: 'f', arguments: { a: 1, b: 'X ' } }, { name: 'g', arguments: {} }] });
  const twoRef = JSON.stringify({ content: '', tool_calls: [{ name: 'f', arguments: { a: 1, b: 'x', c: 2 } }, { name: 'g', arguments: {} }] });
  assert.equal(computeMetric('tool_parameter_key_match', two, twoRef).score, (2 / 3 + 1) / 2);
  assert.equal(computeMetric('tool_parameter_kv_match', two, twoRef).score, (2 / 3 + 1) / 2);
  assert.equal(computeMetric('tool_parameter_kv_match', two, twoRef, { useStrictStringMatch: true }).score, (1 / 3 + 1) / 2);
  assert.equal(computeMetric('tool_call_valid', 'not json', twoRef).score, 0);
  assert.throws(() => computeMetric('tool_call_valid', two, 'not json'), /reference is not a tool-call JSON value/);
});

test('exact_match, json_valid and json_schema_valid', () => {
  assert.equal(exactMatch('Paris', 'Paris'), 1);
  assert.equal(exactMatch('Paris ', 'Paris'), 0);
  assert.equal(jsonValid(' {"a": 1} '), 1);
  assert.equal(jsonValid('```json\n{"a": 1}\n```'), 1);
  assert.equal(jsonValid('{"a": 1'), 0);
  assert.equal(jsonValid('Sure! {"a": 1}'), 0);
  const schema = { type: 'object', required: ['name'], properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } } };
  assert.deepEqual(jsonSchemaValid('{"name": "Ada", "age": 36}', schema), { score: 1 });
  assert.deepEqual(jsonSchemaValid('{"name": "Ada", "age": -1}', schema), { score: 0, reason: '/age must be >= 0' });
  assert.deepEqual(jsonSchemaValid('{"age": 1}', schema), { score: 0, reason: "/ must have required property 'name'" });
  assert.deepEqual(jsonSchemaValid('nope', schema), { score: 0, reason: 'the response is not JSON' });
  assert.throws(() => computeMetric('json_schema_valid', '{}', undefined, { schema: { type: 'nonsense' } }), /not a valid JSON Schema/);
});

test('the computed-metric table: every name scores in [0, 1]; bleu is sentence BLEU / 100', () => {
  const fx = bleu.sentence.cases[0];
  assert.ok(Math.abs(computeMetric('bleu', fx.sys, fx.ref).score - sentenceBleu(fx.sys, [fx.ref]).score / 100) < 1e-12);
  assert.equal(computeMetric('rouge_l', 'testing one', 'testing one two').score, 0.8);
  for (const name of COMPUTED_METRICS) {
    const opts = name === 'json_schema_valid' ? { schema: {} } : {};
    const ref = name.startsWith('tool_') ? '{"tool_calls": []}' : 'a reference';
    const s = computeMetric(name, '{"tool_calls": []}', ref, opts).score;
    assert.ok(s >= 0 && s <= 1, `${name}: ${s}`);
  }
  assert.throws(() => computeMetric('exact_match', 'a', undefined), /needs a reference/);
  assert.throws(() => computeMetric('nope', 'a', 'b'), /Unknown computed metric "nope"/);
});
