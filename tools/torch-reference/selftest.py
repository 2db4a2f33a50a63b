"""Checks that the PyTorch reference (model.py, grads.py) is right before anything is compared with it.

Usage:
  node dist/tools/torch-reference/dump-logits.js DIR      # tiny models + our Transformer's logits
  /usr/bin/python3 tools/torch-reference/selftest.py DIR

  (a) a fresh adapter (B = 0) leaves the logits exactly equal to the plain model's;
  (b) autograd gradients equal central finite differences in float64, for LoRA entries of every target
      and for base weights (the --full mode), with a random adapter (B != 0);
  (c) a packed row gives each example the loss (and gradient share) it has when run alone;
  (d) logits equal tunekit's TypeScript Transformer's (which agrees with HF transformers) on every
      variant in DIR, and a deliberately wrong model (no sliding window, no RoPE scaling) does not;
  (e) grads.py end to end: PEFT names in and out, float32 against --float64, --full.
Prints one line per check and exits 1 if any fails.
"""
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from model import LORA_TARGETS, load_model, packed_loss, read_safetensors, write_safetensors  # noqa: E402

LOGIT_TOL = 1e-4  # float32 on both sides, different summation order (same bound as against transformers)
FD_TOL = 1e-6  # float64 central differences with h = 1e-4, relative to max(|grad|, 1% of the tensor's largest)
FD_H = 1e-4
PACK_TOL_F64 = 1e-10
failures = []


def check(name, value, ok, detail=""):
    print(f"{'PASS' if ok else 'FAIL'} {name}: {value}{'  ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def randomize_adapter(model, seed):
    """A (PEFT's Kaiming-uniform, from nn.Linear) and B ~ N(0, 0.1²), so the adapter matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.lora_parameters().items():
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.1)
            else:
                bound = p.shape[1] ** -0.5
                p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1) * bound)


def packed_batch(vocab, seed):
    """Two rows of 40: three examples (13, 9, 18) and two (20, 20); the second row's examples have
    their first 6 targets masked, as a prompt would be. Targets are the next token inside an example."""
    g = torch.Generator().manual_seed(seed)
    rows, examples = [], []
    for lengths, prompt in (((13, 9, 18), 0), ((20, 20), 6)):
        tok, tgt, pos, seg = [], [], [], []
        for s, n in enumerate(lengths):
            ids = torch.randint(0, vocab, (n,), generator=g).tolist()
            targets = ids[1:] + [-1]
            targets = [-1 if i < prompt else t for i, t in enumerate(targets)]
            examples.append((len(rows), len(tok), ids, targets))
            tok += ids
            tgt += targets
            pos += list(range(n))
            seg += [s] * n
        rows.append({"tokens": tok, "targets": tgt, "positions": pos, "segments": seg})
    return rows, examples


def tensors(rows):
    return {k: torch.tensor([r[k] for r in rows]) for k in ("tokens", "targets", "positions", "segments")}


def loss_of(model, rows):
    b = tensors(rows)
    return packed_loss(model(b["tokens"], b["positions"], b["segments"]), b["targets"])


def check_logits_against_typescript(root):
    cases = json.load(open(os.path.join(root, "manifest.json")))
    for c in cases:
        model_dir = os.path.join(root, c["model"])
        ours = read_safetensors(os.path.join(model_dir, "ts_logits.safetensors"))["logits"]
        model = load_model(model_dir)
        tokens = torch.tensor([c["tokens"]])
        with torch.no_grad():
            diff = (model(tokens)[0] - ours).abs().max().item()
        check(f"(d) {c['name']} logits vs TypeScript", f"max|Δ| {diff:.2e}", diff < LOGIT_TOL,
              f"(logit range ±{ours.abs().max().item():.1f}, {len(c['tokens'])} tokens)")
        # Negative controls: the comparison must notice a missing window or missing RoPE scaling.
        if model.cfg.sliding_window is not None or model.cfg.rope_scaling is not None:
            model.cfg.sliding_window = None
            model.inv_freq["global"] = model.inv_freq["local"] if c["family"] == "gemma3" else \
                1.0 / (model.cfg.rope_theta ** (torch.arange(0, model.cfg.head_dim, 2).float() / model.cfg.head_dim))
            with torch.no_grad():
                wrong = (model(tokens)[0] - ours).abs().max().item()
            check(f"(d) {c['name']} wrong model (no window/scaling) is caught", f"max|Δ| {wrong:.2e}", wrong > 100 * LOGIT_TOL)


def check_fresh_adapter(model_dir, name):
    model = load_model(model_dir)
    rows, _ = packed_batch(model.cfg.vocab_size, 1)
    b = tensors(rows)
    with torch.no_grad():
        plain = model(b["tokens"], b["positions"], b["segments"])
        model.add_lora(4, 8, LORA_TARGETS)
        fresh = model(b["tokens"], b["positions"], b["segments"])
    diff = (plain - fresh).abs().max().item()
    check(f"(a) {name} fresh adapter (B=0) logits == base", f"max|Δ| {diff:.1e}", diff == 0.0)


def finite_difference(model, rows, param, index, h=FD_H):
    with torch.no_grad():
        old = param[index].item()
        param[index] = old + h
        up = loss_of(model, rows).item()
        param[index] = old - h
        down = loss_of(model, rows).item()
        param[index] = old
    return (up - down) / (2 * h)


def fd_error(fd, grad, index):
    """|fd - autograd| relative to the entry, floored at 1% of the tensor's largest gradient: the
    differences' rounding noise (~1e-11 absolute) would otherwise dominate near-zero entries."""
    return abs(fd - grad[index].item()) / max(abs(grad[index].item()), 0.01 * grad.abs().max().item())


def check_gradients(model_dir, name):
    g = torch.Generator().manual_seed(7)
    # LoRA: one entry of A and of B in every target, alternating layers.
    model = load_model(model_dir, torch.float64)
    model.add_lora(4, 8, LORA_TARGETS)
    randomize_adapter(model, 11)
    rows, _ = packed_batch(model.cfg.vocab_size, 2)
    loss = loss_of(model, rows)
    loss.backward()
    worst = 0.0
    params = model.lora_parameters()
    for i, t in enumerate(LORA_TARGETS):
        layer = i % model.cfg.num_layers
        for m in ("lora_A", "lora_B"):
            full_name = next(n for n in params if f".layers.{layer}." in n and f".{t}.{m}." in n)
            p = params[full_name]
            index = tuple(torch.randint(0, s, (1,), generator=g).item() for s in p.shape)
            fd = finite_difference(model, rows, p, index)
            worst = max(worst, fd_error(fd, p.grad, index))
    check(f"(b) {name} LoRA grads vs finite differences (14 entries, float64)", f"max rel err {worst:.1e}", worst < FD_TOL)

    # Full fine-tuning: embedding (tied: both uses), a norm, q_norm where present, projections, lm_head.
    model = load_model(model_dir, torch.float64)
    loss = loss_of(model, rows)
    loss.backward()
    worst = 0.0
    named = dict(model.named_parameters())
    picks = ["model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
             "model.layers.1.self_attn.k_proj.weight", "model.layers.0.mlp.down_proj.weight",
             "model.layers.1.post_attention_layernorm.weight", "model.layers.0.self_attn.q_norm.weight",
             "model.layers.0.post_feedforward_layernorm.weight", "lm_head.weight"]
    picks = [p for p in picks if p in named]
    used_token = rows[0]["tokens"][3]
    for pname in picks:
        p = named[pname]
        index = tuple(torch.randint(0, s, (1,), generator=g).item() for s in p.shape)
        if pname == "model.embed_tokens.weight":
            index = (used_token, index[1])  # a row that is looked up, so both the input and head uses count
        fd = finite_difference(model, rows, p, index)
        worst = max(worst, fd_error(fd, p.grad, index))
    check(f"(b) {name} full grads vs finite differences ({len(picks)} tensors, float64)", f"max rel err {worst:.1e}", worst < FD_TOL)


def check_packing(model_dir, name):
    model = load_model(model_dir, torch.float64)
    model.add_lora(4, 8, LORA_TARGETS)
    randomize_adapter(model, 13)
    rows, examples = packed_batch(model.cfg.vocab_size, 3)
    b = tensors(rows)
    logits = model(b["tokens"], b["positions"], b["segments"])
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), b["targets"], ignore_index=-1, reduction="none")
    worst_loss, solo_grads, counts = 0.0, [], []
    params = model.lora_parameters()
    for row, start, ids, targets in examples:
        n = len(ids)
        packed = per_token[row, start:start + n].sum() / sum(t != -1 for t in targets)
        solo = loss_of(model, [{"tokens": ids, "targets": targets, "positions": list(range(n)), "segments": [0] * n}])
        worst_loss = max(worst_loss, abs(packed.item() - solo.item()))
        model.zero_grad()
        solo.backward()
        solo_grads.append({k: p.grad.clone() for k, p in params.items()})
        counts.append(sum(t != -1 for t in targets))
    check(f"(c) {name} packed per-example loss == solo ({len(examples)} examples, float64)", f"max|Δ| {worst_loss:.1e}",
          worst_loss < PACK_TOL_F64)
    model.zero_grad()
    packed_loss(logits, b["targets"]).backward()
    total = sum(counts)
    worst_grad = 0.0
    for k, p in params.items():
        expect = sum(c / total * g[k] for c, g in zip(counts, solo_grads))
        worst_grad = max(worst_grad, ((p.grad - expect).abs().max() / expect.abs().max().clamp_min(1e-30)).item())
    check(f"(c) {name} packed gradient == count-weighted solo gradients", f"max rel err {worst_grad:.1e}", worst_grad < 1e-9)


def check_grads_script(model_dir, name):
    with tempfile.TemporaryDirectory() as case_dir:
        model = load_model(model_dir)
        lora = {"rank": 4, "alpha": 8, "targets": list(LORA_TARGETS)}
        model.add_lora(lora["rank"], lora["alpha"], lora["targets"])
        randomize_adapter(model, 17)
        adapter = {k: p.detach() for k, p in model.lora_parameters().items()}
        write_safetensors(os.path.join(case_dir, "adapter_model.safetensors"), adapter)
        rows, _ = packed_batch(model.cfg.vocab_size, 4)
        json.dump({"model": os.path.abspath(model_dir), "lora": lora, "rows": rows},
                  open(os.path.join(case_dir, "case.json"), "w"))
        script = os.path.join(HERE, "grads.py")
        runs = {}
        for flags, out in (([], "f32.safetensors"), (["--float64"], "f64.safetensors"), (["--full"], "full.safetensors"),
                           (["--full", "--float64"], "full64.safetensors")):
            res = subprocess.run([sys.executable, script, case_dir, "--out", out, *flags], capture_output=True, text=True)
            if res.returncode != 0:
                check(f"(e) {name} grads.py {' '.join(flags)}", "crashed", False, res.stderr[-2000:])
                return
            runs[out] = (json.loads(res.stdout), read_safetensors(os.path.join(case_dir, out)))
        f32, f64 = runs["f32.safetensors"][1], runs["f64.safetensors"][1]
        names_ok = set(f32) == set(adapter) | {"loss"} and all(n.startswith("base_model.model.model.layers.") for n in adapter)
        rel = max(((f32[k] - f64[k]).abs().max() / f64[k].abs().max()).item() for k in adapter)
        loss_diff = abs(runs["f32.safetensors"][0]["loss"] - runs["f64.safetensors"][0]["loss"])
        check(f"(e) {name} grads.py LoRA float32 vs --float64 ({len(adapter)} tensors)", f"max rel err {rel:.1e}, |Δloss| {loss_diff:.1e}",
              names_ok and rel < 1e-4 and loss_diff < 1e-5)
        full, full64 = runs["full.safetensors"][1], runs["full64.safetensors"][1]
        base_names = set(dict(load_model(model_dir).named_parameters()))
        rel = max(((full[k] - full64[k]).abs().max() / full64[k].abs().max()).item() for k in base_names)
        check(f"(e) {name} grads.py --full float32 vs --float64 ({len(base_names)} tensors)", f"max rel err {rel:.1e}",
              set(full) == base_names | {"loss"} and rel < 1e-4)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    torch.manual_seed(0)
    print(f"torch {torch.__version__}", flush=True)
    check_logits_against_typescript(root)
    for c in json.load(open(os.path.join(root, "manifest.json"))):
        model_dir = os.path.join(root, c["model"])
        check_fresh_adapter(model_dir, c["name"])
        check_gradients(model_dir, c["name"])
        check_packing(model_dir, c["name"])
        check_grads_script(model_dir, c["name"])
    print(f"selftest: {'FAIL (' + ', '.join(failures) + ')' if failures else 'PASS'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
