"""The trl backend: Hugging Face TRL's SFTTrainer over a PEFT LoRA model, on tunekit's planned steps.

One dataset item is one optimizer step (its micro-batches' examples, already tokenized: input_ids and
labels, -100 where no loss), read in order (no sampler shuffling: the order is tunekit's), padded per
step. compute_loss returns sum(cross-entropy) / (the step's loss-carrying labels), so the gradient is
the one tunekit's trainer takes. The learning rate follows transformers' get_scheduler with tunekit's
warmup and total steps; clipping (torch's clip_grad_norm_) runs in on_pre_optimizer_step; optimizer
is torch AdamW. With several processes (accelerate launch), each rank takes every world-th example of
each step and its loss is scaled by the world size, so DDP's gradient average is the same step.
Checkpoints and the adapter are written in tunekit's layout (contract.py), not Trainer's.
Not run in tunekit's CI (no GPU, no TRL there): tools/trl-parity/run.sh runs it.
"""
import os
import time
import warnings

import torch
import torch.distributed as dist

import contract

NAME = "trl"


def peft_name(n):
    """A PEFT model's parameter name as PEFT saves it (without the adapter name)."""
    return n.replace(".default.", ".")


def train(job, out, resume, events, Progress, world):
    import transformers
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader, Dataset, SequentialSampler
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    if not hasattr(TrainerCallback, "on_pre_optimizer_step"):
        raise contract.ContractError(f"transformers {transformers.__version__} has no on_pre_optimizer_step callback (4.45 or later needed)")
    rank = int(os.environ.get("RANK", "0"))
    transformers.set_seed(job.seed)
    model = AutoModelForCausalLM.from_pretrained(job.base_model, torch_dtype=torch.float32, attn_implementation="sdpa")
    lora = job.lora
    model = get_peft_model(model, LoraConfig(r=lora["rank"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                             target_modules=lora["targets"], bias="none", task_type="CAUSAL_LM"))
    # On its device before the optimizer exists (its moments, restored on resume, live beside the parameters).
    model.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu"))
    params = {peft_name(n): p for n, p in model.named_parameters() if p.requires_grad}
    contract.load_into(params, contract.read_safetensors(os.path.join(job.init_adapter, contract.ADAPTER_WEIGHTS)), job.init_adapter)
    optimizer = contract.make_optimizer(params, job)
    start, elapsed = 0, 0.0
    if resume:
        state = contract.load_checkpoint(resume, job, params, optimizer)
        start, elapsed = state["step"], state["elapsedSeconds"]
    scheduler = transformers.get_scheduler({"constant": "constant_with_warmup"}.get(job.schedule, job.schedule), optimizer,
                                           num_warmup_steps=job.warmup_steps, num_training_steps=job.total_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()": moving to the resumed step
        for _ in range(start):
            scheduler.step()

    class Steps(Dataset):
        def __len__(self):
            return job.train.steps - start

        def __getitem__(self, i):
            micro = job.train.step(start + i)
            examples = [e for mb in micro for e in mb]
            return {"examples": examples[rank::world], "targets": sum(contract.targets_in(mb) for mb in micro)}

    def collate(items):
        (item,) = items
        ids, labels, mask = contract.pad(item["examples"])
        return {"input_ids": ids, "labels": labels, "attention_mask": mask,
                "num_targets": torch.tensor(item["targets"]), "num_tokens": torch.tensor(int(mask.sum()))}

    stats = {}

    def all_reduce(values):
        t = torch.tensor(values, dtype=torch.float64, device=model.device)
        if world > 1:
            dist.all_reduce(t)
        return t.tolist()

    class Trainer(SFTTrainer):
        def get_train_dataloader(self):
            # Not prepared by accelerate: every rank reads every step and takes its share in Steps.
            return DataLoader(Steps(), batch_size=1, sampler=SequentialSampler(range(len(Steps()))), collate_fn=collate)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None, **kwargs):
            n = float(inputs.pop("num_targets"))
            tokens = float(inputs.pop("num_tokens"))
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            lsum, correct, count = contract.loss_stats(out.logits, inputs["labels"])
            stats.update(lsum=float(lsum), correct=float(correct), count=float(count), tokens=tokens,
                         lr=optimizer.param_groups[0]["lr"], n=n)
            loss = lsum / n * world
            return (loss, out) if return_outputs else loss

    def logits(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits

    progress = Progress(job, out, events, params, optimizer, NAME, logits, model.train, start, elapsed)
    clock = {"t": time.monotonic()}

    class Report(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            clock["t"] = time.monotonic()

        def on_pre_optimizer_step(self, args, state, control, **kw):
            grads = list(params.values())
            if job.clip_norm > 0:
                stats["norm"] = float(torch.nn.utils.clip_grad_norm_(grads, job.clip_norm))
            else:
                stats["norm"] = float(torch.norm(torch.stack([p.grad.norm() for p in grads])))

        def on_step_end(self, args, state, control, **kw):
            lsum, correct, count, tokens = all_reduce([stats["lsum"], stats["correct"], stats["count"], stats["tokens"]])
            progress.after_step(lsum, correct, stats["n"], tokens, stats["lr"], stats["norm"], time.monotonic() - clock["t"])

    config = SFTConfig(
        output_dir=os.path.join(out, "trl-trainer"), max_steps=job.train.steps - start, num_train_epochs=1,
        per_device_train_batch_size=1, gradient_accumulation_steps=1, max_grad_norm=0.0, seed=job.seed,
        logging_strategy="no", save_strategy="no", report_to=[], remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True}, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=config, train_dataset=Steps(), data_collator=collate,
                      optimizers=(optimizer, scheduler), callbacks=[Report()])
    events.emit("start", backend=NAME, step=start)
    if start < job.train.steps:
        trainer.train()
    progress.finish()
