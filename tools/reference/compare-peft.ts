// Checks tunekit's LoRA gradients against transformers + PEFT (run where they are installed).
//   node dist/tools/reference/compare-peft.js prepare DIR     tiny models, random adapters, examples
//   python3 tools/reference/peft_grads.py DIR OUT               (on the machine with transformers + peft)
//   node dist/tools/reference/compare-peft.js compare DIR OUT
//   node dist/tools/reference/compare-peft.js fixture DIR OUT   copies OUT into test/fixtures/peft-reference
// compare prints, per case, |Δloss| and the worst relative error of any LoRA gradient tensor
// (‖g_ours − g_peft‖ / ‖g_peft‖).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { comparePeftGradients, preparePeftCases } from './peft-check.js';

const [mode, dir, out] = process.argv.slice(2);
if (mode === 'prepare' && dir) await preparePeftCases(dir);
else if (mode === 'compare' && dir && out) {
  let ok = true;
  for (const r of await comparePeftGradients(dir, out)) {
    const dLoss = Math.abs(r.lossOurs - r.lossPeft);
    const pass = dLoss < 1e-4 && r.worstRelative < 1e-3;
    ok &&= pass;
    console.log(`${r.name}: loss ours ${r.lossOurs.toFixed(6)} peft ${r.lossPeft.toFixed(6)} (|Δ| ${dLoss.toExponential(2)}); ` +
      `${r.tensors} LoRA gradient tensors, worst ‖Δg‖/‖g‖ ${r.worstRelative.toExponential(2)} (${r.worstTensor}) [${r.versions}] ${pass ? 'PASS' : 'FAIL'}`);
  }
  process.exitCode = ok ? 0 : 1;
} else if (mode === 'fixture' && dir && out) {
  const dst = path.resolve('test/fixtures/peft-reference');
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(out)) fs.copyFileSync(path.join(out, f), path.join(dst, f));
  console.log(`copied ${out} to ${dst}`);
} else {
  console.error('usage: compare-peft prepare DIR | compare DIR OUT | fixture DIR OUT');
  process.exitCode = 2;
}
