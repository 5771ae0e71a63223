"""The engine's one batched forward loop: every read-out of a masked LM goes through ``run_forward``.

What the loop does, so that no caller does it again:

- Sequences are token-id tuples addressed by their index; ``SequenceBank`` keeps each distinct sequence once,
  so every read-out wanted from one sentence is taken from one forward pass.
- They are sorted by length (ties by index) and cut into batches of ``batch_size`` in that order, so a batch
  holds sequences of nearly one length and padding stays small. Padding is on the right, with an attention
  mask: a sequence's results do not depend on the batch it lands in (batched == unbatched).
- The model runs under ``torch.inference_mode`` on its device, with any extra keyword arguments a read-out
  needs (``model_kwargs``, e.g. ``{"output_hidden_states": True}``).
- On out-of-memory the batch size halves and the same sequences are tried again; at batch size 1 the loop
  stops with one AuditError line. Any other error propagates untouched.
- Sequences listed in ``skip`` (e.g. restored from a checkpoint) are not run; a tqdm bar on stderr counts
  sequences when ``progress`` is on.

The read-out interface
----------------------
A read-out is any callable ``read_out(batch: Batch, output) -> None``. It is called once per batch, right
after a successful forward pass and still under inference mode:

- ``batch.seqs``: the sequence indices of the rows, in row order; ``batch.lengths``: their unpadded lengths;
  ``batch.input_ids`` and ``batch.attention_mask``: the (rows, width) tensors the model saw, on its device.
- ``output``: the model's output (a transformers ``ModelOutput``): ``output.logits`` (rows, width, vocab);
  ``output.hidden_states`` / ``output.attentions`` when ``model_kwargs`` asks for them.

Rules for a read-out:

1. Read row ``r`` only at positions below ``batch.lengths[r]`` (the rest is padding).
2. Compute in fp32 (``.float()`` before log_softmax or a mean) and keep results on the CPU (numpy), so device
   memory is freed batch by batch.
3. Store results last and by sequence index (never append): an out-of-memory error raised inside the
   read-out retries the batch at half the size, so a call that raises must leave nothing behind.

Read-outs that fit this interface:

- log-probabilities of given token ids at given positions, and top-k fills at given positions
  (``readouts.LogProbReadOut``; used by ``scoring.score_items``);
- the pseudo-log-likelihood of the original tokens at masked positions: the same read-out with one request
  per masked copy (``utility.pseudo_perplexity``);
- the mean of the last hidden state over a sentence's tokens, for SEAT-style embedding tests
  (``readouts.MeanPooledHidden`` with ``model_kwargs={"output_hidden_states": True}``);
- attention weights, for AULA-style measures: ``model_kwargs={"output_attentions": True}`` (with a model
  loaded with eager attention), then ``output.attentions[layer][row, :, :n, :n]`` with ``n = batch.lengths[row]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from albert_audit.engine.loading import LoadedModel
from albert_audit.errors import AuditError

DEFAULT_CPU_BATCH = 64
DEFAULT_GPU_BATCH = 512


@dataclass
class Batch:
    """One padded batch as the model saw it (see the module docstring)."""

    seqs: list[int]
    lengths: list[int]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


ReadOut = Callable[[Batch, Any], None]
"""A read-out callback: ``read_out(batch, model_output) -> None`` (rules in the module docstring)."""


@dataclass
class ForwardStats:
    """What one ``run_forward`` call did."""

    batch_size_start: int
    skipped: int = 0
    sizes_used: list[int] = field(default_factory=list)

    @property
    def batches(self) -> int:
        """Number of forward passes that succeeded."""
        return len(self.sizes_used)


class SequenceBank:
    """Distinct token sequences, each kept once; ``add`` returns a sequence's index."""

    def __init__(self) -> None:
        self.index: dict[tuple[int, ...], int] = {}
        self.sequences: list[tuple[int, ...]] = []

    def add(self, ids: Sequence[int]) -> int:
        """The index of ``ids`` (added if new)."""
        key = tuple(ids)
        found = self.index.get(key)
        if found is None:
            found = self.index[key] = len(self.sequences)
            self.sequences.append(key)
        return found


def resolve_batch_size(batch_size: int | str, device: str) -> int:
    """The starting batch size: "auto" is 512 on CUDA and 64 elsewhere; else a positive integer."""
    if batch_size == "auto":
        return DEFAULT_GPU_BATCH if device.startswith("cuda") else DEFAULT_CPU_BATCH
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1:
        return batch_size
    raise AuditError(f"--batch-size {batch_size!r}: expected a positive integer or 'auto'")


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error of any device."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def pad_token_id(tokenizer: Any) -> int:
    """The tokenizer's padding id (0 when it has none; padded positions are masked out anyway)."""
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else 0


def make_batch(sequences: Sequence[Sequence[int]], seqs: list[int], pad_id: int, device: str) -> Batch:
    """Right-padded input ids and the attention mask of the given sequences, on ``device``."""
    lengths = [len(sequences[s]) for s in seqs]
    ids = torch.full((len(seqs), max(lengths)), pad_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), max(lengths)), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, :lengths[row]] = torch.tensor(sequences[seq], dtype=torch.long)
        attention[row, :lengths[row]] = 1
    return Batch(seqs=list(seqs), lengths=lengths, input_ids=ids.to(device), attention_mask=attention.to(device))


def _free_cached_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def run_forward(loaded: LoadedModel, sequences: Sequence[Sequence[int]], read_out: ReadOut, *, batch_size: int,
                progress: bool = False, desc: str = "forward", skip: Collection[int] = (),
                model_kwargs: dict[str, Any] | None = None) -> ForwardStats:
    """Run every sequence not in ``skip`` through the model once, in length-sorted padded batches.

    ``read_out(batch, output)`` is called after each successful pass. ``batch_size`` is where the batch size
    starts (see ``resolve_batch_size``); it halves on out-of-memory. Returns the sizes used.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise AuditError(f"--batch-size {batch_size!r}: expected a positive integer or 'auto'")
    model, device = loaded.model, loaded.info.device
    pad_id = pad_token_id(loaded.tokenizer)
    skipped = set(skip)
    order = sorted((s for s in range(len(sequences)) if s not in skipped), key=lambda s: (len(sequences[s]), s))
    stats = ForwardStats(batch_size_start=batch_size, skipped=len(sequences) - len(order))
    kwargs = dict(model_kwargs or {})
    bar = tqdm(total=len(sequences), initial=stats.skipped, desc=desc, unit="seq", file=sys.stderr,
               disable=not progress, mininterval=0.5, dynamic_ncols=True)
    cursor = 0
    try:
        while cursor < len(order):
            chunk = order[cursor:cursor + batch_size]
            out_of_memory = False
            try:
                with torch.inference_mode():
                    batch = make_batch(sequences, chunk, pad_id, device)
                    output = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **kwargs)
                    read_out(batch, output)
            except Exception as exc:  # out-of-memory back-off; anything else propagates
                if not is_oom(exc):
                    raise
                if batch_size == 1:
                    raise AuditError(f"{desc}: out of memory on {device} even with batch size 1 (a sequence of "
                                     f"{len(sequences[chunk[0]])} tokens); use another --device or --dtype") from exc
                out_of_memory = True
            batch = output = None  # drop this batch's tensors before freeing cached memory
            if out_of_memory:
                _free_cached_memory(device)
                batch_size = max(1, batch_size // 2)
                continue
            stats.sizes_used.append(len(chunk))
            cursor += len(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
    return stats
