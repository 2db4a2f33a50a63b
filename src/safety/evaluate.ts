// Safety decisions for one request: blocklist terms first (BLOCKLIST, no classifier needed), then the
// classifier's probabilityScore per rated category, bucketed into Vertex's HarmProbability and compared
// with the category's threshold. Buckets (tunekit's; Vertex does not publish its boundaries):
// NEGLIGIBLE < 0.25 <= LOW < 0.5 <= MEDIUM < 0.75 <= HIGH. BLOCK_NONE rates without blocking; OFF does
// not rate. Only the PROBABILITY method exists: there is no severity model (SEVERITY is refused).

import type { SafetyClassifier } from './classifier.js';
import type { Threshold } from './config.js';
import type { RatedCategory } from './policies.js';

export type HarmProbability = 'NEGLIGIBLE' | 'LOW' | 'MEDIUM' | 'HIGH';

export interface SafetyRating {
  category: RatedCategory;
  probability: HarmProbability;
  probabilityScore: number;
  blocked?: true;
}

export interface SafetyVerdict {
  /** SAFETY (a rating crossed its threshold) or BLOCKLIST (a configured term occurs); absent: passes. */
  blocked?: 'SAFETY' | 'BLOCKLIST';
  /** What blocked it, in words (blockReasonMessage / finishMessage). */
  message?: string;
  ratings: SafetyRating[];
}

export function probabilityOf(score: number): HarmProbability {
  return score < 0.25 ? 'NEGLIGIBLE' : score < 0.5 ? 'LOW' : score < 0.75 ? 'MEDIUM' : 'HIGH';
}

const ORDER: HarmProbability[] = ['NEGLIGIBLE', 'LOW', 'MEDIUM', 'HIGH'];
const LOWEST_BLOCKED: Partial<Record<Threshold, HarmProbability>> = { BLOCK_LOW_AND_ABOVE: 'LOW', BLOCK_MEDIUM_AND_ABOVE: 'MEDIUM', BLOCK_ONLY_HIGH: 'HIGH' };

export function blocks(threshold: Threshold, p: HarmProbability): boolean {
  const lowest = LOWEST_BLOCKED[threshold];
  return lowest !== undefined && ORDER.indexOf(p) >= ORDER.indexOf(lowest);
}

/** Whether a threshold can block at all (so it needs a classifier). */
export function canBlock(threshold: Threshold): boolean {
  return LOWEST_BLOCKED[threshold] !== undefined;
}

/** The first blocklist term in `text`, case-insensitive, as a whole word or phrase; null when none. */
export function blocklistHit(text: string, terms: readonly string[]): string | null {
  const lower = text.toLowerCase();
  for (const term of terms) {
    const t = term.toLowerCase();
    for (let i = lower.indexOf(t); i >= 0; i = lower.indexOf(t, i + 1)) {
      const before = i === 0 ? '' : lower[i - 1]!;
      const after = lower[i + t.length] ?? '';
      if (!/[\p{L}\p{N}_]/u.test(before) && !/[\p{L}\p{N}_]/u.test(after)) return term;
    }
  }
  return null;
}

/** The safety check of one request: its thresholds per category, blocklist and classifier. */
export class SafetyCheck {
  constructor(
    readonly thresholds: ReadonlyMap<RatedCategory, Threshold>,
    readonly blocklist: readonly string[],
    readonly classifier: SafetyClassifier | null,
  ) {}

  /** Categories the classifier rates (every one with a threshold other than OFF). */
  get rated(): RatedCategory[] {
    return this.classifier ? [...this.thresholds].filter(([, t]) => t !== 'OFF').map(([c]) => c) : [];
  }

  get active(): boolean {
    return this.blocklist.length > 0 || this.rated.length > 0;
  }

  /** The verdict on a prompt (`response` undefined) or on a response to it. */
  async judge(userText: string, response: string | undefined, signal: AbortSignal): Promise<SafetyVerdict> {
    const text = response ?? userText;
    const term = blocklistHit(text, this.blocklist);
    if (term !== null) return { blocked: 'BLOCKLIST', message: `The ${response === undefined ? 'prompt' : 'response'} contains a blocklisted term.`, ratings: [] };
    const rated = this.rated;
    if (rated.length === 0) return { ratings: [] };
    const scores = await this.classifier!.score(rated, userText, response, signal);
    let blocked = false;
    const ratings = rated.map((category) => {
      const probabilityScore = scores.get(category)!;
      const probability = probabilityOf(probabilityScore);
      const r: SafetyRating = { category, probability, probabilityScore };
      if (blocks(this.thresholds.get(category)!, probability)) {
        r.blocked = true;
        blocked = true;
      }
      return r;
    });
    return blocked
      ? { blocked: 'SAFETY', message: `The ${response === undefined ? 'prompt' : 'response'} was blocked by the safety classifier (${ratings.filter((r) => r.blocked).map((r) => r.category).join(', ')}).`, ratings }
      : { ratings };
  }
}
