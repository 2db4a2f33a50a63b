"""Loss and gradients of one packed batch, from the independent PyTorch model (model.py).

Usage: /usr/bin/python3 tools/torch-reference/grads.py CASE_DIR [--float64] [--full] [--out FILE]

CASE_DIR/case.json:
  {"model": "path/to/hf-dir",             # relative to CASE_DIR, or absolute
   "lora": {"rank": 8, "alpha": 16,       # ignored with --full; "dropout", if given, must be 0
            "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
   "rows": [{"tokens": [...], "targets": [...],      # targets[t] = -1: no loss at t
             "positions": [...], "segments": [...]}]}  # optional: default 0..T-1 and all 0
Rows may differ in length; shorter ones are padded with an isolated segment that carries no loss.
CASE_DIR/adapter_model.safetensors: the LoRA tensors under their PEFT names (not read with --full).

Writes CASE_DIR/torch_grads.safetensors (or --out, relative to CASE_DIR), all F32: the gradient of
the loss for every LoRA tensor (PEFT names), or with --full for every base weight (HF names; with tied
embeddings the embedding's gradient includes the lm_head use), plus the scalar "loss". Prints one JSON
line {"loss", "target_count", "dtype", "mode"}. --float64 runs everything in double precision.
"""
import argparse
import json
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import load_model, packed_loss, read_safetensors, write_safetensors  # noqa: E402

PAD_SEGMENT = -1


def batch_tensors(rows):
    """tokens, targets, positions, segments (B, T) int64 from the case's rows, padded to one length."""
    T = max(len(r["tokens"]) for r in rows)
    cols = {"tokens": [], "targets": [], "positions": [], "segments": []}
    for i, r in enumerate(rows):
        n = len(r["tokens"])
        full = {
            "tokens": r["tokens"], "targets": r["targets"],
            "positions": r.get("positions", list(range(n))), "segments": r.get("segments", [0] * n),
        }
        for key, values in full.items():
            if len(values) != n:
                raise ValueError(f"rows[{i}].{key} has {len(values)} entries but tokens has {n}")
        pad = T - n
        cols["tokens"].append(full["tokens"] + [0] * pad)
        cols["targets"].append(full["targets"] + [-1] * pad)
        cols["positions"].append(full["positions"] + [0] * pad)
        cols["segments"].append(full["segments"] + [PAD_SEGMENT] * pad)
    return {k: torch.tensor(v, dtype=torch.int64) for k, v in cols.items()}


def compute(case_dir, float64=False, full=False):
    """(loss, target_count, name -> gradient) for the case in case_dir."""
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    dtype = torch.float64 if float64 else torch.float32
    model = load_model(os.path.join(case_dir, case["model"]), dtype)
    if full:
        params = dict(model.named_parameters())
    else:
        lora = case["lora"]
        if lora.get("dropout", 0) != 0:
            raise ValueError("case.json: lora.dropout must be 0 (gradients are of the deterministic model)")
        model.add_lora(lora["rank"], lora["alpha"], lora["targets"])
        model.load_lora(read_safetensors(os.path.join(case_dir, "adapter_model.safetensors")))
        params = model.lora_parameters()
    b = batch_tensors(case["rows"])
    count = int((b["targets"] != -1).sum())
    if count == 0:
        raise ValueError("case.json: no position has a target (all targets are -1)")
    loss = packed_loss(model(b["tokens"], b["positions"], b["segments"]), b["targets"])
    loss.backward()
    return loss.detach(), count, {name: p.grad for name, p in params.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("case_dir")
    ap.add_argument("--float64", action="store_true", help="run in double precision")
    ap.add_argument("--full", action="store_true", help="gradients of all base weights instead of LoRA")
    ap.add_argument("--out", default="torch_grads.safetensors", help="output file, relative to CASE_DIR")
    args = ap.parse_args()
    torch.manual_seed(0)
    loss, count, grads = compute(args.case_dir, args.float64, args.full)
    write_safetensors(os.path.join(args.case_dir, args.out), {**grads, "loss": loss})
    print(json.dumps({"loss": float(loss), "target_count": count,
                      "dtype": "float64" if args.float64 else "float32", "mode": "full" if args.full else "lora"}))


if __name__ == "__main__":
    main()
