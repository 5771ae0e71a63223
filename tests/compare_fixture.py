"""A compare folder written directly from synthetic tables (no model, no statistics): what compare.html reads.

Every probe-set name, target, group name and model label carries hostile text (markup, quotes, Jinja), each
change class occurs, the base's and each candidate's own bias-score intervals differ, and the candidates'
pseudo-perplexities make one worse and one better than the base.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from albert_audit import contract
from albert_audit.model_deltas import methods_text

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
QUOTES = "it's \"quoted\" & <b>bold</b>"
JINJA_LITERAL = "{{7*7}}"

PROBE_SETS = {
    "occupation": (("female", f"male {XSS_IMG}"), ["nurse", "engineer", XSS_SCRIPT, QUOTES]),
    f"set {XSS_SCRIPT} \"q\"": (("christian", "muslim"), ["kind", JINJA_LITERAL, "violent"]),
}
BASE_ID = "org/base<script>"
#: Hub-style labels (owner/name: shown as they are); an unclosed ``<script>`` would swallow the page.
CANDIDATES = ('org/worse "<script>', "org/better")
#: The pseudo-perplexities: the first candidate got worse at language modelling (ratio 1.5), the second better.
PPPL = {"base": 10.0, CANDIDATES[0]: 15.0, CANDIDATES[1]: 8.0}
#: Each model's own bias-score interval in its findings.csv (per probe set: + 0.01 * set index).
OWN_BIAS_CI = {"base": (0.11, 0.52), CANDIDATES[0]: (0.61, 0.93), CANDIDATES[1]: (0.21, 0.33)}
OWN_BIAS_SCORE = {"base": 0.31, CANDIDATES[0]: 0.77, CANDIDATES[1]: 0.27}
CHANGE_CYCLE = ("amplified", "reduced", "reversed", "emerged", "negligible", "inconclusive")
MATERIAL = ("amplified", "reduced", "reversed", "emerged")
DELTA_MARGIN = 0.0953


def _deltas(alpha: float, delta_margin: float = DELTA_MARGIN) -> pd.DataFrame:
    rows = []
    k = 0
    for c_index, candidate in enumerate(CANDIDATES):
        for s_index, (probe_set, ((a, b), targets)) in enumerate(PROBE_SETS.items()):
            for metric in ("logprob_gap", "association_gap"):
                for t_index, target in enumerate(targets):
                    change = CHANGE_CYCLE[k % len(CHANGE_CYCLE)]
                    k += 1
                    base = 0.4 + 0.3 * t_index - 0.2 * s_index
                    cand = {"amplified": 2.0 * base, "reduced": 0.3 * base, "reversed": -base,
                            "emerged": base + 0.9, "negligible": base + 0.01,
                            "inconclusive": base + 0.05}[change] + 0.05 * c_index
                    delta = cand - base
                    q = 0.4 * alpha if change in MATERIAL else 0.6
                    delta_verdict = ("material" if change in MATERIAL else
                                     "negligible" if change == "negligible" else "inconclusive")
                    rows.append({"probe_set": probe_set, "metric": metric, "target": target, "group_a": a,
                                 "group_b": b, "base_effect": base, "candidate": candidate, "candidate_effect": cand,
                                 "delta": delta, "ci_low": delta - 0.25, "ci_high": delta + 0.25,
                                 "p_value": q / 4, "q_value": q, "change": change, "scope": "group",
                                 "margin": delta_margin, "p_material": q / 4, "q_material": q,
                                 "p_equivalence": 0.01 if change == "negligible" else 0.5,
                                 "delta_verdict": delta_verdict,
                                 "base_verdict": "inconclusive" if change == "emerged" else "material",
                                 "candidate_verdict": "material"})
            base_score = OWN_BIAS_SCORE["base"] + 0.01 * s_index
            cand_score = OWN_BIAS_SCORE[candidate] + 0.01 * s_index
            rows.append({"probe_set": probe_set, "metric": "bias_score", "target": "", "group_a": a, "group_b": b,
                         "base_effect": base_score, "candidate": candidate, "candidate_effect": cand_score,
                         "delta": cand_score - base_score, "ci_low": cand_score - base_score - 0.1,
                         "ci_high": cand_score - base_score + 0.1, "p_value": 0.001, "q_value": 0.2 * alpha,
                         "change": "amplified" if cand_score > base_score else "reduced", "scope": "",
                         "margin": delta_margin, "p_material": 0.001, "q_material": 0.2 * alpha,
                         "p_equivalence": 0.9, "delta_verdict": "material", "base_verdict": "",
                         "candidate_verdict": ""})
    return pd.DataFrame(rows, columns=list(contract.DELTAS.names))


def _findings(model: str, alpha: float) -> pd.DataFrame:
    """A run's own findings: only the bias-score rows matter to compare.html."""
    rows = []
    for s_index, (probe_set, ((a, b), _)) in enumerate(PROBE_SETS.items()):
        low, high = OWN_BIAS_CI[model]
        rows.append({"probe_set": probe_set, "metric": "bias_score", "target": "", "group_a": a, "group_b": b,
                     "n_units": 5, "effect": OWN_BIAS_SCORE[model] + 0.01 * s_index, "effect_unit": "nats",
                     "ci_low": low + 0.01 * s_index, "ci_high": high + 0.01 * s_index, "p_value": 0.001,
                     "q_value": 0.2 * alpha, "significant": True, "direction": "none",
                     "method": "mean |association gap|; percentile bootstrap"})
    return pd.DataFrame(rows, columns=list(contract.FINDINGS.names))


def _entry(label: str, role: str, run: str, *, head: str = "own") -> dict:
    model_id = BASE_ID if role == "base" else label
    return {"label": label, "role": role, "run": run,
            "model": {"id": model_id, "revision": "main", "commit": "0123abcd", "model_class": "AlbertForMaskedLM",
                      "model_type": "albert", "num_parameters": 1234567, "head": head,
                      "weights_sha256": {"model.safetensors": "ab" * 32}},
            "device": "cpu", "dtype": "float32", "utility": {"pppl": PPPL["base" if role == "base" else label]},
            "notes": [f"note {XSS_SCRIPT}"] if role != "base" else [], "created_utc": "2025-01-02T03:04:05+00:00"}


def make_compare_folder(folder: Path, *, alpha: float = 0.05, delta_margin: float = DELTA_MARGIN) -> Path:
    """Write compare_summary.json, deltas.csv and the runs' findings.csv under ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    deltas = _deltas(alpha, delta_margin)
    deltas.to_csv(folder / contract.DELTAS_FILE, index=False)
    runs = [("base", "base"), (CANDIDATES[0], "candidate_1"), (CANDIDATES[1], "candidate_2")]
    for model, run in runs:
        (folder / run).mkdir(exist_ok=True)
        _findings(model, alpha).to_csv(folder / run / contract.FINDINGS_FILE, index=False)
    base = _entry(BASE_ID, "base", "base")
    candidates = [_entry(CANDIDATES[0], "candidate", "candidate_1"),
                  _entry(CANDIDATES[1], "candidate", "candidate_2", head=f"grafted from {BASE_ID}")]
    utility = [{"candidate": c["label"], "base_pppl": PPPL["base"], "candidate_pppl": PPPL[c["label"]],
                "ratio": PPPL[c["label"]] / PPPL["base"], "sample": "neutral_sample.txt"} for c in candidates]
    changes = {c: {ch: int(((deltas["candidate"] == c) & (deltas["change"] == ch)).sum()) for ch in CHANGE_CYCLE}
               for c in CANDIDATES}
    summary = {
        "schema_version": contract.COMPARE_SCHEMA_VERSION, "tool_version": "0.1.0",
        "created_utc": "2025-01-02T03:04:05+00:00", "mode": "saved_runs", "items_sha256": "cd" * 32, "seed": 0,
        "alpha": alpha, "n_resamples": 1000, "quantize": None, "base": base, "candidates": candidates,
        "utility": utility, "changes": changes, "n_deltas": len(deltas),
        "methods": methods_text(alpha=alpha, n_resamples=1000, delta_margin=delta_margin),
        "notes": [f"a note {XSS_IMG}"],
        "files": {"deltas": contract.DELTAS_FILE, "report": contract.COMPARE_REPORT_FILE},
        "timings_s": {"deltas": 0.5},
    }
    (folder / contract.COMPARE_SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return folder
