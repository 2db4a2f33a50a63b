"""The trl executor's contract with tunekit (src/train/trl-executor.ts), shared by both backends.

In: INPUT/job.json (hyper-parameters, schedule, fingerprint), INPUT/init-adapter (PEFT), and per
split (train, validation) the examples of every micro-batch of every step of every epoch, in training
order: <split>.input_ids.i32 and <split>.labels.i32 (little-endian int32, labels -100 where the loss
mask is 0) and <split>.layout.json (example_offsets, batch_examples, step_batches, epoch_steps: where
each example, micro-batch, step and epoch starts, each with a final end entry).
Out: one JSON line per event on file descriptor 3, epoch checkpoints OUT/checkpoints/epoch-N
(trainer_state.json, the PEFT adapter, optimizer.safetensors with each tensor's AdamW moments) and the
final PEFT adapter in OUT. Nothing here depends on the backend.
"""
import ctypes
import json
import math
import os
import shutil
import signal
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

INPUT_FORMAT = "tunekit-trl-input/1"
EVENTS_FD = 3
IGNORE = -100
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class ContractError(Exception):
    """The input files or a checkpoint break the contract."""


# ---- process ----------------------------------------------------------------------------------------

_parent = [None]


def set_pdeathsig():
    """SIGKILL this process when its parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def die_with_parent(parent):
    """This process dies with its parent (prctl) and stops at its next step once `parent` (the tunekit
    worker's pid, given on the command line: it may be a grandparent) is gone."""
    _parent[0] = parent
    set_pdeathsig()
    check_parent()


def check_parent():
    """Exits at once when the process this one dies with is gone."""
    if _parent[0] is None:
        return
    try:
        os.kill(_parent[0], 0)
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:
        pass


# ---- safetensors (F32 / I64 / I32 reads, F32 writes) ----------------------------------------------------

_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin:8 + n + end]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _DTYPES:
            arr = np.frombuffer(raw, _DTYPES[info["dtype"]])
        else:
            raise ContractError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).astype(np.float32))
    return out


def write_safetensors(path, tensors):
    """name -> tensor, as F32, atomically (a temporary file renamed into place)."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        arr = tensors[name].detach().to(torch.float32).cpu().contiguous().numpy().astype("<f4")
        blob = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(8 + len(head)) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def write_json(path, value):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


# ---- input ------------------------------------------------------------------------------------------

class Split:
    """One split's examples, micro-batches, steps and epochs."""

    def __init__(self, input_dir, files, name):
        def path(key):
            if not isinstance(files, dict) or not isinstance(files.get(key), str):
                raise ContractError(f"job.json: {name}.{key} must be a file name")
            return os.path.join(input_dir, files[key])

        self.input_ids = np.fromfile(path("input_ids"), dtype="<i4")
        self.labels = np.fromfile(path("labels"), dtype="<i4")
        with open(path("layout")) as f:
            layout = json.load(f)
        try:
            self.example_offsets = np.asarray(layout["example_offsets"], dtype=np.int64)
            self.batch_examples = np.asarray(layout["batch_examples"], dtype=np.int64)
            self.step_batches = np.asarray(layout["step_batches"], dtype=np.int64)
            self.epoch_steps = np.asarray(layout["epoch_steps"], dtype=np.int64)
        except KeyError as e:
            raise ContractError(f"{name}.layout.json: no {e.args[0]}") from None
        if len(self.input_ids) != len(self.labels) or self.example_offsets[-1] != len(self.input_ids):
            raise ContractError(f"{name}: {len(self.input_ids)} input ids, {len(self.labels)} labels, "
                                f"layout ends at {int(self.example_offsets[-1])}")
        for a, b, what in ((self.batch_examples, self.example_offsets, "batch_examples"),
                           (self.step_batches, self.batch_examples, "step_batches"),
                           (self.epoch_steps, self.step_batches, "epoch_steps")):
            if a[0] != 0 or a[-1] != len(b) - 1 or np.any(np.diff(a) < 0):
                raise ContractError(f"{name}.layout.json: {what} does not cover its items in order")

    @property
    def steps(self):
        return len(self.step_batches) - 1

    def example(self, i):
        s, e = self.example_offsets[i], self.example_offsets[i + 1]
        return self.input_ids[s:e], self.labels[s:e]

    def batch(self, b):
        """The examples of micro-batch b: [(input_ids, labels)]."""
        return [self.example(i) for i in range(self.batch_examples[b], self.batch_examples[b + 1])]

    def step(self, k):
        """The micro-batches of step k (0-based)."""
        return [self.batch(b) for b in range(self.step_batches[k], self.step_batches[k + 1])]

    def epoch_of(self, k):
        """1-based epoch of step k (0-based)."""
        return int(np.searchsorted(self.epoch_steps, k, side="right"))

    def is_epoch_end(self, k):
        """Whether step k (0-based) is the last of its epoch."""
        return (k + 1) in set(self.epoch_steps[1:].tolist())


class Job:
    def __init__(self, input_dir):
        with open(os.path.join(input_dir, "job.json")) as f:
            j = json.load(f)
        if j.get("format") != INPUT_FORMAT:
            raise ContractError(f"job.json: format {j.get('format')!r}, this program reads {INPUT_FORMAT!r}")
        self.dir = input_dir
        self.raw = j
        self.base_model = j["base_model"]
        self.fingerprint = j["fingerprint"]
        self.seed = int(j["seed"])
        self.lora = j["lora"]
        self.init_adapter = os.path.join(input_dir, j["init_adapter"])
        self.epochs = int(j["epochs"])
        self.total_steps = int(j["total_steps"])
        self.peak_lr = float(j["peak_learning_rate"])
        self.warmup_steps = int(j["warmup_steps"])
        self.schedule = j["schedule"]
        if self.schedule not in ("linear", "cosine", "constant"):
            raise ContractError(f"job.json: schedule {self.schedule!r} is not linear, cosine or constant")
        self.weight_decay = float(j["weight_decay"])
        self.clip_norm = float(j["clip_norm"])
        self.adam = j["adam"]
        self.eval_every = int(j["eval_every_steps"])
        self.train = Split(input_dir, j["train"], "train")
        self.validation = Split(input_dir, j["validation"], "validation") if j["validation"] else None
        if len(self.train.epoch_steps) - 1 != self.epochs:
            raise ContractError(f"job.json: {self.epochs} epochs, but the train layout has {len(self.train.epoch_steps) - 1}")

    def adapter_config(self, inference_mode):
        with open(os.path.join(self.init_adapter, ADAPTER_CONFIG)) as f:
            cfg = json.load(f)
        cfg["inference_mode"] = inference_mode
        return cfg


# ---- batches and loss -------------------------------------------------------------------------------

def pad(examples, device="cpu"):
    """input_ids, labels, attention_mask (B, T) int64 from [(ids, labels)], padded at the end."""
    T = max(len(ids) for ids, _ in examples)
    ids = torch.zeros(len(examples), T, dtype=torch.int64)
    labels = torch.full((len(examples), T), IGNORE, dtype=torch.int64)
    mask = torch.zeros(len(examples), T, dtype=torch.int64)
    for i, (x, y) in enumerate(examples):
        ids[i, :len(x)] = torch.from_numpy(x.astype(np.int64))
        labels[i, :len(y)] = torch.from_numpy(y.astype(np.int64))
        mask[i, :len(x)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def targets_in(examples):
    """Loss-carrying labels of some examples (label 0 of an example is never one)."""
    return int(sum(int((y[1:] != IGNORE).sum()) for _, y in examples))


def loss_stats(logits, labels):
    """(sum of cross-entropy, correct argmax, count) over the labels (B, T) of logits (B, T, V):
    the logits at t predict labels[t + 1], as transformers' causal LM loss shifts them."""
    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    lsum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum")
    keep = target != IGNORE
    correct = ((logits.argmax(-1) == target) & keep).sum()
    return lsum, correct, keep.sum()


# ---- events -----------------------------------------------------------------------------------------

class Events:
    """Event lines for tunekit: fd 3, or TUNEKIT_TRL_EVENTS (a path: rank 0 of a multi-process run)."""

    def __init__(self, enabled=True):
        self.f = None
        if not enabled:
            return
        path = os.environ.get("TUNEKIT_TRL_EVENTS")
        self.f = open(path, "w", buffering=1) if path else os.fdopen(EVENTS_FD, "w", buffering=1)

    def emit(self, type_, **fields):
        if self.f is None:
            return
        for k, v in fields.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{type_} event: {k} is {v} (training diverged)")
        self.f.write(json.dumps({"type": type_, **fields}) + "\n")


# ---- parameters, optimizer, checkpoints -------------------------------------------------------------

def load_into(params, tensors, what):
    """Copies PEFT-named tensors into `params` (PEFT name -> parameter); every one must match."""
    missing, extra = sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))
    if missing or extra:
        raise ContractError(f"{what}: tensors do not match the LoRA config: missing {missing[:3]}, extra {extra[:3]}")
    with torch.no_grad():
        for name, p in params.items():
            if tuple(tensors[name].shape) != tuple(p.shape):
                raise ContractError(f"{what}: tensor {name} has shape {list(tensors[name].shape)}, expected {list(p.shape)}")
            p.copy_(tensors[name].to(p.device, p.dtype))


def make_optimizer(params, job):
    """torch AdamW as Hugging Face's adamw_torch builds it, over the LoRA parameters."""
    a = job.adam
    return torch.optim.AdamW(list(params.values()), lr=job.peak_lr, betas=(a["beta1"], a["beta2"]), eps=a["eps"],
                             weight_decay=job.weight_decay)


def export_moments(optimizer, params):
    out = {}
    for name, p in params.items():
        st = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            out[f"{name}.{key}"] = st[key] if key in st else torch.zeros_like(p)
    return out


def import_moments(optimizer, params, tensors, step):
    for name, p in params.items():
        st = optimizer.state[p]
        st["step"] = torch.tensor(float(step))
        for key in ("exp_avg", "exp_avg_sq"):
            if f"{name}.{key}" not in tensors:
                raise ContractError(f"{OPTIMIZER_FILE}: no {name}.{key}")
            st[key] = tensors[f"{name}.{key}"].to(p.device, p.dtype).clone()


def write_adapter(dir_, params, config):
    """PEFT's layout: the weights, then the config (a directory with a config holds a whole adapter)."""
    os.makedirs(dir_, exist_ok=True)
    write_safetensors(os.path.join(dir_, ADAPTER_WEIGHTS), {n: p for n, p in params.items()})
    write_json(os.path.join(dir_, ADAPTER_CONFIG), config)


def save_checkpoint(out_dir, epoch, step, job, elapsed, params, optimizer, backend):
    """OUT/checkpoints/epoch-N, written in a temporary directory renamed into place."""
    final = os.path.join(out_dir, "checkpoints", f"epoch-{epoch}")
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    write_adapter(tmp, params, job.adapter_config(False))
    write_safetensors(os.path.join(tmp, OPTIMIZER_FILE), export_moments(optimizer, params))
    write_json(os.path.join(tmp, STATE_FILE), {
        "epoch": epoch, "step": step, "totalSteps": job.total_steps, "fingerprint": job.fingerprint,
        "elapsedSeconds": elapsed, "executor": "trl", "backend": backend,
    })
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return final


def load_checkpoint(dir_, job, params, optimizer):
    """Restores parameters and moments from a checkpoint of this job; returns its state."""
    with open(os.path.join(dir_, STATE_FILE)) as f:
        state = json.load(f)
    if state.get("fingerprint") != job.fingerprint or state.get("executor") != "trl":
        raise ContractError(f"--resume {dir_}: the checkpoint belongs to another run (fingerprint or executor differs)")
    load_into(params, read_safetensors(os.path.join(dir_, ADAPTER_WEIGHTS)), dir_)
    import_moments(optimizer, params, read_safetensors(os.path.join(dir_, OPTIMIZER_FILE)), state["step"])
    return state


class Clock:
    """Elapsed seconds of the run, carried over a resume."""

    def __init__(self, before=0.0):
        self.before, self.t0 = before, time.monotonic()

    def __call__(self):
        return self.before + time.monotonic() - self.t0
