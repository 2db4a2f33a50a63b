"""Independent PyTorch implementation of the models tunekit trains, for checking its trainer.

Llama (LlamaForCausalLM), Qwen3 (Qwen3ForCausalLM) and Gemma 3 text (Gemma3ForCausalLM), written from
the Hugging Face modelling code's semantics, plain PyTorch (no transformers, no peft), with:
  - LoRA on q/k/v/o/gate/up/down: y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ, A (r, in), B (out, r); parameter
    names are the PEFT ones once prefixed with "base_model.model." (see peft_name);
  - packed rows: tokens, targets (-1 = no loss), positions (restart at 0 per example) and segments
    (example number); attention is causal and never crosses segments;
  - loss = mean cross-entropy over every target != -1 of the whole batch.
Module and parameter names are the Hugging Face ones, so named_parameters() yields checkpoint names.
Constants HF computes in float32 (RoPE inverse frequencies and angles, Gemma's embedding scale) stay
float32-derived when the model runs in float64, so float64 evaluates the same function more exactly.
Dimension letters: B rows, T tokens per row, C hidden, F intermediate, NH/NKV heads, HD head dim, V vocab.
"""
import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHITECTURES = {"LlamaForCausalLM": "llama", "Qwen3ForCausalLM": "qwen3", "Gemma3ForCausalLM": "gemma3"}
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PEFT_PREFIX = "base_model.model."
# F.scaled_dot_product_attention with a `scale` argument exists from PyTorch 2.1; 1.13 has neither.
HAS_SDPA = tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 1)


# ---- safetensors (numpy, no extra package) ------------------------------------------------------------

def read_safetensors(path):
    """name -> float32 tensor, from F32, F16, BF16 or F64 data."""
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
        dtype = info["dtype"]
        if dtype == "F32":
            arr = np.frombuffer(raw, "<f4")
        elif dtype == "F64":
            arr = np.frombuffer(raw, "<f8").astype(np.float32)
        elif dtype == "F16":
            arr = np.frombuffer(raw, "<f2").astype(np.float32)
        elif dtype == "BF16":
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    """Writes name -> tensor as F32 (a 0-d tensor becomes shape [])."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = tensors[name].detach().to(torch.float32).cpu().contiguous().numpy().astype("<f4")
        blob = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---- config --------------------------------------------------------------------------------------------

@dataclass
class Config:
    family: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_local_theta: float  # Gemma 3 sliding layers
    rope_scaling: dict  # or None
    tie_word_embeddings: bool
    layer_types: list  # "full_attention" | "sliding_attention" per layer
    sliding_window: int  # or None
    attn_scale: float

    @staticmethod
    def from_json(cfg):
        arch = cfg["architectures"][0]
        if arch not in ARCHITECTURES:
            raise ValueError(f"architecture {arch} not supported (supported: {', '.join(ARCHITECTURES)})")
        family = ARCHITECTURES[arch]

        def need(key):  # fields whose HF default differs between families or versions must be explicit
            if cfg.get(key) is None:
                raise ValueError(f"config.json: field {key!r} is required by the reference for {arch}")
            return cfg[key]

        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if cfg.get(key) is not None:
                raise ValueError(f"config.json: {key} is not implemented")
        if cfg.get("attention_bias") or cfg.get("mlp_bias"):
            raise ValueError("config.json: bias terms are not implemented")
        heads = need("num_attention_heads")
        layers = need("num_hidden_layers")
        head_dim = cfg.get("head_dim") or (need("hidden_size") // heads if family == "llama" else need("head_dim"))
        scaling = cfg.get("rope_scaling")
        if scaling is not None and scaling.get("rope_type", scaling.get("type")) == "default":
            scaling = None
        layer_types = ["full_attention"] * layers
        window, local_theta, attn_scale = None, need("rope_theta"), head_dim ** -0.5
        if family == "gemma3":
            window = need("sliding_window")
            local_theta = need("rope_local_base_freq")
            attn_scale = need("query_pre_attn_scalar") ** -0.5
            pattern = cfg.get("sliding_window_pattern", 6)
            layer_types = cfg.get("layer_types") or [
                "full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)]
        return Config(
            family=family, vocab_size=need("vocab_size"), hidden_size=need("hidden_size"),
            intermediate_size=need("intermediate_size"), num_layers=layers, num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads") or heads, head_dim=head_dim,
            rms_norm_eps=need("rms_norm_eps"), rope_theta=need("rope_theta"), rope_local_theta=local_theta,
            rope_scaling=scaling, tie_word_embeddings=bool(need("tie_word_embeddings")),
            layer_types=layer_types, sliding_window=window, attn_scale=attn_scale)


def rope_inv_freq(head_dim, theta, scaling):
    """(HD/2) float32 inverse frequencies as HF computes them, with linear or llama3 scaling."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if scaling is None:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    factor = scaling["factor"]
    if kind == "linear":
        return inv / factor
    if kind != "llama3":
        raise ValueError(f"rope_scaling type {kind} is not implemented")
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_len = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old_len / low, inv / factor, inv)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
    return torch.where(medium, smoothed, scaled)


# ---- layers --------------------------------------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim, eps, offset):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))
        self.eps, self.offset = eps, offset  # Gemma scales by (1 + w)

    def forward(self, x):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * (self.offset + self.weight)


class Linear(nn.Module):
    """A bias-free linear layer (HF `weight`, (out, in)) with an optional LoRA pair lora_A, lora_B."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.lora_A = self.lora_B = None
        self.scale = 0.0

    def add_lora(self, rank, alpha):
        out_features, in_features = self.weight.shape
        self.lora_A = nn.Linear(in_features, rank, bias=False).to(self.weight.dtype)
        self.lora_B = nn.Linear(rank, out_features, bias=False).to(self.weight.dtype)
        nn.init.zeros_(self.lora_B.weight)
        self.scale = alpha / rank

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora_A is not None:
            y = y + self.scale * self.lora_B(self.lora_A(x))
        return y


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg, sliding):
        super().__init__()
        C, NH, NKV, HD = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.NH, self.NKV, self.HD, self.scale, self.sliding = NH, NKV, HD, cfg.attn_scale, sliding
        self.q_proj, self.k_proj = Linear(C, NH * HD), Linear(C, NKV * HD)
        self.v_proj, self.o_proj = Linear(C, NKV * HD), Linear(NH * HD, C)
        if cfg.family != "llama":
            offset = 1.0 if cfg.family == "gemma3" else 0.0
            self.q_norm = RMSNorm(HD, cfg.rms_norm_eps, offset)
            self.k_norm = RMSNorm(HD, cfg.rms_norm_eps, offset)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x, cos, sin, mask):
        # x (B, T, C); cos, sin (B, 1, T, HD); mask (B, 1, T, T) True where a query may see a key
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.NH, self.HD)
        k = self.k_proj(x).view(B, T, self.NKV, self.HD)
        v = self.v_proj(x).view(B, T, self.NKV, self.HD).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)  # (B, heads, T, HD)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.NH // self.NKV, dim=1)  # query head h reads KV head h // G
        v = v.repeat_interleave(self.NH // self.NKV, dim=1)
        if HAS_SDPA:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        else:
            scores = (q @ k.transpose(-2, -1)) * self.scale
            out = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.NH * self.HD))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, Fi = cfg.hidden_size, cfg.intermediate_size
        self.gate_proj, self.up_proj, self.down_proj = Linear(C, Fi), Linear(C, Fi), Linear(Fi, C)
        self.gelu = cfg.family == "gemma3"  # GeGLU with tanh GELU; SwiGLU otherwise

    def forward(self, x):
        g = self.gate_proj(x)
        g = F.gelu(g, approximate="tanh") if self.gelu else F.silu(g)
        return self.down_proj(g * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, index):
        super().__init__()
        C, eps = cfg.hidden_size, cfg.rms_norm_eps
        offset = 1.0 if cfg.family == "gemma3" else 0.0
        self.sliding = cfg.layer_types[index] == "sliding_attention"
        self.self_attn = Attention(cfg, self.sliding)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(C, eps, offset)
        self.post_attention_layernorm = RMSNorm(C, eps, offset)
        self.sandwich = cfg.family == "gemma3"
        if self.sandwich:
            self.pre_feedforward_layernorm = RMSNorm(C, eps, offset)
            self.post_feedforward_layernorm = RMSNorm(C, eps, offset)

    def forward(self, x, rope, masks):
        cos, sin = rope["local" if self.sliding else "global"]
        mask = masks["sliding" if self.sliding else "full"]
        h = self.self_attn(self.input_layernorm(x), cos, sin, mask)
        if self.sandwich:
            x = x + self.post_attention_layernorm(h)
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg, i) for i in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, 1.0 if cfg.family == "gemma3" else 0.0)


def attention_masks(segments, window):
    """(B, 1, T, T) boolean masks, True where query i may see key j: causal, same segment, and for
    sliding layers i - j < window."""
    T = segments.shape[1]
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    full = (j <= i) & (segments[:, :, None] == segments[:, None, :])
    sliding = full & (i - j < window) if window is not None else full
    return {"full": full[:, None], "sliding": sliding[:, None]}


class CausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = DecoderModel(cfg)
        self.lm_head = None if cfg.tie_word_embeddings else Linear(cfg.hidden_size, cfg.vocab_size)
        self.inv_freq = {
            "global": rope_inv_freq(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling),
            # Gemma 3's sliding layers: local base, never scaled; the other families have one kind.
            "local": rope_inv_freq(cfg.head_dim, cfg.rope_local_theta, None)
            if cfg.family == "gemma3" else rope_inv_freq(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling),
        }
        # Gemma's sqrt(hidden), rounded to float32 as HF stores it.
        self.embed_scale = float(torch.tensor(cfg.hidden_size ** 0.5, dtype=torch.float32)) \
            if cfg.family == "gemma3" else 1.0

    def rope(self, positions, dtype):
        out = {}
        for kind, inv in self.inv_freq.items():
            angles = positions.float()[:, :, None] * inv  # (B, T, HD/2), float32 as in HF
            emb = torch.cat((angles, angles), dim=-1).to(dtype)[:, None]
            out[kind] = (emb.cos(), emb.sin())
        return out

    def forward(self, tokens, positions=None, segments=None):
        """tokens, positions, segments (B, T) int64 -> logits (B, T, V). Without positions/segments
        each row is one sequence starting at position 0."""
        B, T = tokens.shape
        if positions is None:
            positions = torch.arange(T).expand(B, T)
        if segments is None:
            segments = torch.zeros(B, T, dtype=torch.int64)
        dtype = self.model.embed_tokens.weight.dtype
        x = self.model.embed_tokens(tokens) * self.embed_scale
        rope = self.rope(positions, dtype)
        masks = attention_masks(segments, self.cfg.sliding_window)
        for layer in self.model.layers:
            x = layer(x, rope, masks)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x, head)

    # ---- LoRA ------------------------------------------------------------------------------------------

    def add_lora(self, rank, alpha, targets=LORA_TARGETS):
        """Freezes the base weights and adds fresh LoRA pairs (B = 0) to the named targets."""
        for t in targets:
            if t not in LORA_TARGETS:
                raise ValueError(f"unknown LoRA target {t!r} (known: {', '.join(LORA_TARGETS)})")
        for p in self.parameters():
            p.requires_grad_(False)
        for layer in self.model.layers:
            for t in targets:
                parent = layer.self_attn if t in ("q_proj", "k_proj", "v_proj", "o_proj") else layer.mlp
                getattr(parent, t).add_lora(rank, alpha)

    def lora_parameters(self):
        """PEFT name -> parameter, for every LoRA tensor."""
        return {PEFT_PREFIX + n: p for n, p in self.named_parameters() if ".lora_A." in n or ".lora_B." in n}

    def load_lora(self, tensors):
        """Copies PEFT-named tensors into the LoRA parameters; every one must be present."""
        params = self.lora_parameters()
        missing = sorted(set(params) - set(tensors))
        extra = sorted(set(tensors) - set(params))
        if missing or extra:
            raise ValueError(f"adapter tensors do not match the LoRA config: missing {missing[:3]}, extra {extra[:3]}")
        with torch.no_grad():
            for name, p in params.items():
                if tuple(tensors[name].shape) != tuple(p.shape):
                    raise ValueError(f"adapter tensor {name} has shape {list(tensors[name].shape)}, expected {list(p.shape)}")
                p.copy_(tensors[name])


def load_model(model_dir, dtype=torch.float32):
    """A CausalLM from an HF directory (config.json + model.safetensors), in `dtype`."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = Config.from_json(json.load(f))
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    tensors = {n: t for n, t in tensors.items() if not n.endswith("rotary_emb.inv_freq")}
    if cfg.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    model = CausalLM(cfg)
    model.load_state_dict(tensors, strict=True)
    return model.to(dtype)


def packed_loss(logits, targets):
    """Mean cross-entropy over every position whose target is not -1, across all rows."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
