"""Batched MLM scoring: items in, top-k fills and target log-probabilities out, same order.

How it works:
1. Every sentence the model must see is tokenized once; identical token sequences are scored once.
2. A target that the tokenizer splits into n > 1 pieces is scored by the left-to-right chain rule over n
   masks (MULTI_PIECE_METHOD): the template's one mask becomes n masks, and
   log P(word) = sum_j log P(piece_j | pieces before j filled in, pieces after j still masked).
   Single-piece targets (n = 1) are read from the same forward pass as the top-k fills.
3. Kurita et al.'s association (engine/association.py): the group term is scored at its masks (same chain
   rule) in the sentence with the target filled in and in the same sentence with the target masked too.
4. The unique sequences go through the engine's one forward loop (forward.run_forward: length-sorted,
   right-padded batches with an attention mask, torch.inference_mode, out-of-memory halving, progress bar);
   the read-out (readouts.LogProbReadOut) takes log_softmax in fp32 at the mask positions only.
5. With a checkpoint folder, each batch's read-outs are saved as it finishes and a rerun resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from albert_audit.engine.association import Requests, request_association
from albert_audit.engine.checkpoint import ScoreCheckpoint, fingerprint
from albert_audit.engine.forward import resolve_batch_size, run_forward
from albert_audit.engine.loading import LoadedModel, is_head_key
from albert_audit.engine.readouts import PART_KEYS, LogProbReadOut, PositionRequests
from albert_audit.errors import AuditError

MULTI_PIECE_METHOD = (
    "chain rule, left to right: a word of n pieces is scored in a copy of the sentence with n mask "
    "tokens; log P(word) = sum over j of log P(piece j | pieces before j filled in, later pieces masked)"
)
CHECKPOINT_VERSION = 2  # 2: the association scores the group term (Kurita et al. 2019)

FILL_COLUMNS = ["item_id", "rank", "token_id", "token", "prob", "logprob"]
TARGET_COLUMNS = ["item_id", "target", "n_pieces", "logprob", "term_logprob", "term_prior_logprob"]


@dataclass
class ScoreResult:
    """The engine's output tables and what it took to make them."""

    fills: pd.DataFrame
    targets: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    checkpoint: ScoreCheckpoint | None = None


def term_piece_counter(tokenizer: Any):
    """A function (term, text_before_term) -> number of tokenizer pieces of the term in that context."""

    def count(term: str, text_before: str) -> int:
        return len(_pieces_in_context(tokenizer, text_before + term, len(text_before), len(term)))

    return count


def _pieces_in_context(tokenizer: Any, text: str, start: int, length: int) -> list[int]:
    """Token ids of the characters text[start:start+length] as the tokenizer splits them in context."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    end = start + length
    pieces = [tid for tid, (a, b) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True)
              if b > start and a < end and b > a]
    if not pieces:
        raise AuditError(f"the tokenizer produced no pieces for {text[start:end]!r} in {text!r}")
    return pieces


def _mask_position(ids: list[int], mask_id: int, ordinal: int, where: str) -> int:
    positions = [i for i, tok in enumerate(ids) if tok == mask_id]
    if not positions:
        raise AuditError(f"{where}: the tokenized sentence has no mask token (was it cut off?)")
    return positions[ordinal]


def _chain_sequences(ids: list[int], position: int, pieces: list[int], mask_id: int):
    """Yield (sequence, read position, piece id) for the left-to-right chain rule over len(pieces) masks."""
    n = len(pieces)
    for j in range(n):
        seq = ids[:position] + pieces[:j] + [mask_id] * (n - j) + ids[position + 1:]
        yield tuple(seq), position + j, pieces[j]


def _sum(piece_lp: np.ndarray, association: Requests, chain: tuple[int, str, int, list[int]], which: int) -> float:
    """The association's term log-probability (which=0: target filled in; 1: target masked); NaN without slot."""
    requests = association.get((chain[0], chain[1]))
    return float(piece_lp[requests[which]].sum()) if requests is not None else float("nan")


def head_digest(model: Any) -> str:
    """sha256 of the weights outside the base encoder (the MLM head), as they are in memory.

    The weight files' hashes don't cover a head grafted from another model, so a checkpoint is keyed by this
    too. (Packed weights of a quantized model are not tensors and are skipped; its dtype is keyed instead.)
    """
    import hashlib

    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        if not is_head_key(model, name) or not isinstance(value, torch.Tensor):
            continue
        digest.update(name.encode())
        digest.update(value.detach().to("cpu", torch.float32).numpy().tobytes())
    return digest.hexdigest()


def score_items(loaded: LoadedModel, items: pd.DataFrame, targets: dict[str, list[str]], *, top_k: int = 10,
                batch_size: int | str = "auto", progress: bool = True,
                checkpoint_dir: Path | None = None) -> ScoreResult:
    """Score every item: top-k fills at its mask, log P(target) for its probe set's targets and, for items
    with a group term, the association's log P(term) with the target filled in / masked too
    (engine/association.py).

    `targets` maps a probe-set name to its target words. `items` has the items columns of the data
    contract; `text` and `prior_text` already carry the model's mask token. With `checkpoint_dir`, scored
    batches are saved there as they finish and a rerun of the same work resumes from them; the caller
    clears it (`result.checkpoint.clear()`) once the outputs are safely written.
    """
    tokenizer = loaded.tokenizer
    mask_id = int(tokenizer.mask_token_id)
    mask_token = str(tokenizer.mask_token)
    max_length = loaded.info.max_length
    if top_k < 1 or top_k > loaded.info.vocab_size:
        raise AuditError(f"--top-k {top_k}: must be between 1 and the vocabulary size")
    batch = resolve_batch_size(batch_size, loaded.info.device)

    started = time.perf_counter()
    texts = list(dict.fromkeys(items["text"]))
    encoded = dict(zip(texts, tokenizer(texts, add_special_tokens=True)["input_ids"], strict=True))
    bank = PositionRequests()
    topk_of_item: list[int] = []
    chains: list[tuple[int, str, int, list[int]]] = []  # (item, target, n pieces, requests)
    piece_cache: dict[tuple[str, str], list[int]] = {}
    for row in items.itertuples(index=False):
        where = f"probe set {row.probe_set!r}, template {row.template_id} ({row.template!r})"
        ids = list(encoded[row.text])
        if len(ids) > max_length:
            raise AuditError(f"{where}: {len(ids)} tokens, more than the model's {max_length}; shorten it")
        if ids.count(mask_id) != 1:
            raise AuditError(f"{where}: the sentence {row.text!r} has {ids.count(mask_id)} mask tokens "
                             "after tokenization; expected exactly one")
        position = _mask_position(ids, mask_id, 0, where)
        topk_of_item.append(bank.request_topk(tuple(ids), position))
        at = row.text.index(mask_token)
        for target in targets.get(row.probe_set, ()):
            key = (row.text, target)
            if key not in piece_cache:
                filled = row.text[:at] + target + row.text[at + len(mask_token):]
                piece_cache[key] = _pieces_in_context(tokenizer, filled, at, len(target))
            pieces = piece_cache[key]
            text_reqs = [bank.request_piece(s, p, t) for s, p, t in _chain_sequences(ids, position, pieces,
                                                                                       mask_id)]
            chains.append((int(row.item_id), target, len(pieces), text_reqs))
    association = request_association(tokenizer, items, targets, bank, _pieces_in_context)
    too_long = [s for s in bank.sequences if len(s) > max_length]
    if too_long:
        raise AuditError(f"a multi-piece target or term makes a sentence of {len(too_long[0])} tokens, more than the "
                         f"model's {max_length}")
    prepared = time.perf_counter()
    checkpoint = None
    if checkpoint_dir is not None:
        key = fingerprint(CHECKPOINT_VERSION, loaded.info.weights_sha256, loaded.info.head, head_digest(loaded.model),
                          loaded.info.dtype, loaded.info.device.split(":")[0], top_k, bank.sequences,
                          bank.piece_requests, bank.topk_requests)
        checkpoint = ScoreCheckpoint(Path(checkpoint_dir), key, PART_KEYS)
    reads = LogProbReadOut(bank, top_k, on_part=checkpoint.add if checkpoint else None)
    done: set[int] = set()
    for part in checkpoint.load() if checkpoint else ():
        reads.apply(part)
        done.update(part["seqs"].tolist())
    try:
        run = run_forward(loaded, bank.sequences, reads, batch_size=batch, progress=progress, desc="scoring",
                          skip=done)
    finally:
        if checkpoint:
            checkpoint.flush()  # on success, Ctrl-C or a crash alike: keep what was scored
    piece_lp, topk_ids, topk_lp = reads.piece_logprob, reads.topk_ids, reads.topk_logprob
    scored = time.perf_counter()

    decoded: dict[int, str] = {}
    fill_rows: dict[str, list[Any]] = {name: [] for name in FILL_COLUMNS if name != "prob"}
    for item_id, req in zip(items["item_id"].tolist(), topk_of_item, strict=True):
        for rank in range(top_k):
            token_id = int(topk_ids[req, rank])
            if token_id not in decoded:
                decoded[token_id] = tokenizer.decode([token_id])
            fill_rows["item_id"].append(item_id)
            fill_rows["rank"].append(rank + 1)
            fill_rows["token_id"].append(token_id)
            fill_rows["token"].append(decoded[token_id])
            fill_rows["logprob"].append(float(topk_lp[req, rank]))
    fills = pd.DataFrame(fill_rows)
    fills["prob"] = np.exp(fills["logprob"].to_numpy(dtype=float))
    fills = fills[FILL_COLUMNS].astype({"item_id": "int64", "rank": "int64", "token_id": "int64"})
    target_table = pd.DataFrame({
        "item_id": [c[0] for c in chains],
        "target": [c[1] for c in chains],
        "n_pieces": [c[2] for c in chains],
        "logprob": [float(piece_lp[c[3]].sum()) for c in chains],
        "term_logprob": [_sum(piece_lp, association, c, 0) for c in chains],
        "term_prior_logprob": [_sum(piece_lp, association, c, 1) for c in chains],
    }, columns=TARGET_COLUMNS).astype({"item_id": "int64", "n_pieces": "int64", "logprob": "float64",
                                       "term_logprob": "float64", "term_prior_logprob": "float64"})
    stats = {
        "items": len(items),
        "unique_sequences": len(bank.sequences),
        "resumed_sequences": run.skipped,
        "read_outs": len(bank.piece_requests) + len(bank.topk_requests),
        "batch_size_requested": batch_size,
        "batch_size_start": batch,
        "batch_sizes_used": sorted(set(run.sizes_used)),
        "batches": run.batches,
        "timings_s": {"prepare": prepared - started, "forward": scored - prepared,
                      "assemble": time.perf_counter() - scored},
    }
    return ScoreResult(fills=fills, targets=target_table, stats=stats, checkpoint=checkpoint)
