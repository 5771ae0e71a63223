"""The torch side of the standard benchmarks: generic read-outs over token-id sequences.

The benchmark modules (:mod:`albert_audit.benchmarks`) are pure: they load data files, plan which sequences
and positions to score, and turn scores into tables and findings. This module owns the model side:

- :func:`encode`: token ids (special tokens included) and character offsets of texts;
- :func:`masked_token_logprobs`: log P(original token) at one masked position per request (pseudo-log-
  likelihood terms; CrowS-Pairs, StereoSet);
- :func:`unmasked_token_logprobs`: log P(token_i | intact sentence) of every token and the attention each
  token receives, averaged over layers, heads and queries (AUL / AULA);
- :func:`sentence_encodings`: last-hidden-layer pooling, L2-normalised (SEAT);
- :func:`top_k_fills`: the k most likely tokens at the mask of each text (HONEST).

Every forward pass goes through the engine's one loop, :func:`albert_audit.engine.forward.run_forward`
(length-sorted right-padded batches, inference mode, out-of-memory halving), on the encoder body only: the
read-outs here are its callbacks and apply the MLM head (:func:`mlm_head`) only at the positions they read.
:func:`_forward` adds what the benchmarks need around it: identical sequences are run once
(:class:`~albert_audit.engine.forward.SequenceBank`) and eager attention is switched on while attention
weights are read.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from albert_audit.engine.forward import Batch, ReadOut, SequenceBank, resolve_batch_size, run_forward
from albert_audit.engine.loading import LoadedModel
from albert_audit.errors import AuditError

# ------------------------------------------------------------------------------------------ batching


def _forward(loaded: LoadedModel, sequences: Sequence[Sequence[int]], read: ReadOut, *,
             batch_size: int | str = "auto", attentions: bool = False) -> np.ndarray:
    """Run every *distinct* sequence once through the encoder body with ``run_forward``; ``read(batch,
    output)`` sees ``batch.seqs`` as distinct-sequence ids and ``output.last_hidden_state`` (plus
    ``output.attentions`` with ``attentions``). Returns ``index``: the distinct id of ``sequences[i]``."""
    start = resolve_batch_size(batch_size, loaded.info.device)
    bank = SequenceBank()
    index = np.asarray([bank.add([int(t) for t in seq]) for seq in sequences], dtype=np.int64)
    body = dataclasses.replace(loaded, model=_encoder(loaded.model))
    kwargs = {"output_attentions": True} if attentions else None
    with _eager_attention(loaded.model, attentions):
        run_forward(body, bank.sequences, read, batch_size=start, desc="benchmark", model_kwargs=kwargs)
    return index


def _valid(batch: Batch) -> torch.Tensor:
    """(rows, width) 1.0 at each row's own tokens, 0.0 at padding, as float on the batch's device."""
    return batch.attention_mask.float()


def _lengths(batch: Batch) -> torch.Tensor:
    """The rows' unpadded lengths as a float tensor on the batch's device."""
    return torch.tensor(batch.lengths, dtype=torch.float32, device=batch.input_ids.device)


@contextlib.contextmanager
def _eager_attention(model: Any, wanted: bool) -> Iterator[None]:
    """Eager attention while attention weights are read (SDPA does not return them)."""
    previous = getattr(model.config, "_attn_implementation", None)
    if not wanted or previous in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def _encoder(model: Any) -> Any:
    """The transformer body of a masked LM (``model.albert`` for ALBERT)."""
    body = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if body is None:
        raise AuditError(f"{type(model).__name__}: no encoder body found")
    return body


def mlm_head(model: Any, hidden: torch.Tensor) -> torch.Tensor:
    """The MLM head applied to selected hidden states (any leading shape): logits over the vocabulary."""
    for name in ("predictions", "cls", "lm_head"):
        head = getattr(model, name, None)
        if head is not None:
            return head(hidden)
    raise AuditError(f"{type(model).__name__}: no masked-LM head found")


# -------------------------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class Encoded:
    """Token ids (special tokens included), per-token character offsets and special-token flags."""

    ids: list[list[int]]
    offsets: list[list[tuple[int, int]]]
    special: list[list[bool]]


def encode(loaded: LoadedModel, texts: Sequence[str], *, lowercase: bool = False) -> Encoded:
    """Tokenize ``texts`` as the model sees them (``lowercase`` first for uncased models, as CrowS does)."""
    tokenizer = loaded.tokenizer
    batch = [t.lower() if lowercase else t for t in texts]
    enc = tokenizer(batch, add_special_tokens=True, return_special_tokens_mask=True, return_offsets_mapping=True,
                    truncation=False, verbose=False)
    limit = loaded.info.max_length
    for i, ids in enumerate(enc["input_ids"]):
        if len(ids) > limit:
            raise AuditError(f"text {i + 1} is {len(ids)} tokens long; the model takes at most {limit}: "
                             f"{texts[i][:60]!r}")
    return Encoded(ids=[list(map(int, ids)) for ids in enc["input_ids"]],
                   offsets=[[(int(a), int(b)) for a, b in off] for off in enc["offset_mapping"]],
                   special=[[bool(s) for s in sp] for sp in enc["special_tokens_mask"]])


def is_uncased(loaded: LoadedModel) -> bool:
    """True when the tokenizer lower-cases its input (ALBERT, BERT-uncased): CrowS then lower-cases too."""
    return bool(getattr(loaded.tokenizer, "do_lower_case", False))


# ----------------------------------------------------------------------------------------- read-outs


def masked_token_logprobs(loaded: LoadedModel, sequences: Sequence[Sequence[int]], positions: Sequence[int], *,
                          batch_size: int | str = "auto") -> np.ndarray:
    """log P(original token) at ``positions[i]`` of ``sequences[i]`` with that one position masked.

    One request per (sequence, position); the masked copies are deduplicated, so a sentence shared by
    several pairs is scored once. Log-softmax in fp32; returned as float64.
    """
    if len(sequences) != len(positions):
        raise AuditError("masked_token_logprobs: one position per sequence")
    mask_id = int(loaded.tokenizer.mask_token_id)
    masked = []
    for seq, pos in zip(sequences, positions, strict=True):
        copy = list(seq)
        copy[pos] = mask_id
        masked.append(copy)
    # Distinct requests can share a masked sequence (two candidates that differ only in the masked token):
    # each unique sequence keeps its masked position and every (request, original token) read there.
    seen: dict[tuple[int, ...], int] = {}
    pos_of: dict[int, int] = {}
    reads_of: dict[int, list[tuple[int, int]]] = {}
    for i, seq in enumerate(masked):
        u = seen.setdefault(tuple(seq), len(seen))
        pos_of[u] = int(positions[i])
        reads_of.setdefault(u, []).append((i, int(sequences[i][positions[i]])))
    values = np.full(len(masked), np.nan)

    def read(batch: Batch, output: Any) -> None:
        chunk = batch.seqs
        device = output.last_hidden_state.device
        rows = torch.arange(len(chunk), device=device)
        cols = torch.tensor([pos_of[u] for u in chunk], device=device)
        logprobs = torch.log_softmax(mlm_head(loaded.model, output.last_hidden_state[rows, cols]).float(), dim=-1)
        pairs = [(r, i, tok) for r, u in enumerate(chunk) for i, tok in reads_of[u]]
        picked = logprobs[torch.tensor([r for r, _, _ in pairs], device=device),
                          torch.tensor([t for _, _, t in pairs], device=device)]
        values[[i for _, i, _ in pairs]] = picked.double().cpu().numpy()

    _forward(loaded, masked, read, batch_size=batch_size)
    return values


@dataclass(frozen=True)
class UnmaskedScores:
    """Per sequence: log P(token_i | intact sequence) and the attention token i receives, for every token."""

    logprobs: list[np.ndarray]
    attention: list[np.ndarray] | None


def unmasked_token_logprobs(loaded: LoadedModel, sequences: Sequence[Sequence[int]], *, attention: bool = True,
                            batch_size: int | str = "auto") -> UnmaskedScores:
    """One forward pass per intact sequence (AUL): every token's log-probability, and with ``attention``
    the attention weight each token receives averaged over layers, heads and the sequence's queries
    (AULA's weight). Padding takes no part: queries are the sequence's own tokens, and masked keys get 0.
    """
    logprob_of: dict[int, np.ndarray] = {}
    attention_of: dict[int, np.ndarray] = {}

    def read(batch: Batch, output: Any) -> None:
        ids = batch.input_ids
        logprobs = torch.log_softmax(mlm_head(loaded.model, output.last_hidden_state).float(), dim=-1)
        token_lp = logprobs.gather(-1, ids[..., None])[..., 0].double().cpu().numpy()
        if attention:
            # (layers, batch, heads, query, key) -> mean over layers and heads -> (batch, query, key)
            stacked = torch.stack([a.float() for a in output.attentions]).mean(dim=(0, 2))
            received = (stacked * _valid(batch)[:, :, None]).sum(dim=1) / _lengths(batch)[:, None]
            received = received.double().cpu().numpy()
        for r, u in enumerate(batch.seqs):
            n = batch.lengths[r]
            logprob_of[u] = token_lp[r, :n]
            if attention:
                attention_of[u] = received[r, :n]

    index = _forward(loaded, sequences, read, batch_size=batch_size, attentions=attention)
    return UnmaskedScores(logprobs=[logprob_of[u] for u in index],
                          attention=[attention_of[u] for u in index] if attention else None)


def sentence_encodings(loaded: LoadedModel, sequences: Sequence[Sequence[int]], *, pooling: str = "mean",
                       batch_size: int | str = "auto") -> np.ndarray:
    """(n, hidden) L2-normalised sentence encodings from the encoder's last hidden layer.

    ``pooling="mean"``: mean over all the sequence's tokens, special tokens included (bias-bench's SEAT
    encoder); ``"cls"``: the first token's state.
    """
    if pooling not in ("mean", "cls"):
        raise AuditError(f"pooling {pooling!r}: expected 'mean' or 'cls'")
    vectors: dict[int, np.ndarray] = {}

    def read(batch: Batch, output: Any) -> None:
        chunk = batch.seqs
        hidden = output.last_hidden_state.float()
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = (hidden * _valid(batch)[..., None]).sum(dim=1) / _lengths(batch)[:, None]
        pooled = pooled.double()
        pooled = pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        for r, u in enumerate(chunk):
            vectors[u] = pooled[r].cpu().numpy()

    index = _forward(loaded, sequences, read, batch_size=batch_size)
    if not len(index):
        return np.zeros((0, 0))
    return np.stack([vectors[u] for u in index])


@dataclass(frozen=True)
class Fills:
    """Top-k fills at one mask per text: token ids, decoded tokens and log-probabilities, (n, k) each."""

    token_ids: np.ndarray
    tokens: list[list[str]]
    logprobs: np.ndarray


def top_k_fills(loaded: LoadedModel, texts: Sequence[str], *, k: int, batch_size: int | str = "auto") -> Fills:
    """The ``k`` most likely tokens at the single mask token of each text (decoded as the fill-mask
    pipeline's ``token_str``: the piece without its word-start marker)."""
    tokenizer = loaded.tokenizer
    mask_id = int(tokenizer.mask_token_id)
    enc = encode(loaded, texts)
    positions = []
    for i, ids in enumerate(enc.ids):
        where = [p for p, t in enumerate(ids) if t == mask_id]
        if len(where) != 1:
            raise AuditError(f"text {i + 1} has {len(where)} mask tokens, expected 1: {texts[i][:60]!r}")
        positions.append(where[0])
    pos_of = {}
    top_ids: dict[int, np.ndarray] = {}
    top_lp: dict[int, np.ndarray] = {}

    def read(batch: Batch, output: Any) -> None:
        chunk = batch.seqs
        rows = torch.arange(len(chunk), device=output.last_hidden_state.device)
        cols = torch.tensor([pos_of[u] for u in chunk], device=rows.device)
        logprobs = torch.log_softmax(mlm_head(loaded.model, output.last_hidden_state[rows, cols]).float(), dim=-1)
        best_lp, best_ids = logprobs.topk(k, dim=-1)
        for r, u in enumerate(chunk):
            top_ids[u] = best_ids[r].cpu().numpy()
            top_lp[u] = best_lp[r].double().cpu().numpy()

    seen: dict[tuple[int, ...], int] = {}
    for ids, pos in zip(enc.ids, positions, strict=True):
        pos_of[seen.setdefault(tuple(ids), len(seen))] = pos
    index = _forward(loaded, enc.ids, read, batch_size=batch_size)
    ids = np.stack([top_ids[u] for u in index]) if len(index) else np.zeros((0, k), dtype=np.int64)
    lps = np.stack([top_lp[u] for u in index]) if len(index) else np.zeros((0, k))
    tokens = [[tokenizer.decode([int(t)]).strip() for t in row] for row in ids]
    return Fills(token_ids=ids, tokens=tokens, logprobs=lps)


# ------------------------------------------------------------------------ the scorer the benchmarks call


class BenchmarkScorer:
    """The read-outs above bound to one loaded model and batch size: the object the pure benchmark modules
    call (:class:`albert_audit.benchmarks.scorer.Scorer`), so that they never import torch."""

    def __init__(self, loaded: LoadedModel, *, batch_size: int | str = "auto") -> None:
        resolve_batch_size(batch_size, loaded.info.device)  # validate early
        self.loaded = loaded
        self.batch_size = batch_size

    @property
    def is_uncased(self) -> bool:
        """Whether the tokenizer lower-cases its input."""
        return is_uncased(self.loaded)

    @property
    def mask_token(self) -> str:
        """The model's mask token."""
        return str(self.loaded.tokenizer.mask_token)

    def encode(self, texts: Sequence[str], *, lowercase: bool = False) -> Encoded:
        """See :func:`encode`."""
        return encode(self.loaded, texts, lowercase=lowercase)

    def masked_token_logprobs(self, sequences: Sequence[Sequence[int]], positions: Sequence[int]) -> np.ndarray:
        """See :func:`masked_token_logprobs`."""
        return masked_token_logprobs(self.loaded, sequences, positions, batch_size=self.batch_size)

    def unmasked_token_logprobs(self, sequences: Sequence[Sequence[int]], *, attention: bool = True) -> UnmaskedScores:
        """See :func:`unmasked_token_logprobs`."""
        return unmasked_token_logprobs(self.loaded, sequences, attention=attention, batch_size=self.batch_size)

    def sentence_encodings(self, sequences: Sequence[Sequence[int]], *, pooling: str = "mean") -> np.ndarray:
        """See :func:`sentence_encodings`."""
        return sentence_encodings(self.loaded, sequences, pooling=pooling, batch_size=self.batch_size)

    def top_k_fills(self, texts: Sequence[str], *, k: int) -> Fills:
        """See :func:`top_k_fills`."""
        return top_k_fills(self.loaded, texts, k=k, batch_size=self.batch_size)
