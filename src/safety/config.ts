// The operator's safety configuration (`tunekit serve --safety-config FILE`), per project and, within a
// project, per endpoint: the classifier (a registered model, optionally with a tuned adapter), blocklists
// of terms, and default safetySettings that apply when a request leaves a category out (and to the
// OpenAI routes, which have no safetySettings). An endpoint's classifier and defaults override its
// project's; blocklists add up. Read once at start; a bad file is an error naming the key.
//   {"projects": {"P": {"classifier": {"model": "NAME", "adapter"?: "DIR", "format"?: "chat"|"shieldgemma"},
//                       "blocklist"?: ["term", ...], "safetySettings"?: [{"category", "threshold"}],
//                       "endpoints"?: {"E": {...the same, no endpoints...}}}}}

import * as fs from 'node:fs';
import { InvalidRequestError } from '../errors.js';
import { RATED_CATEGORIES, type PromptFormat, type RatedCategory } from './policies.js';

export const THRESHOLDS = ['BLOCK_LOW_AND_ABOVE', 'BLOCK_MEDIUM_AND_ABOVE', 'BLOCK_ONLY_HIGH', 'BLOCK_NONE', 'OFF'] as const;
export type Threshold = (typeof THRESHOLDS)[number];

export interface ClassifierConfig {
  /** A publisher model: "NAME" or "publishers/PUB/models/NAME". */
  model: string;
  /** A PEFT adapter directory the classifier runs with (a model tuned as a classifier). */
  adapter?: string;
  format: PromptFormat;
}

export interface ScopeConfig {
  classifier?: ClassifierConfig;
  blocklist: string[];
  defaults: Map<RatedCategory, Threshold>;
}

export interface SafetyConfig {
  projects: Map<string, { scope: ScopeConfig; endpoints: Map<string, ScopeConfig> }>;
}

export const NO_SAFETY_CONFIG: SafetyConfig = { projects: new Map() };

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

export function loadSafetyConfig(file: string): SafetyConfig {
  let value: unknown;
  try {
    value = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InvalidRequestError(`--safety-config ${file}: ${(e as Error).message}`);
  }
  return parseSafetyConfig(value, file);
}

export function parseSafetyConfig(value: unknown, source: string): SafetyConfig {
  const bad = (at: string, what: string) => new InvalidRequestError(`${source}: ${at}: ${what}`);
  const scope = (v: unknown, at: string, endpoints: boolean): ScopeConfig => {
    if (!isObject(v)) throw bad(at, 'must be an object');
    for (const k of Object.keys(v)) {
      if (!['classifier', 'blocklist', 'safetySettings', ...(endpoints ? ['endpoints'] : [])].includes(k)) throw bad(`${at}.${k}`, 'unknown key');
    }
    const out: ScopeConfig = { blocklist: [], defaults: new Map() };
    if (v.classifier !== undefined) {
      const c = v.classifier;
      if (!isObject(c) || typeof c.model !== 'string' || c.model === '') throw bad(`${at}.classifier`, 'must be {"model": NAME, "adapter"?: DIR, "format"?: "chat"|"shieldgemma"}');
      for (const k of Object.keys(c)) if (!['model', 'adapter', 'format'].includes(k)) throw bad(`${at}.classifier.${k}`, 'unknown key');
      if (c.adapter !== undefined && (typeof c.adapter !== 'string' || !fs.existsSync(c.adapter))) throw bad(`${at}.classifier.adapter`, `${JSON.stringify(c.adapter)} is not an adapter directory`);
      if (c.format !== undefined && c.format !== 'chat' && c.format !== 'shieldgemma') throw bad(`${at}.classifier.format`, 'must be "chat" or "shieldgemma"');
      out.classifier = { model: c.model, ...(typeof c.adapter === 'string' ? { adapter: c.adapter } : {}), format: (c.format as PromptFormat | undefined) ?? 'chat' };
    }
    if (v.blocklist !== undefined) {
      if (!Array.isArray(v.blocklist) || v.blocklist.some((t) => typeof t !== 'string' || t.trim() === '')) throw bad(`${at}.blocklist`, 'must be a list of non-empty terms');
      out.blocklist = (v.blocklist as string[]).map((t) => t.trim());
    }
    if (v.safetySettings !== undefined) {
      if (!Array.isArray(v.safetySettings)) throw bad(`${at}.safetySettings`, 'must be a list of {"category", "threshold"}');
      v.safetySettings.forEach((s, i) => {
        const sat = `${at}.safetySettings[${i}]`;
        if (!isObject(s) || !RATED_CATEGORIES.includes(s.category as RatedCategory)) throw bad(`${sat}.category`, `must be one of ${RATED_CATEGORIES.join(', ')}`);
        if (!THRESHOLDS.includes(s.threshold as Threshold)) throw bad(`${sat}.threshold`, `must be one of ${THRESHOLDS.join(', ')}`);
        out.defaults.set(s.category as RatedCategory, s.threshold as Threshold);
      });
    }
    return out;
  };
  if (!isObject(value) || !isObject(value.projects) || Object.keys(value).some((k) => k !== 'projects')) throw bad('', 'must be {"projects": {PROJECT: {...}}}');
  const projects = new Map<string, { scope: ScopeConfig; endpoints: Map<string, ScopeConfig> }>();
  for (const [p, v] of Object.entries(value.projects)) {
    const at = `projects.${p}`;
    const endpoints = new Map<string, ScopeConfig>();
    if (isObject(v) && v.endpoints !== undefined) {
      if (!isObject(v.endpoints)) throw bad(`${at}.endpoints`, 'must be an object of endpoint ids');
      for (const [e, ev] of Object.entries(v.endpoints)) endpoints.set(e, scope(ev, `${at}.endpoints.${e}`, false));
    }
    projects.set(p, { scope: scope(v, at, true), endpoints });
  }
  return { projects };
}

/** The configuration that applies to a request in `project` (and `endpoint`). */
export function scopeFor(config: SafetyConfig, project: string, endpoint?: string): ScopeConfig {
  const p = config.projects.get(project);
  if (!p) return { blocklist: [], defaults: new Map() };
  const e = endpoint !== undefined ? p.endpoints.get(endpoint) : undefined;
  if (!e) return p.scope;
  const classifier = e.classifier ?? p.scope.classifier;
  return { ...(classifier ? { classifier } : {}), blocklist: [...p.scope.blocklist, ...e.blocklist], defaults: new Map([...p.scope.defaults, ...e.defaults]) };
}
