"""The published numbers shown for context: one shipped data file, checked against the project's reference notes."""

from __future__ import annotations

import re

import pytest

from albert_audit import registry
from albert_audit.api.benchmarks import NAMES
from albert_audit.benchmarks.published import load_published, shipped_path
from albert_audit.errors import AuditError
from tests.benchmark_files import REPO

REFERENCE = next((p for p in (REPO.parent / "shared" / "reference" / "mlm_bias_tools.md",
                              REPO.parent.parent / "shared" / "reference" / "mlm_bias_tools.md") if p.exists()), None)


def test_shipped_file_is_well_formed():
    data = load_published()
    assert set(data) <= set(NAMES) and {"crows_pairs", "stereoset", "seat", "honest"} <= set(data)
    for name, sources in data.items():
        for source in sources:
            assert source.url.startswith("https://") and source.citation and source.variant
            for value in source.values:
                assert value.metric in registry.benchmark_ids(), (name, value.metric)
                assert "albert" not in source.model.lower()  # no ALBERT number could be read in a source
    bias_bench = [s for s in data["crows_pairs"] if "bias-bench" in s.source]
    assert bias_bench and not bias_bench[0].comparable and "not the original" in bias_bench[0].variant


@pytest.mark.skipif(REFERENCE is None, reason="the project's reference notes are not beside this checkout")
def test_every_number_is_one_the_reference_notes_list_as_verified():
    text = REFERENCE.read_text(encoding="utf-8")
    verified = text[text.index("**Verified non-ALBERT numbers"):text.index("**Structural checks")]
    printed = set(re.findall(r"\d+\.\d+", verified))
    for sources in load_published().values():
        for source in sources:
            for value in source.values:
                assert f"{value.value:.2f}" in printed or f"{value.value:.3f}" in printed, (source.model, value)


def test_a_bad_file_is_one_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("crows_pairs:\n  - model: m\n", encoding="utf-8")
    with pytest.raises(AuditError, match=r"p.yaml: crows_pairs source 1: expected the keys"):
        load_published(path)
    path.write_text("crows_pairs: [", encoding="utf-8")
    with pytest.raises(AuditError, match="cannot read the published numbers"):
        load_published(path)
    assert shipped_path().name == "published_numbers.yaml"
