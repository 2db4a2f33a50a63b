#!/usr/bin/env bash
# The main job for now: build a tiny Llama-architecture checkpoint (random weights, real BPE tokenizer,
# Llama 3 chat template), then generate from it, greedy and sampled, streaming.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.cache/examples/llama-tiny
node dist/src/cli/main.js model init --arch llama --size tiny --seed 1 --out "$dir"
node dist/src/cli/main.js generate --model "$dir" --chat --prompt "Write a haiku about the sea." --max-tokens 48 --stream --verbose
node dist/src/cli/main.js generate --model "$dir" --prompt "Once upon a time" --max-tokens 32 --temperature 0.8 --top-p 0.95 --seed 42 --verbose
