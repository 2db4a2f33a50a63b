"""PyTorch peer for `npm run bench:train`: LoRA training steps on the same model, batch shape and threads.

Usage: /usr/bin/python3 bench/train_torch.py [--model .cache/bench/llama-small | --config config.json [--init-std 0.02]]
           [--threads 2] [--batch 4]
           [--seq 512] [--steps 3] [--rank 8] [--alpha 16] [--loss-fraction 1.0] [--seed 0]
Prints one JSON line: tokens_per_second (batch·seq / mean timed step), step_seconds (mean), step_times,
step_cpu_seconds (mean CPU time of all threads), loss_first (first step), loss_last (last step),
threads, torch_version, peak_rss_bytes (ru_maxrss), and the settings. With --config the weights are drawn
here, as Hugging Face's _init_weights draws them: normal(0, init-std), norms at their neutral value.

Plain PyTorch as a competent user writes it: the reference model (tools/torch-reference/model.py, an
nn.Module with LoRA on q/k/v/o/gate/up/down and frozen base weights), float32, autograd, AdamW on the
LoRA parameters. Attention is F.scaled_dot_product_attention with a boolean mask where PyTorch has it
(>= 2.1), else matmul, masked_fill and softmax (PyTorch 1.13, Debian 12).

The batch is fixed (every step trains on it, so the loss falls) and reproducible from TypeScript with
src/engine/random.ts's Random(seed), drawn in this order: for each row, examples until the row is full:
  n = min(room, minLen + floor(next() · (maxLen − minLen + 1))), then n tokens floor(next() · V);
positions restart at 0 per example, segments count examples in the row; targets[i] = tokens[i + 1]
inside an example for its last floor(fraction · (n − 1) + 0.5) predictions, else −1 (the last token never
predicts the next example's first).
"""
import argparse
import json
import os
import resource
import sys
import time

sys.dont_write_bytecode = True


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch LoRA training-step benchmark")
    ap.add_argument("--model", default=".cache/bench/llama-small")
    ap.add_argument("--config", help="config.json of a model with random weights (instead of --model)")
    ap.add_argument("--init-std", type=float, default=0.02, help="with --config: std of the random weights")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3, help="timed steps, after the warm-up steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (0 or 1)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--loss-fraction", type=float, default=1.0, help="share of each example's predictions with loss")
    ap.add_argument("--min-example", type=int, default=32, help="shortest packed example, tokens")
    ap.add_argument("--max-example", type=int, default=256, help="longest packed example, tokens")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


class Random:
    """src/engine/random.ts's generator (SplitMix32 state), so both benchmarks draw the same batch."""
    M = 0xFFFFFFFF

    def __init__(self, seed):
        self.state = ((seed & self.M) ^ 0x9E3779B9) & self.M

    def next(self):
        self.state = (self.state + 0x9E3779B9) & self.M
        z = self.state
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & self.M
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & self.M
        z ^= z >> 16
        return z / 4294967296


def packed_batch(args, vocab):
    """tokens, targets, positions, segments: lists of `batch` rows of `seq` ints (see the docstring)."""
    rng = Random(args.seed)
    rows = {"tokens": [], "targets": [], "positions": [], "segments": []}
    for _ in range(args.batch):
        tok, tgt, pos, seg = [], [], [], []
        while len(tok) < args.seq:
            span = args.max_example - args.min_example + 1
            n = min(args.seq - len(tok), args.min_example + int(rng.next() * span))
            ids = [int(rng.next() * vocab) for _ in range(n)]
            with_loss = int(args.loss_fraction * (n - 1) + 0.5)  # Math.round, not banker's rounding
            tgt += [ids[i + 1] if i >= n - 1 - with_loss else -1 for i in range(n - 1)] + [-1]
            tok += ids
            pos += list(range(n))
            seg += [len(set(seg))] * n
        for key, values in zip(("tokens", "targets", "positions", "segments"), (tok, tgt, pos, seg)):
            rows[key].append(values)
    return rows


def main():
    args = parse_args()
    # OpenBLAS (Debian's torch BLAS) reads its thread count at load time; match --threads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "torch-reference"))
    from model import HAS_SDPA, CausalLM, Config, load_model, packed_loss

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.config:
        with open(args.config) as f:
            model = CausalLM(Config.from_json(json.load(f)))
        neutral = 0.0 if model.cfg.family == "gemma3" else 1.0
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.fill_(neutral)
                else:
                    p.normal_(0.0, args.init_std)
    else:
        model = load_model(args.model, torch.float32)
    model.add_lora(args.rank, args.alpha)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    batch = {k: torch.tensor(v, dtype=torch.int64) for k, v in packed_batch(args, model.cfg.vocab_size).items()}
    target_count = int((batch["targets"] != -1).sum())

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(batch["tokens"], batch["positions"], batch["segments"])
        loss = packed_loss(logits, batch["targets"])
        loss.backward()
        optimizer.step()
        return loss.item()

    times, cpu, losses = [], [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(step())
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    loss_first, loss_last = losses[0], losses[-1]
    step_seconds = sum(times) / len(times)
    print(json.dumps({
        "tokens_per_second": args.batch * args.seq / step_seconds,
        "step_seconds": step_seconds,
        "step_times": times,
        "step_cpu_seconds": sum(cpu) / len(cpu),  # user + system, all threads: shows a busy machine
        "loss_first": loss_first,
        "loss_last": loss_last,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "batch": args.batch, "seq": args.seq, "rank": args.rank, "alpha": args.alpha,
        "target_tokens": target_count, "trainable_parameters": sum(p.numel() for p in params),
        "attention": "sdpa" if HAS_SDPA else "matmul-softmax",
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
