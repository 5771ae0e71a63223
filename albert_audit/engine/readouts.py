"""Read-outs for the forward loop (``forward.run_forward``): what is taken from each batch's model output.

- ``PositionRequests`` + ``LogProbReadOut``: log P(token id) at given (sequence, position) pairs and top-k
  fills at given positions, from one fp32 log-softmax per position. Used for target scores (scoring) and for
  the pseudo-log-likelihood of original tokens at masked positions (utility).
- ``MeanPooledHidden``: the mean of the last hidden state over each sequence's tokens (SEAT-style sentence
  vectors); needs ``model_kwargs={"output_hidden_states": True}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from albert_audit.engine.forward import Batch, SequenceBank

PART_KEYS = ("piece_req", "piece_val", "topk_req", "topk_ids", "topk_lp", "seqs")
"""The arrays of one batch's ``LogProbReadOut`` part (what a checkpoint stores)."""


class PositionRequests(SequenceBank):
    """Distinct sequences plus the read-outs requested from them: (position, token id) and top-k positions."""

    def __init__(self) -> None:
        super().__init__()
        self.piece_requests: list[tuple[int, int, int]] = []  # (sequence, position, token id)
        self.topk_requests: list[tuple[int, int]] = []  # (sequence, position)

    def request_piece(self, ids: Sequence[int], position: int, token_id: int) -> int:
        """Ask for log P(token_id) at ``position`` of ``ids``; returns the request's index."""
        self.piece_requests.append((self.add(ids), position, token_id))
        return len(self.piece_requests) - 1

    def request_topk(self, ids: Sequence[int], position: int) -> int:
        """Ask for the top-k fills at ``position`` of ``ids``; returns the request's index."""
        self.topk_requests.append((self.add(ids), position))
        return len(self.topk_requests) - 1


class LogProbReadOut:
    """The requested log-probabilities and top-k lists, filled batch by batch (results indexed by request).

    ``on_part`` (e.g. a checkpoint's ``add``) receives each batch's part after it is stored.
    """

    def __init__(self, requests: PositionRequests, top_k: int = 0,
                 on_part: Callable[[dict[str, np.ndarray]], None] | None = None) -> None:
        self.top_k = top_k
        self.on_part = on_part
        self.wanted: dict[int, set[int]] = {}
        self.piece_by_key: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.topk_by_key: dict[tuple[int, int], list[int]] = {}
        for req, (seq, pos, tok) in enumerate(requests.piece_requests):
            self.wanted.setdefault(seq, set()).add(pos)
            self.piece_by_key.setdefault((seq, pos), []).append((req, tok))
        for req, (seq, pos) in enumerate(requests.topk_requests):
            self.wanted.setdefault(seq, set()).add(pos)
            self.topk_by_key.setdefault((seq, pos), []).append(req)
        self.piece_logprob = np.full(len(requests.piece_requests), np.nan)
        self.topk_ids = np.zeros((len(requests.topk_requests), top_k), dtype=np.int64)
        self.topk_logprob = np.zeros((len(requests.topk_requests), top_k))

    def __call__(self, batch: Batch, output: Any) -> None:
        part = self.take(batch.seqs, output.logits)
        if self.on_part is not None:
            self.on_part(part)

    def take(self, seqs: list[int], logits: torch.Tensor) -> dict[str, np.ndarray]:
        """Read a batch's logits at the wanted positions (fp32 log-softmax), store and return the part."""
        row_of = {seq: row for row, seq in enumerate(seqs)}
        keys = [(seq, pos) for seq in seqs for pos in sorted(self.wanted.get(seq, ()))]
        rows = torch.tensor([row_of[seq] for seq, _ in keys], dtype=torch.long, device=logits.device)
        cols = torch.tensor([pos for _, pos in keys], dtype=torch.long, device=logits.device)
        logprobs = torch.log_softmax(logits[rows, cols].float(), dim=-1)
        piece_req, piece_row, piece_tok, topk_req, topk_row = [], [], [], [], []
        for r, key in enumerate(keys):
            for req, tok in self.piece_by_key.get(key, ()):
                piece_req.append(req)
                piece_row.append(r)
                piece_tok.append(tok)
            for req in self.topk_by_key.get(key, ()):
                topk_req.append(req)
                topk_row.append(r)
        part = {"seqs": np.asarray(seqs, dtype=np.int64), "piece_req": np.asarray(piece_req, dtype=np.int64),
                "piece_val": logprobs[piece_row, piece_tok].cpu().numpy().astype(np.float64),
                "topk_req": np.asarray(topk_req, dtype=np.int64)}
        if topk_req:
            best_lp, best_ids = logprobs[topk_row].topk(self.top_k, dim=-1)
            part["topk_ids"], part["topk_lp"] = best_ids.cpu().numpy(), best_lp.cpu().numpy().astype(np.float64)
        else:
            part["topk_ids"] = np.zeros((0, self.top_k), dtype=np.int64)
            part["topk_lp"] = np.zeros((0, self.top_k))
        self.apply(part)
        return part

    def apply(self, part: dict[str, np.ndarray]) -> None:
        """Store a batch's read-outs (from a forward pass or from a checkpoint)."""
        self.piece_logprob[part["piece_req"]] = part["piece_val"]
        self.topk_ids[part["topk_req"]] = part["topk_ids"]
        self.topk_logprob[part["topk_req"]] = part["topk_lp"]


class MeanPooledHidden:
    """Per sequence, the mean of the last hidden state over its tokens (special tokens included), fp32.

    Run with ``model_kwargs=MeanPooledHidden.model_kwargs``; ``vectors[i]`` is sequence i's vector (NaN until run).
    """

    model_kwargs = {"output_hidden_states": True}

    def __init__(self, n_sequences: int, hidden_size: int) -> None:
        self.vectors = np.full((n_sequences, hidden_size), np.nan)

    def __call__(self, batch: Batch, output: Any) -> None:
        hidden = output.hidden_states[-1].float()
        weights = batch.attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
        self.vectors[batch.seqs] = pooled.cpu().numpy().astype(np.float64)
