"""Tokens per second of the course's Transformer LM against a plain GPT of the same shape.

    python benchmarks/reference_gpt.py --profile full --steps 100      # on a GPU
    python benchmarks/reference_gpt.py --profile smoke --steps 5       # anywhere (a check that it runs)

The reference is the smallest GPT a practitioner would write for speed (the layout of nanoGPT:
one fused QKV projection, ``F.scaled_dot_product_attention(is_causal=True)``, pre-LayerNorm
blocks, a 4x GELU MLP, tied input/output embeddings). Both models get the chapter's shape
(``transformer_lm`` config of the profile), the same random character batches, the same
AdamW and the same precision, in the same timed loop: only the model differs. The course's
model is timed as the course trains it (learned positions, its attention path, dropout).
Prints and writes one JSON object (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:            # x (B, T, D)
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)            # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class PlainGPT(nn.Module):
    """ids (B, T) -> logits (B, T, V): token + position embeddings, blocks, final LayerNorm, tied head."""

    def __init__(self, vocab: int, max_len: int, d: int, heads: int, layers: int, dropout: float):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(_Block(d, heads, dropout) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight
        for module in self.modules():                                   # GPT-2's N(0, 0.02) start
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def time_model(model: nn.Module, batches: list[torch.Tensor], steps: int, warmup: int, device: torch.device,
               precision: str) -> dict[str, float]:
    """Seconds per step of forward + cross-entropy + backward + clip + AdamW over ``steps`` timed steps."""
    from course_lib import runtime
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    losses = []
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        ids = batches[i % len(batches)]
        with runtime.autocast(device, precision):
            logits = model(ids[:, :-1])                                        # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.detach())
    sync()
    seconds = (time.perf_counter() - t0) / steps
    return {"s_per_step": seconds, "last_loss": float(losses[-1])}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="full")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None)
    return ap


def main() -> None:
    args = build_parser().parse_args()

    from course_lib import flops, runtime
    from course_lib.chapters.registry import get_chapter
    from course_lib.models.transformer import TransformerConfig, TransformerLM

    cfg = get_chapter("transformer_lm").config(args.profile)
    device = runtime.pick_device(args.device)
    runtime.configure_device(device)
    precision = runtime.pick_precision(device)
    m, B, T, V = cfg.model, cfg.data.batch_size, cfg.data.seq_len, 96
    torch.manual_seed(0)
    batches = [torch.randint(0, V, (B, T + 1), device=device) for _ in range(8)]
    course = TransformerLM(TransformerConfig(vocab_size=V, max_len=T, d_model=m.d_model, n_heads=m.n_heads,
                                             n_layers=m.n_layers, dropout=m.dropout, causal=True,
                                             tie_embeddings=True))
    plain = PlainGPT(V, T, m.d_model, m.n_heads, m.n_layers, m.dropout)
    rows = {}
    for name, model in (("course_lib TransformerLM", course), ("plain GPT (nanoGPT layout)", plain)):
        timing = time_model(model, batches, args.steps, args.warmup, device, precision)
        params = sum(p.numel() for p in model.parameters())
        rows[name] = {"params": params, "tokens_per_s": round(B * T / timing["s_per_step"]),
                      "ms_per_step": round(1e3 * timing["s_per_step"], 2), "last_loss": round(timing["last_loss"], 3)}
    per_token = flops.model_flops_per_token(course, T)                  # the same for both: same shapes
    peak, peak_source = flops.peak_flops(device)
    for row in rows.values():
        row["mfu"] = round(flops.mfu(per_token, row["tokens_per_s"], peak), 4) if peak else None
    result = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "precision": precision, "profile": args.profile, "batch": B, "seq_len": T, "vocab": V,
              "d_model": m.d_model, "n_heads": m.n_heads, "n_layers": m.n_layers, "steps_timed": args.steps,
              "torch": torch.__version__, "models": rows, "model_flops_per_token": per_token,
              "peak_flops": peak, "peak_source": peak_source,
              "course_over_plain": round(rows["course_lib TransformerLM"]["tokens_per_s"]
                                         / rows["plain GPT (nanoGPT layout)"]["tokens_per_s"], 3)}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
