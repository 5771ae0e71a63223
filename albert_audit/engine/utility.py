"""Utility beside bias: pseudo-perplexity of a masked LM on a small neutral English sample.

Pseudo-log-likelihood scoring (Salazar, Liang, Nguyen and Kirchhoff 2020, "Masked Language Model Scoring",
ACL): each token of a sentence is masked in turn and scored given all the others,
``PLL(s) = sum_t log P(w_t | s without w_t)``; over a corpus of N tokens,
``PPPL = exp(-(1/N) * sum_s PLL(s))``. Lower is better; a "debiased" descendant that has lost its language
modelling shows as a large PPPL ratio against its base.

Every masked copy of every sentence is one sequence; they are sorted by length, padded per batch and run
under ``torch.inference_mode``; log-softmax is fp32 at the masked position only. Special tokens ([CLS],
[SEP]) are never masked. The sample ships inside the package (``albert_audit/data/neutral_sample.txt``):
plain sentences without any group term of the shipped probe sets.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

import torch

from albert_audit.engine.loading import LoadedModel
from albert_audit.engine.scoring import _is_oom
from albert_audit.errors import AuditError

NEUTRAL_SAMPLE = "neutral_sample.txt"
PPPL_METHOD = ("pseudo-perplexity (Salazar et al. 2020): every non-special token masked in turn; "
               "PPPL = exp(-mean log P(token | rest)) over all tokens of the sample")


def neutral_sample_text() -> str:
    """The text of the shipped neutral sample (one sentence per line)."""
    source = resources.files("albert_audit").joinpath("data").joinpath(NEUTRAL_SAMPLE)
    try:
        return source.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"the neutral text sample {NEUTRAL_SAMPLE} is missing from the package") from exc


def neutral_sample(limit: int | None = None) -> list[str]:
    """The sentences of the shipped neutral sample (blank lines and ``#`` comments skipped), at most ``limit``."""
    lines = [line.strip() for line in neutral_sample_text().splitlines()]
    sentences = [line for line in lines if line and not line.startswith("#")]
    return sentences if limit is None else sentences[:limit]


def pseudo_perplexity(loaded: LoadedModel, sentences: list[str] | None = None, *,
                      batch_size: int | str = "auto") -> dict[str, Any]:
    """Pseudo-perplexity of a loaded masked LM on ``sentences`` (default: the shipped neutral sample).

    Returns ``{"pppl", "mean_logprob", "n_sentences", "n_tokens", "sample", "method"}``; ``mean_logprob`` is
    the mean natural-log probability per token (``pppl = exp(-mean_logprob)``).
    """
    texts = neutral_sample() if sentences is None else list(sentences)
    if not texts:
        raise AuditError("pseudo-perplexity: no sentences")
    tokenizer, model = loaded.tokenizer, loaded.model
    mask_id = int(tokenizer.mask_token_id)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = tokenizer(texts, add_special_tokens=True, return_special_tokens_mask=True,
                        truncation=True, max_length=loaded.info.max_length)
    jobs: list[tuple[tuple[int, ...], int, int]] = []  # (masked sequence, position, original token)
    for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True):
        for position, (token, is_special) in enumerate(zip(ids, special, strict=True)):
            if is_special:
                continue
            masked = list(ids)
            masked[position] = mask_id
            jobs.append((tuple(masked), position, int(token)))
    if not jobs:
        raise AuditError("pseudo-perplexity: the sentences have no tokens to score")
    if batch_size == "auto":
        batch = 256 if loaded.info.device.startswith("cuda") else 64
    elif isinstance(batch_size, int) and batch_size >= 1:
        batch = batch_size
    else:
        raise AuditError(f"batch size {batch_size!r}: expected a positive integer or 'auto'")
    order = sorted(range(len(jobs)), key=lambda j: (len(jobs[j][0]), j))
    device = loaded.info.device
    total = 0.0
    cursor = 0
    with torch.inference_mode():
        while cursor < len(order):
            chunk = [jobs[j] for j in order[cursor:cursor + batch]]
            width = max(len(seq) for seq, _, _ in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (seq, _, _) in enumerate(chunk):
                ids[row, :len(seq)] = torch.tensor(seq)
                attention[row, :len(seq)] = 1
            try:
                logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
            except Exception as exc:  # OOM back-off, as in the scoring engine
                if not _is_oom(exc) or batch == 1:
                    raise
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                batch = max(1, batch // 2)
                continue
            rows = torch.arange(len(chunk), device=logits.device)
            positions = torch.tensor([p for _, p, _ in chunk], device=logits.device)
            tokens = torch.tensor([t for _, _, t in chunk], device=logits.device)
            logprobs = torch.log_softmax(logits[rows, positions].float(), dim=-1)
            total += float(logprobs[rows, tokens].double().sum())
            cursor += len(chunk)
    mean = total / len(jobs)
    return {"pppl": math.exp(-mean), "mean_logprob": mean, "n_sentences": len(texts), "n_tokens": len(jobs),
            "sample": NEUTRAL_SAMPLE if sentences is None else "custom", "method": PPPL_METHOD}
