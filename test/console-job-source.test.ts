// The console's source model of a tuning job (src/console/web/job-source.ts, run here from its browser
// build): a continuous tuning job (preTunedModel, no top-level baseModel: the source_model oneof)
// shows its base from preTunedModel.baseModel and the tuned model and checkpoint it started from.

import { test } from 'node:test';
import assert from 'node:assert/strict';

// dist/test/… → dist/console/job-source.js (built by tsc -p src/console/web/tsconfig.json).
const web = await import(new URL('../console/job-source.js', import.meta.url).href) as {
  jobSource(job: Record<string, unknown>): { base: string; tunedModel?: string; checkpointId?: string };
  shortModel(name: string): string;
};

test('a continuous tuning job shows preTunedModel.baseModel and the tuned model it started from', () => {
  const tuned = 'projects/p/locations/us-central1/models/123';
  assert.deepEqual(web.jobSource({ preTunedModel: { tunedModelName: tuned, checkpointId: '2', baseModel: 'publishers/google/models/gemma3-tiny' } }),
    { base: 'publishers/google/models/gemma3-tiny', tunedModel: tuned, checkpointId: '2' });
  assert.deepEqual(web.jobSource({ preTunedModel: { tunedModelName: tuned, baseModel: 'gemma3-tiny' } }), { base: 'gemma3-tiny', tunedModel: tuned });
  assert.deepEqual(web.jobSource({ baseModel: 'publishers/google/models/gemma3-tiny' }), { base: 'publishers/google/models/gemma3-tiny' });
  assert.equal(web.shortModel('publishers/google/models/gemma3-tiny'), 'gemma3-tiny');
});
