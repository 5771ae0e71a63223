"""Speed of the statistics stage (``compute_findings``) against the scoring time of a run.

Without arguments: scores nothing; builds the items of every shipped probe set (the real shape: probe sets,
templates, groups, terms, targets) with synthetic log-probs and top-k fills, and times ``compute_findings``
with the default 10,000 resamples. With a run folder (items/targets/fills.parquet and summary.json with
``timings_s.score``), times ``compute_findings`` on that run's tables and prints the ratio stats time /
scoring time (target: under 10%).

    python bench/stats_speed.py [RUN_DIR] [--n-resamples 10000] [--seed 0] [--top-k 10] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from albert_audit.library import list_shipped  # noqa: E402
from albert_audit.metrics import compute_findings  # noqa: E402
from albert_audit.probeset import load_probe_sets  # noqa: E402
from albert_audit.probeset.expand import expand_items  # noqa: E402


def synthetic_run(*, seed: int = 0, top_k: int = 10, vocab: int = 30_000) -> tuple[pd.DataFrame, ...]:
    """Items of every shipped probe set plus synthetic targets and fills tables of the same size as a run."""
    rng = np.random.default_rng(seed)
    probe_sets = load_probe_sets(list_shipped())
    items = expand_items(probe_sets)
    targets_of = {p.name: list(p.targets) for p in probe_sets}
    # targets: template x target base log-prob, a small group effect, term noise; prior without the group
    parts = []
    for (name, _), sub in items.groupby(["probe_set", "template_id"], sort=False):
        names = targets_of[name]
        if not names:
            continue
        base = rng.normal(-9.0, 2.0, len(names))
        group_code = pd.factorize(sub["group"])[0]
        shift = rng.normal(0.0, 0.2, (group_code.max() + 1, len(names)))
        logprob = base + shift[group_code] + rng.normal(0.0, 0.5, (len(sub), len(names)))
        parts.append(
            pd.DataFrame(
                {
                    "item_id": np.repeat(sub["item_id"].to_numpy(), len(names)),
                    "target": np.tile(names, len(sub)),
                    "n_pieces": 1,
                    "logprob": logprob.ravel(),
                    "term_logprob": logprob.ravel(),
                    "term_prior_logprob": np.tile(base - 0.3, len(sub)),
                }
            )
        )
    targets = pd.concat(parts, ignore_index=True)
    # fills: each template has its own Zipf-like candidate list; terms re-weight it
    rows = []
    for _, sub in items.groupby(["probe_set", "template_id"], sort=False):
        candidates = rng.choice(vocab, 60, replace=False)
        base = -np.log(np.arange(1, 61)) * 1.2
        for item_id in sub["item_id"]:
            logits = base + rng.normal(0.0, 0.8, 60)
            prob = np.exp(logits) / np.exp(logits).sum() * 0.7
            top = np.argsort(-prob)[:top_k]
            rows.append(
                pd.DataFrame(
                    {
                        "item_id": item_id,
                        "rank": np.arange(1, top_k + 1),
                        "token_id": candidates[top],
                        "token": [f"tok{c}" for c in candidates[top]],
                        "prob": prob[top],
                        "logprob": np.log(prob[top]),
                    }
                )
            )
    fills = pd.concat(rows, ignore_index=True)
    return items, targets, fills


def time_findings(
    tables: tuple[pd.DataFrame, ...], *, seed: int, n_resamples: int, repeats: int
) -> tuple[float, float, pd.DataFrame]:
    """Best wall-clock and CPU seconds of ``compute_findings`` over ``repeats`` runs."""
    best_wall = best_cpu = float("inf")
    findings = pd.DataFrame()
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        findings = compute_findings(*tables, seed=seed, n_resamples=n_resamples)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", help="a run folder of `albert-audit run` (optional)")
    parser.add_argument("--n-resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    if args.run_dir:
        folder = Path(args.run_dir)
        tables = tuple(pd.read_parquet(folder / f"{name}.parquet") for name in ("items", "targets", "fills"))
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        label = f"run {folder}"
    else:
        tables = synthetic_run(seed=args.seed, top_k=args.top_k)
        summary = None
        label = "synthetic run of all shipped probe sets"
    items, targets, fills = tables
    print(
        f"{label}: {items['probe_set'].nunique()} probe sets, {len(items)} items, {len(targets)} target "
        f"rows, {len(fills)} fill rows; {args.n_resamples} resamples"
    )
    wall, cpu, findings = time_findings(
        tables, seed=args.seed, n_resamples=args.n_resamples, repeats=args.repeats
    )
    counts = findings["metric"].value_counts().to_dict()
    print(f"compute_findings: {wall:.2f} s wall, {cpu:.2f} s CPU, {len(findings)} rows {counts}")
    if summary is not None:
        score = float(summary.get("timings_s", {}).get("score", float("nan")))
        recorded = summary.get("timings_s", {}).get("stats")
        print(f"scoring time (summary.json): {score:.2f} s; stats recorded in the run: {recorded}")
        print(f"ratio stats / scoring: {wall / score:.1%} (target < 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
