"""Independent reference for LoRA training: loss and LoRA gradients from transformers + PEFT.

Usage: python3 peft_grads.py CASES_DIR OUT_DIR
CASES_DIR/cases.json: [{"name", "model": subdir, "adapter": subdir, "examples": [{"tokens": [...], "targets": [...]}]}]
Each example is run as its own sequence (no packing); targets[t] is the id predicted at position t or -1.
The loss is the mean cross-entropy over all targets of all examples (what tunekit computes for the same
examples packed into one batch). Writes OUT_DIR/<name>.safetensors with the gradient of every LoRA tensor
under PEFT's names, and OUT_DIR/<name>.json with the loss. float32, eager attention.
"""
import json
import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main() -> None:
    cases_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    for case in json.load(open(os.path.join(cases_dir, "cases.json"))):
        base = AutoModelForCausalLM.from_pretrained(os.path.join(cases_dir, case["model"]), dtype=torch.float32,
                                                    attn_implementation="eager").to(device)
        model = PeftModel.from_pretrained(base, os.path.join(cases_dir, case["adapter"]), is_trainable=True).to(device)
        model.train()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        total = sum(sum(1 for t in ex["targets"] if t >= 0) for ex in case["examples"])
        loss_sum = 0.0
        for ex in case["examples"]:
            ids = torch.tensor([ex["tokens"]], device=device)
            targets = torch.tensor(ex["targets"], device=device)
            logits = model(input_ids=ids).logits[0].float()
            mask = targets >= 0
            loss = torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum")
            (loss / total).backward()
            loss_sum += loss.item()
        grads = {}
        for name, p in model.named_parameters():
            if p.requires_grad and p.grad is not None:
                # PEFT's in-memory names carry the adapter name ("lora_A.default.weight"); saved names do not.
                grads[name.replace(".default", "")] = p.grad.detach().float().cpu().contiguous()
        save_file(grads, os.path.join(out_dir, case["name"] + ".safetensors"))
        json.dump({"loss": loss_sum / total, "targets": total, "tensors": len(grads),
                   "transformers": __import__("transformers").__version__, "peft": __import__("peft").__version__,
                   "torch": torch.__version__, "device": device},
                  open(os.path.join(out_dir, case["name"] + ".json"), "w"))
        print(case["name"], "loss", loss_sum / total, "tensors", len(grads), flush=True)


if __name__ == "__main__":
    main()
