"""Solutions to notebook 05's exercises."""

import torch

from course_lib.models.ngram import NGramLM


def stream_batch(ids: torch.Tensor, batch_size: int, seq_len: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step`` of the stream layout: x (B, T) and y = x shifted by one, each row a contiguous stream."""
    length = len(ids) // batch_size
    streams = ids[: batch_size * length].view(batch_size, length)          # (B, L): row b is one slice
    start = (step % ((length - 1) // seq_len)) * seq_len                   # whole windows only, then wrap
    chunk = streams[:, start: start + seq_len + 1]                         # (B, T + 1)
    return chunk[:, :-1], chunk[:, 1:]


def add_k_bigram_nll(train_ids: torch.Tensor, val_ids: torch.Tensor, V: int, k: float) -> float:
    """Mean nats/char of val_ids[1:] under P(c | ctx) = (count(ctx, c) + k) / (count(ctx) + k V)."""
    train_ids, val_ids = train_ids.long(), val_ids.long()                   # compact uint8 ids would overflow
    counts = torch.bincount(train_ids[:-1] * V + train_ids[1:], minlength=V * V).view(V, V).double()  # (V, V)
    probs = (counts + k) / (counts.sum(1, keepdim=True) + k * V)                                     # rows sum to 1
    return float(-probs[val_ids[:-1], val_ids[1:]].log().mean())


def sample_with_temperature(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    """Draw index i with probability softmax(logits / τ)_i (τ the temperature)."""
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def choose_k(train_ids: torch.Tensor, heldout_ids: torch.Tensor, V: int, ks) -> float:
    """The k of ``ks`` whose add-k bigram (counted on ``train_ids``) has the lowest held-out nats/char."""
    losses = [NGramLM(2, V, k).fit(train_ids.long()).nll(heldout_ids.long()) for k in ks]   # one per k
    return ks[min(range(len(ks)), key=losses.__getitem__)]
