"""Inputs of docs/scale.md's cost model: how many sequences one model's audit puts through the network.

For every shipped probe set: items, targets, and the unique token sequences the engine scores (text, targets'
chain-rule variants and Kurita's association variants, deduplicated), planned by the engine itself (the
forward loop is not run) for a tiny random ALBERT whose tokenizer knows every probe word as one piece (as
bench/throughput.py does: the real albert-large-v2 SentencePiece vocabulary cannot be downloaded here, and it
splits rare words into several pieces, which adds chain-rule sequences: these counts are lower bounds), with
their mean length in tokens. Also the pseudo-perplexity sample (one sequence per token of every sentence).

    python scripts/lineage_cost.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import albert_audit.engine.scoring as scoring  # noqa: E402
from albert_audit.engine.loading import load_model  # noqa: E402
from albert_audit.engine.scoring import score_items, term_piece_counter  # noqa: E402
from albert_audit.engine.utility import neutral_sample  # noqa: E402
from albert_audit.library import list_shipped  # noqa: E402
from albert_audit.probeset import load_probe_set  # noqa: E402
from albert_audit.probeset.expand import expand_items  # noqa: E402
from tests.toy_models import build_toy_albert  # noqa: E402


class _Planned(Exception):
    """Raised instead of running the forward loop: the engine's plan (its unique sequences) is all we need."""

    def __init__(self, sequences: list) -> None:
        super().__init__()
        self.sequences = sequences


def _plan_only(loaded, sequences, reads, **kwargs):
    raise _Planned(list(sequences))


def planned_sequences(loaded, items, targets) -> list:
    """The unique token sequences ``score_items`` would put through the model (nothing is run)."""
    original = scoring.run_forward
    scoring.run_forward = _plan_only
    try:
        score_items(loaded, items, targets, top_k=10, batch_size=256, progress=False)
    except _Planned as planned:
        return planned.sequences
    finally:
        scoring.run_forward = original
    raise RuntimeError("score_items ran without planning")


def main() -> None:
    sets = [load_probe_set(path) for path in list_shipped()]
    words: list[str] = []
    for probe_set in sets:
        words += [t for g in probe_set.groups for term in g.terms for t in term.split()] + list(probe_set.targets)
        for template in probe_set.templates:
            words += template.text.replace("[MASK]", " ").replace("<", " ").replace(">", " ").split()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_toy_albert(Path(tmp) / "toy", words=sorted(set(words)), seed=0)
        loaded = load_model(str(folder), device="cpu", dtype="float32")
    total_seq = 0
    print("| probe set | templates | items | targets | unique sequences | mean tokens |")
    print("|---|---|---|---|---|---|")
    for probe_set in sets:
        items = expand_items([probe_set], mask_token=loaded.info.mask_token,
                             count_term_pieces=term_piece_counter(loaded.tokenizer))
        sequences = planned_sequences(loaded, items, {probe_set.name: list(probe_set.targets)})
        total_seq += len(sequences)
        mean_len = sum(len(s) for s in sequences) / max(len(sequences), 1)
        print(f"| {probe_set.name} | {len(probe_set.templates)} | {len(items)} | {len(probe_set.targets)} | "
              f"{len(sequences)} | {mean_len:.1f} |")
    print(f"| all {len(sets)} sets | | | | {total_seq} | |")
    sample = neutral_sample()
    n_words = sum(len(s.split()) for s in sample)
    print(f"pseudo-perplexity sample: {len(sample)} sentences, {n_words} words (one sequence per token)")


if __name__ == "__main__":
    main()
