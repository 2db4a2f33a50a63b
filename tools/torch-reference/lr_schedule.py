"""Learning rates per optimizer step as Hugging Face transformers schedules them, driven by torch.

Usage: /usr/bin/python3 tools/torch-reference/lr_schedule.py '[{"kind": "linear", "total": 10, "ratio": 0.03, "peak": 0.001}, ...]'
Prints a JSON list with, per case, {"warmup": W, "lrs": [...]}: the warmup steps TrainingArguments.get_warmup_steps
gives for the ratio (ceil(total × ratio)), and the learning rate each optimizer step 1..total runs at, read
from the optimizer before its step() as HF's Trainer logs it. The lambdas are transformers'
(src/transformers/optimization.py: _get_linear_schedule_with_warmup_lr_lambda,
_get_cosine_schedule_with_warmup_lr_lambda with num_cycles 0.5, _get_constant_schedule_with_warmup_lr_lambda),
carried over verbatim; torch.optim.lr_scheduler.LambdaLR applies them. Cases without warmup are also
run through torch's own LinearLR / CosineAnnealingLR / constant, and the two must agree.
"""
import json
import math
import sys
from functools import partial

import torch


def _get_constant_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1.0, num_warmup_steps))
    return 1.0


def _get_linear_schedule_with_warmup_lr_lambda(current_step: int, *, num_warmup_steps: int, num_training_steps: int):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def _get_cosine_schedule_with_warmup_lr_lambda(
    current_step: int, *, num_warmup_steps: int, num_training_steps: int, num_cycles: float
):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def lambda_for(kind, total, warmup):
    if kind == "linear":
        return partial(_get_linear_schedule_with_warmup_lr_lambda, num_warmup_steps=warmup, num_training_steps=total)
    if kind == "cosine":
        return partial(_get_cosine_schedule_with_warmup_lr_lambda, num_warmup_steps=warmup, num_training_steps=total, num_cycles=0.5)
    if kind == "constant":
        return partial(_get_constant_schedule_with_warmup_lr_lambda, num_warmup_steps=warmup)
    raise ValueError(f"unknown schedule {kind!r}")


def run(make_scheduler, total, peak):
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=peak)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def torch_native(kind, total):
    if kind == "linear":
        return lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=total)
    if kind == "cosine":
        return lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


def main():
    out = []
    for case in json.loads(sys.argv[1]):
        kind, total, peak = case["kind"], case["total"], case["peak"]
        warmup = math.ceil(total * case["ratio"])
        lrs = run(lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda_for(kind, total, warmup)), total, peak)
        if warmup == 0:
            native = run(torch_native(kind, total), total, peak)
            worst = max(abs(a - b) for a, b in zip(lrs, native))
            if worst > 1e-12 * peak:
                raise SystemExit(f"{case}: transformers' lambda and torch's own scheduler differ by {worst}")
        out.append({"warmup": warmup, "lrs": lrs})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
