"""Utility beside bias: pseudo-perplexity of a masked LM on a small neutral English sample.

Pseudo-log-likelihood scoring (Salazar, Liang, Nguyen and Kirchhoff 2020, "Masked Language Model Scoring",
ACL): each token of a sentence is masked in turn and scored given all the others,
``PLL(s) = sum_t log P(w_t | s without w_t)``; over a corpus of N tokens,
``PPPL = exp(-(1/N) * sum_s PLL(s))``. Lower is better; a "debiased" descendant that has lost its language
modelling shows as a large PPPL ratio against its base.

Every masked copy of every sentence is one sequence (identical copies are run once); they go through the
engine's one forward loop (``forward.run_forward``: length-sorted padded batches, out-of-memory halving) and
the log-probability read-out (``readouts.LogProbReadOut``: fp32 log-softmax at the masked position only).
Special tokens ([CLS], [SEP]) are never masked; a sentence longer than the model's limit is cut there. The
sample ships inside the package (``albert_audit/data/neutral_sample.txt``): plain sentences without any
group term of the shipped probe sets.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

from albert_audit.engine.forward import resolve_batch_size, run_forward
from albert_audit.engine.loading import LoadedModel
from albert_audit.engine.readouts import LogProbReadOut, PositionRequests
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
                      batch_size: int | str = "auto", progress: bool = False) -> dict[str, Any]:
    """Pseudo-perplexity of a loaded masked LM on ``sentences`` (default: the shipped neutral sample).

    Returns ``{"pppl", "mean_logprob", "n_sentences", "n_tokens", "sample", "method"}``; ``mean_logprob`` is
    the mean natural-log probability per token (``pppl = exp(-mean_logprob)``).
    """
    texts = neutral_sample() if sentences is None else list(sentences)
    if not texts:
        raise AuditError("pseudo-perplexity: no sentences")
    batch = resolve_batch_size(batch_size, loaded.info.device)
    tokenizer = loaded.tokenizer
    mask_id = int(tokenizer.mask_token_id)
    encoded = tokenizer(texts, add_special_tokens=True, return_special_tokens_mask=True,
                        truncation=True, max_length=loaded.info.max_length)
    requests = PositionRequests()  # one masked copy per token; identical copies are run once
    for ids, special in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True):
        for position, (token, is_special) in enumerate(zip(ids, special, strict=True)):
            if not is_special:
                masked = list(ids)
                masked[position] = mask_id
                requests.request_piece(masked, position, int(token))
    if not requests.piece_requests:
        raise AuditError("pseudo-perplexity: the sentences have no tokens to score")
    reads = LogProbReadOut(requests)
    run_forward(loaded, requests.sequences, reads, batch_size=batch, progress=progress, desc="pseudo-perplexity")
    n_tokens = len(requests.piece_requests)
    mean = float(reads.piece_logprob.sum()) / n_tokens
    return {"pppl": math.exp(-mean), "mean_logprob": mean, "n_sentences": len(texts), "n_tokens": n_tokens,
            "sample": NEUTRAL_SAMPLE if sentences is None else "custom", "method": PPPL_METHOD}
