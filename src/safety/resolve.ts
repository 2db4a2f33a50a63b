// The safety check a request gets: the operator's configuration for its project and endpoint
// (config.ts) with the request's safetySettings over its defaults; the classifier loaded through the
// model catalog (a publisher model, with the configured adapter when there is one). Thresholds that
// could block with no classifier configured are 400 FAILED_PRECONDITION saying how to configure one.

import type { ApiContext } from '../api/context.js';
import { HttpError } from '../api/errors.js';
import { SafetyClassifier } from './classifier.js';
import { canBlock, SafetyCheck } from './evaluate.js';
import { NO_SAFETY_CONFIG, scopeFor, type Threshold } from './config.js';
import type { RatedCategory } from './policies.js';

/** Where a request runs, for the per-project / per-endpoint configuration. */
export interface RequestScope {
  project: string;
  endpoint?: string;
}

/** The request's own settings: category -> threshold, and the JSON path of each (for errors). */
export type RequestSettings = Map<RatedCategory, { threshold: Threshold; path: string }>;

export async function safetyCheck(api: ApiContext, scope: RequestScope | undefined, settings: RequestSettings): Promise<SafetyCheck> {
  const config = scope ? scopeFor(api.safety ?? NO_SAFETY_CONFIG, scope.project, scope.endpoint) : { blocklist: [], defaults: new Map<RatedCategory, Threshold>() };
  const thresholds = new Map(config.defaults);
  for (const [category, s] of settings) thresholds.set(category, s.threshold);
  const blocking = [...thresholds].filter(([, t]) => canBlock(t));
  if (blocking.length > 0 && !config.classifier) {
    const [category, threshold] = blocking[0]!;
    const field = settings.get(category)?.path ?? 'safety_settings';
    throw new HttpError('FAILED_PRECONDITION',
      `'${field}' is ${threshold} for ${category}, which needs a safety classifier to evaluate the prompt and the response, and none is configured for ${scope ? `project ${scope.project}${scope.endpoint ? ` (endpoint ${scope.endpoint})` : ''}` : 'this request'}. ` +
      'The operator configures one with `tunekit serve --safety-config FILE` ({"projects": {PROJECT: {"classifier": {"model": NAME}}}}); or send threshold BLOCK_NONE or OFF.',
      { reason: 'SAFETY_CLASSIFIER_NOT_CONFIGURED', fieldViolations: [{ field, description: `${threshold} needs a safety classifier` }] });
  }
  let classifier: SafetyClassifier | null = null;
  const c = config.classifier;
  if (c && [...thresholds.values()].some((t) => t !== 'OFF')) {
    const m = /^publishers\/([^/]+)\/models\/([^/]+)$/.exec(c.model);
    const [publisher, name] = m ? [m[1]!, m[2]!] : ['google', c.model];
    const served = c.adapter
      ? await api.catalog.servedWithAdapter(publisher, name, c.adapter, `publishers/${publisher}/models/${name}+safety-classifier`)
      : await api.catalog.served(publisher, name);
    classifier = new SafetyClassifier(served, c.format);
  }
  return new SafetyCheck(thresholds, config.blocklist, classifier);
}
