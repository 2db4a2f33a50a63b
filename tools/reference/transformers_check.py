"""Independent reference: run tunekit's tiny checkpoints through Hugging Face transformers.

Usage: python3 transformers_check.py CASES_DIR OUT.json
CASES_DIR holds one sub-directory per model (HF layout, written by `tunekit model init`) and cases.json:
  [{"model": "llama-tiny", "prompt_ids": [...], "greedy_tokens": 32, "texts": [...], "chats": [[{role, content}...]]}]
For each case this writes the final-position logits, all-position logits' argmax, a greedy continuation,
the tokenization of each text and the chat template rendered by transformers (jinja2).
Runs on CPU or CUDA, float32, eager attention (the reference math, no fused kernels).
"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    cases_dir, out_path = sys.argv[1], sys.argv[2]
    cases = json.load(open(os.path.join(cases_dir, "cases.json")))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = []
    for case in cases:
        path = os.path.join(cases_dir, case["model"])
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").to(device)
        model.eval()
        tok = AutoTokenizer.from_pretrained(path)
        ids = torch.tensor([case["prompt_ids"]], device=device)
        with torch.no_grad():
            logits = model(ids).logits[0].float().cpu()
            gen = model.generate(ids, max_new_tokens=case["greedy_tokens"], do_sample=False, eos_token_id=None,
                                 pad_token_id=0, min_new_tokens=case["greedy_tokens"])
        results.append({
            "model": case["model"],
            "transformers_version": __import__("transformers").__version__,
            "torch_version": torch.__version__,
            "device": device,
            "last_logits": logits[-1].tolist(),
            "argmax_all": logits.argmax(-1).tolist(),
            "greedy": gen[0, ids.shape[1]:].tolist(),
            "encodings": [tok.encode(t) for t in case["texts"]],
            "chat_renders": [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in case["chats"]],
        })
        print(case["model"], "done", flush=True)
    json.dump(results, open(out_path, "w"))


if __name__ == "__main__":
    main()
