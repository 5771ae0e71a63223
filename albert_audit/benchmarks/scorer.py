"""What the benchmarks need from a model: a narrow interface that the engine implements.

:class:`albert_audit.engine.benchmark_scoring.BenchmarkScorer` is the implementation; tests may pass any
object with these members. Keeping the benchmarks on this protocol keeps them free of torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class EncodedTexts(Protocol):
    """Token ids (special tokens included), character offsets and special-token flags per text."""

    ids: list[list[int]]
    offsets: list[list[tuple[int, int]]]
    special: list[list[bool]]


class Unmasked(Protocol):
    """Per sequence: every token's log-probability in the intact sequence, and the attention it receives."""

    logprobs: list[np.ndarray]
    attention: list[np.ndarray] | None


class TopK(Protocol):
    """Top-k fills per text (decoded tokens, best first)."""

    tokens: list[list[str]]


class Scorer(Protocol):
    """The model side of the benchmarks."""

    @property
    def is_uncased(self) -> bool: ...

    @property
    def mask_token(self) -> str: ...

    def encode(self, texts: Sequence[str], *, lowercase: bool = False) -> EncodedTexts: ...

    def masked_token_logprobs(self, sequences: Sequence[Sequence[int]], positions: Sequence[int]) -> np.ndarray: ...

    def unmasked_token_logprobs(self, sequences: Sequence[Sequence[int]], *, attention: bool = True) -> Unmasked: ...

    def sentence_encodings(self, sequences: Sequence[Sequence[int]], *, pooling: str = "mean") -> np.ndarray: ...

    def top_k_fills(self, texts: Sequence[str], *, k: int) -> TopK: ...
