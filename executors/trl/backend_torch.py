"""The torch backend: tunekit's independent PyTorch model (tools/torch-reference/model.py) with LoRA,
trained by a plain loop that follows what the trl backend runs: per optimizer step, the step's
examples (its micro-batches) forward and backward, the gradient of sum(cross-entropy) / (the step's
loss-carrying labels), torch's clip_grad_norm_, torch AdamW, and transformers' schedule lambdas
(tools/torch-reference/lr_schedule.py) at step - 1. Float32 on CPU. Used where TRL is not installed."""
import os
import sys
import time

import torch

import contract

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "torch-reference")
sys.path.insert(0, REFERENCE)
from lr_schedule import lambda_for  # noqa: E402
from model import load_model  # noqa: E402

NAME = "torch-reference"


def train(job, out, resume, events, Progress, world):
    if world != 1:
        raise contract.ContractError("the torch backend runs in one process")
    torch.manual_seed(job.seed)
    model = load_model(job.base_model, torch.float32)
    lora = job.lora
    if lora["dropout"] != 0:
        raise contract.ContractError("the torch backend trains without LoRA dropout (job.json lora.dropout must be 0)")
    model.add_lora(lora["rank"], lora["alpha"], lora["targets"])
    params = model.lora_parameters()
    contract.load_into(params, contract.read_safetensors(os.path.join(job.init_adapter, contract.ADAPTER_WEIGHTS)), job.init_adapter)
    optimizer = contract.make_optimizer(params, job)
    start, elapsed = 0, 0.0
    if resume:
        state = contract.load_checkpoint(resume, job, params, optimizer)
        start, elapsed = state["step"], state["elapsedSeconds"]
    lam = lambda_for(job.schedule, job.total_steps, job.warmup_steps)
    progress = Progress(job, out, events, params, optimizer, NAME, lambda ids, mask: model(ids), model.train, start, elapsed)
    events.emit("start", backend=NAME, step=start)
    model.train(True)
    for k in range(start, job.train.steps):
        t0 = time.monotonic()
        lr = job.peak_lr * lam(k)
        for g in optimizer.param_groups:
            g["lr"] = lr
        optimizer.zero_grad()
        micro = job.train.step(k)
        n = sum(contract.targets_in(mb) for mb in micro)
        lsum = correct = tokens = 0.0
        for mb in micro:
            ids, labels, _ = contract.pad(mb)
            s, c, _ = contract.loss_stats(model(ids), labels)
            (s / n).backward()
            lsum, correct, tokens = lsum + float(s), correct + float(c), tokens + sum(len(x) for x, _ in mb)
        grads = [p for p in params.values()]
        if job.clip_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(grads, job.clip_norm))
        else:
            norm = float(torch.norm(torch.stack([p.grad.norm() for p in grads])))
        optimizer.step()
        progress.after_step(lsum, correct, n, tokens, lr, norm, time.monotonic() - t0)
    progress.finish()
