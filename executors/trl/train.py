"""tunekit's trl executor: trains one tuning run that tunekit rendered and planned (contract.py).

Usage: python3 executors/trl/train.py --input DIR --out DIR [--resume CHECKPOINT] [--backend auto|trl|torch]
                                      [--processes N] [--parent PID]

Backends: `trl` is Hugging Face TRL's SFTTrainer with a PEFT LoRA model (transformers + peft + trl,
accelerate for several GPUs: --processes N); `torch` is tunekit's independent PyTorch implementation
of the three architectures (tools/torch-reference/model.py) under a plain AdamW loop that follows the
same spec, used where TRL is not installed (CPU test machines); `auto` (default) takes `trl` when it
imports. Both train on exactly the given token ids, write the same events, checkpoints and adapter.
"""
import argparse
import os
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import contract  # noqa: E402


def trl_missing():
    """Why the trl backend cannot run here, or None."""
    try:
        import peft  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


class Progress:
    """What both backends do after an optimizer step: the step's event, evaluations, the epoch's
    checkpoint, and at the end the final adapter. `logits` runs the model on (input_ids, mask)."""

    def __init__(self, job, out, events, params, optimizer, backend, logits, train_mode, start_step, elapsed, all_reduce=None):
        self.job, self.out, self.events, self.params, self.optimizer = job, out, events, params, optimizer
        self.backend, self.logits, self.train_mode = backend, logits, train_mode
        self.step = start_step
        self.clock = contract.Clock(elapsed)
        self.all_reduce = all_reduce or (lambda xs: xs)
        self.rank0 = events.f is not None

    def after_step(self, lsum, correct, count, tokens, lr, grad_norm, seconds):
        k = self.step
        self.step += 1
        epoch = self.job.train.epoch_of(k)
        self.events.emit(
            "step", step=self.step, epoch=epoch, train_total_loss=lsum / count if count else 0.0,
            train_fraction_of_correct_next_step_preds=correct / count if count else 0.0, train_num_predictions=int(count),
            learning_rate=lr, grad_norm=grad_norm, tokens_per_second=tokens / seconds if seconds > 0 else 0.0,
            elapsed_seconds=self.clock(), total_steps=self.job.total_steps)
        if self.job.eval_every > 0 and self.step % self.job.eval_every == 0:
            self.evaluate(epoch)
        if self.job.train.is_epoch_end(k):
            self.evaluate(epoch)
            if self.rank0:
                contract.save_checkpoint(self.out, epoch, self.step, self.job, self.clock(), self.params, self.optimizer, self.backend)
                self.events.emit("checkpoint", epoch=epoch, step=self.step)
        contract.check_parent()

    def evaluate(self, epoch):
        v = self.job.validation
        if v is None:
            return
        import torch
        lsum = correct = count = 0.0
        self.train_mode(False)
        with torch.no_grad():
            for b in range(len(v.batch_examples) - 1):
                ids, labels, mask = contract.pad(v.batch(b), self.device())
                s, c, n = contract.loss_stats(self.logits(ids, mask), labels)
                lsum, correct, count = lsum + float(s), correct + float(c), count + float(n)
        self.train_mode(True)
        self.events.emit("eval", step=self.step, epoch=epoch, eval_total_loss=lsum / count if count else 0.0,
                         eval_fraction_of_correct_next_step_preds=correct / count if count else 0.0,
                         eval_num_predictions=int(count))

    def device(self):
        return next(iter(self.params.values())).device

    def finish(self):
        if self.rank0:
            contract.write_adapter(self.out, self.params, self.job.adapter_config(True))
            self.events.emit("done")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--resume")
    ap.add_argument("--backend", choices=("auto", "trl", "torch"), default="auto")
    ap.add_argument("--processes", type=int, default=1, help="data-parallel processes (accelerate launch; trl backend)")
    ap.add_argument("--parent", type=int, help="the pid this process dies with (default: its parent at start)")
    args = ap.parse_args()
    contract.die_with_parent(args.parent if args.parent is not None else os.getppid())
    missing = trl_missing()
    backend = args.backend if args.backend != "auto" else ("torch" if missing else "trl")
    if backend == "trl" and missing:
        raise SystemExit(f"--backend trl: TRL, PEFT or transformers is not importable here ({missing})")
    if args.processes > 1:
        if backend != "trl":
            raise SystemExit("--processes N > 1 needs the trl backend")
        return launch(args)
    job = contract.Job(args.input)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    events = contract.Events(enabled=int(os.environ.get("RANK", "0")) == 0)
    if backend == "trl":
        import backend_trl as impl
    else:
        import backend_torch as impl
    impl.train(job, args.out, args.resume, events, Progress, world)


def launch(args):
    """Re-runs this program under `accelerate launch` with N processes; rank 0 writes the events to
    this process's fd 3 through /proc (the launcher does not pass descriptors on)."""
    env = dict(os.environ, TUNEKIT_TRL_EVENTS=f"/proc/{os.getpid()}/fd/{contract.EVENTS_FD}")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(args.processes), os.path.abspath(__file__),
           "--input", args.input, "--out", args.out, "--backend", "trl"] + (["--resume", args.resume] if args.resume else [])
    child = subprocess.Popen(cmd, env=env, pass_fds=(contract.EVENTS_FD,), preexec_fn=contract.set_pdeathsig)
    while child.poll() is None:
        contract.check_parent()
        time.sleep(1)
    sys.exit(child.returncode)


if __name__ == "__main__":
    try:
        main()
    except contract.ContractError as e:
        print(f"trl executor: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception:
        traceback.print_exc()
        sys.exit(1)
