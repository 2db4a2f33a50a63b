#!/usr/bin/env bash
# Parity of the trl executor (TRL SFTTrainer + PEFT) with tunekit's own trainer, on a machine with a
# GPU and Python with torch, transformers, peft and trl (pip install torch transformers peft trl accelerate).
# Builds tunekit, reports the Python stack and the GPU, then runs tools/trl-parity/parity.ts:
# the quickstart's job on a tiny model of each architecture, trained by both executors from the same
# initial adapter; prints eval losses and greedy-answer agreement on 40 held-out prompts; exits 1
# past the tolerance. Extra arguments go to parity.ts (e.g. --backends trl,torch --arch llama).
# TUNEKIT_PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${TUNEKIT_PYTHON:-python3}"
export TUNEKIT_PYTHON="$PY"
"$PY" - <<'PYEOF'
import importlib
for m in ("torch", "transformers", "peft", "trl", "accelerate"):
    try:
        print(f"{m} {importlib.import_module(m).__version__}")
    except ImportError as e:
        print(f"{m}: not importable ({e})")
import torch
print("cuda:", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PYEOF
npx tsc -p tsconfig.json
node dist/tools/trl-parity/parity.js "$@"
