#!/usr/bin/env bash
# The main job: the whole path on a model the project builds itself (no downloads).
#  1. a tiny Llama-architecture base model (random weights, real BPE tokenizer, Llama 3 chat template);
#  2. LoRA supervised fine-tuning on a small Vertex-format dataset (examples/data), with validation;
#  3. generation with the tuned adapter on a held-out prompt: the base model babbles, the tuned one
#     answers in the trained format and stops by itself;
#  4. export: merged HF model, GGUF base + GGUF LoRA for llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
tk="node dist/src/cli/main.js"
work=.cache/quickstart
rm -rf "$work"
$tk model init --arch llama --size tiny --seed 1 --out "$work/base"
$tk tune --base "$work/base" --train examples/data/tone-train.jsonl --validation examples/data/tone-validation.jsonl \
  --out "$work/adapter" --epochs 10 --adapter-size 8 --learning-rate 1e-2 --batch-tokens 512 --max-seq-len 256
prompt="we saw a very orange house today"
echo "--- base model:"
$tk generate --model "$work/base" --chat --prompt "$prompt" --max-tokens 16
echo "--- tuned model:"
$tk generate --model "$work/base" --adapter "$work/adapter" --chat --prompt "$prompt" --max-tokens 16 --verbose
$tk merge --base "$work/base" --adapter "$work/adapter" --out "$work/merged"
$tk export gguf --model "$work/base" --out "$work/base.gguf"
$tk export gguf --model "$work/base" --adapter "$work/adapter" --out "$work/adapter.gguf"
