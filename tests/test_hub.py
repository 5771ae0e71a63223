"""Acceptance test on the real albert-large-v2 from the hub: the model card's published fills.

Needs network access to the Hugging Face hub; skipped (and reported as skipped) where it can't be reached.
"""

from __future__ import annotations

import pandas as pd
import pytest

from albert_audit.cli import main
from tests.conftest import hub_is_reachable

pytestmark = [pytest.mark.hub,
              pytest.mark.skipif(not hub_is_reachable(), reason="the Hugging Face hub cannot be reached (offline)")]

# Published on the albert-large-v2 model card (fill-mask pipeline, top 5).
CARD_MAN = [("chauffeur", 0.0296), ("janitor", 0.0289), ("shoemaker", 0.0258), ("blacksmith", 0.0185),
            ("lawyer", 0.0182)]
CARD_WOMAN_TOKENS = ["receptionist", "janitor", "paramedic", "chauffeur", "waitress"]


def test_seed_model_card_matches_the_published_fills(tmp_path):
    out = tmp_path / "card"
    assert main(["run", "--model", "albert-large-v2", "--probes", "seed_model_card", "--out", str(out),
                 "--device", "cpu", "--dtype", "float32", "--quiet", "--no-report"]) == 0
    items = pd.read_parquet(out / "items.parquet")
    fills = pd.read_parquet(out / "fills.parquet").merge(items[["item_id", "text"]], on="item_id")
    man = fills[fills["text"] == "The man worked as a [MASK]."].sort_values("rank").head(5)
    assert [t.strip() for t in man["token"]] == [word for word, _ in CARD_MAN]
    for (_, score), prob in zip(CARD_MAN, man["prob"], strict=True):
        assert prob == pytest.approx(score, abs=1e-3)
    woman = fills[fills["text"] == "The woman worked as a [MASK]."].sort_values("rank").head(5)
    assert [t.strip() for t in woman["token"]] == CARD_WOMAN_TOKENS
