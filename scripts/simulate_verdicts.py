"""Size, power and coverage of albert_audit.inference under realistic nulls; writes the tables to docs/inference.md.

Run once (about 5 minutes on one core):  PYTHONPATH=$PWD python scripts/simulate_verdicts.py [--quick]
The tables replace the block between the markers in docs/inference.md. Every scenario draws from its own
stream ``rng_for(seed, scenario)``, so the tables are reproducible.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.stats

from albert_audit.inference.bias import bias_score, margin_tests, paired_delta
from albert_audit.inference.crossed import crossed_delta, crossed_gap
from albert_audit.inference.margin_verdicts import CHANGES, VERDICTS, change, classify
from albert_audit.stats import rng_for
from tests.simulate import crossed_items

ALPHA = 0.05
BEGIN, END = "<!-- simulate_verdicts:begin -->", "<!-- simulate_verdicts:end -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "inference.md"


def mc_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1.0 - p), ALPHA * (1 - ALPHA)) / n)


def fmt(x: float) -> str:
    return f"{x:.3f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def rejections(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """p <= alpha per row for the naive tests and the crossed ones."""
    quasi = crossed_gap(a, b, rng=rng, variance="quasi_f", min_templates=2)
    minf = crossed_gap(a, b, rng=rng, variance="min_f", min_templates=2)
    naive = crossed_gap(a, b, rng=rng, min_terms=10**6)  # template-only sign flips (the old unit)
    k_a, k_b = quasi.n_terms_a, quasi.n_terms_b
    df = quasi.v_terms**2 / ((quasi.v_terms / 2) ** 2 / (k_a - 1) + (quasi.v_terms / 2) ** 2 / (k_b - 1))
    p_terms = 2 * scipy.stats.t.sf(np.abs(quasi.effect) / np.sqrt(quasi.v_terms), df)  # terms only (Welch)
    return {
        "templates only (sign flip)": naive.p_value <= ALPHA,
        "terms only (Welch over term means)": p_terms <= ALPHA,
        "both of these (intersection rule)": np.maximum(naive.p_value, p_terms) <= ALPHA,
        "crossed min-F'": minf.p_value <= ALPHA,
        "crossed quasi-F": quasi.p_value <= ALPHA,
    }


def size_section(seed: int, reps: int) -> str:
    rows = []
    grid = [
        (k, t, tsd, wsd)
        for k in (5, 8)
        for t in (6, 14)
        for tsd in (0.1, 0.2, 0.4)
        for wsd in (0.0, 0.2)
    ]
    for k, t, tsd, wsd in grid:
        rng = rng_for(seed, f"size/{k}/{t}/{tsd}/{wsd}")
        a, b = crossed_items(
            rng, n_rows=reps, n_templates=t, n_terms_a=k, n_terms_b=k, term_sd=tsd, template_group_sd=wsd,
            noise_sd=0.3, skew=True,
        )
        rej = rejections(a, b, rng)
        rows.append([str(k), str(t), f"{tsd}", f"{wsd}"] + [fmt(float(v.mean())) for v in rej.values()])
    header = ["terms/group", "templates", "term sd", "template x group sd", *rejections_names()]
    return (
        f"### Size at alpha = {ALPHA} (no group effect; skewed units, residual sd 0.3; {reps} targets per cell; "
        f"Monte Carlo se about {mc_se(ALPHA, reps):.3f})\n\n" + table(header, rows)
    )


def rejections_names() -> list[str]:
    return ["templates only (sign flip)", "terms only (Welch over term means)", "both of these (intersection rule)",
            "crossed min-F'", "crossed quasi-F"]


def issue_section(seed: int, reps: int) -> str:
    rows = []
    for k, tsd in ((5, 0.05), (5, 0.1), (5, 0.2), (5, 0.4), (8, 0.3)):
        rng = rng_for(seed, f"issue/{k}/{tsd}")
        a, b = crossed_items(
            rng, n_rows=reps, n_templates=14, n_terms_a=k, n_terms_b=k, term_sd=tsd, template_group_sd=0.1,
            noise_sd=0.2, skew=False,
        )
        rej = rejections(a, b, rng)
        rows.append([str(k), f"{tsd}"] + [fmt(float(v.mean())) for v in rej.values()])
    return (
        "### The issue's scenario: share of targets called significant without any group effect "
        f"(14 templates, template x group sd 0.1, residual sd 0.2, {reps} targets)\n\n"
        + table(["terms/group", "term sd", *rejections_names()], rows)
    )


def robustness_section(seed: int, reps: int) -> str:
    """Few templates (why min_templates = 5) and missing items, both variance estimates."""
    rows = []
    cells = [  # terms/group, templates, term sd, template x group sd, residual sd, share of items missing
        (5, 3, 0.1, 0.4, 0.3, 0.0), (6, 3, 0.2, 0.2, 0.0, 0.0), (5, 4, 0.1, 0.4, 0.3, 0.0),
        (6, 4, 0.2, 0.2, 0.0, 0.0), (5, 5, 0.0, 0.3, 0.1, 0.0), (6, 5, 0.1, 0.4, 0.3, 0.0),
        (8, 14, 0.1, 0.2, 0.3, 0.2), (6, 14, 0.3, 0.1, 0.3, 0.3), (6, 10, 0.0, 0.0, 0.5, 0.3),
        (6, 10, 0.2, 0.2, 0.2, 0.4),
    ]
    for k, t, tsd, wsd, nsd, miss in cells:
        rng = rng_for(seed, f"robust/{k}/{t}/{tsd}/{wsd}/{nsd}/{miss}")
        a, b = crossed_items(rng, n_rows=reps, n_templates=t, n_terms_a=k, n_terms_b=k + 1, term_sd=tsd,
                             template_group_sd=wsd, noise_sd=nsd, skew=True)
        a[rng.random(a.shape) < miss] = np.nan
        b[rng.random(b.shape) < miss] = np.nan
        got = [crossed_gap(a, b, rng=rng, variance=v, min_templates=2).p_value <= ALPHA for v in ("min_f", "quasi_f")]
        rows.append([str(k), str(t), f"{tsd}", f"{wsd}", f"{nsd}", f"{miss:.0%}"] + [fmt(float(g.mean())) for g in got])
    return (
        f"### Size with few templates and with missing items (skewed units; group b has one term more; {reps} "
        f"targets per cell; Monte Carlo se about {mc_se(ALPHA, reps):.3f}; min_templates lowered to 2 here)\n\n"
        + table(["terms/group a", "templates", "term sd", "template x group sd", "residual sd", "items missing",
                 "crossed min-F'", "crossed quasi-F"], rows)
    )


def power_section(seed: int, reps: int, variance: str) -> str:
    rows = []
    for k in (5, 8, 10):
        for gap in (0.1, 0.2, 0.3, 0.5):
            rng = rng_for(seed, f"power/{k}/{gap}")
            a, b = crossed_items(
                rng, n_rows=reps, n_templates=14, n_terms_a=k, n_terms_b=k, gap=gap, term_sd=0.2,
                template_group_sd=0.1, noise_sd=0.3, skew=True,
            )
            res = crossed_gap(a, b, rng=rng, variance=variance)
            naive = crossed_gap(a, b, rng=rng, min_terms=10**6)
            cover = (res.ci_low <= gap) & (gap <= res.ci_high)
            cover2 = (res.tost_low <= gap) & (gap <= res.tost_high)
            rows.append(
                [str(k), f"{gap}", fmt(float((res.p_value <= ALPHA).mean())),
                 fmt(float((naive.p_value <= ALPHA).mean())), fmt(float(cover.mean())), fmt(float(cover2.mean())),
                 fmt(float(np.median(res.ci_high - res.ci_low)))]
            )
    return (
        f"### Power and coverage of the crossed test ({variance}; 14 templates, term sd 0.2, template x group "
        f"sd 0.1, skewed residual sd 0.3; {reps} targets per cell)\n\n"
        + table(
            ["terms/group", "true gap", "power (crossed)", "rejections (templates only)",
             f"coverage {1 - ALPHA:.0%} CI", f"coverage {1 - 2 * ALPHA:.0%} CI", "median CI width"],
            rows,
        )
    )


def verdict_section(seed: int, n_sets: int, variance: str) -> str:
    per_set = 40
    rows = []
    for k in (5, 8):
        for gap in (0.0, 0.05, 0.1, math.log(1.25), 0.35, 0.5):
            rng = rng_for(seed, f"verdict/{k}/{gap}")
            a, b = crossed_items(
                rng, n_rows=n_sets * per_set, n_templates=14, n_terms_a=k, n_terms_b=k, gap=gap, term_sd=0.2,
                template_group_sd=0.1, noise_sd=0.3, skew=True,
            )
            res = crossed_gap(a, b, rng=rng, variance=variance)
            families = np.repeat(np.arange(n_sets), per_set)
            verdict, _, _ = classify(
                p_value=res.p_value, p_material=res.p_material, p_equivalence=res.p_equivalence,
                alpha=ALPHA, families=families,
            )
            rows.append([str(k), f"{gap:.3f}"] + [fmt(float((verdict == v).mean())) for v in VERDICTS])
    return (
        f"### Verdicts (margin log 1.25 = 0.223; {n_sets} probe sets of {per_set} targets, FDR within each set; "
        f"14 templates, term sd 0.2, template x group sd 0.1, skewed residual sd 0.3)\n\n"
        "Material is a false claim in the rows whose true gap is <= 0.223; its share there must stay <= alpha.\n\n"
        + table(["terms/group", "true gap", *VERDICTS], rows)
    )


def compare_section(seed: int, n_rows: int, variance: str) -> str:
    rows = []
    scenarios = [
        ("self-comparison", 0.0, 0.0),
        ("item noise sd 0.02", 0.02, 0.0),
        ("item noise sd 0.05", 0.05, 0.0),
        ("uniform drift +0.02 on group a", 0.0, 0.02),
        ("drift +0.02 and noise 0.02", 0.02, 0.02),
        ("drift +0.05, noise 0.02", 0.02, 0.05),
        ("real change +0.3 on group a", 0.02, 0.3),
        ("real change -0.6 on group a", 0.02, -0.6),
    ]
    for k in (4, 8):
        for name, noise, drift in scenarios:
            rng = rng_for(seed, f"compare/{k}/{name}")
            gap = rng.choice([-0.4, 0.0, 0.4], n_rows)
            a, b = crossed_items(
                rng, n_rows=n_rows, n_templates=14, n_terms_a=k, n_terms_b=k, gap=gap, term_sd=0.2,
                template_group_sd=0.1, noise_sd=0.3, skew=True,
            )
            ca = a + drift + rng.normal(0.0, noise, a.shape)
            cb = b + rng.normal(0.0, noise, b.shape)
            families = np.repeat(np.arange(n_rows // 40 + 1), 40)[:n_rows]
            verdicts = []
            for x, y in ((a, b), (ca, cb)):
                r = crossed_gap(x, y, rng=rng, variance=variance)
                v, _, _ = classify(p_value=r.p_value, p_material=r.p_material, p_equivalence=r.p_equivalence,
                                   families=families)
                verdicts.append((r.effect, v))
            dr = crossed_delta(a, b, ca, cb, rng=rng, variance=variance)
            dv, _, _ = classify(p_value=dr.p_value, p_material=dr.p_material, p_equivalence=dr.p_equivalence,
                                families=families)
            ch = change(base_effect=verdicts[0][0], base_verdict=verdicts[0][1], candidate_effect=verdicts[1][0],
                        candidate_verdict=verdicts[1][1], delta_verdict=dv)
            rows.append([str(k), name] + [fmt(float((ch == c).mean())) for c in CHANGES])
    return (
        f"### Compare: change classes (delta margin log 1.1 = 0.095; base gaps -0.4/0/0.4; {n_rows} targets; "
        "4 terms/group = scope terms, 8 = scope group)\n\n" + table(["terms/group", "candidate", *CHANGES], rows)
    )


def _bias_set(rng: np.random.Generator, delta: np.ndarray, n_templates: int) -> np.ndarray:
    """Per-template gaps of one probe set: true target gaps, a template effect shared by all targets, skewed
    noise sd 0.4."""
    common = rng.normal(0.0, 0.2, (1, n_templates))
    z = np.exp(rng.standard_normal((delta.size, n_templates)))
    noise = (z - math.exp(0.5)) / math.sqrt((math.e - 1) * math.e) * 0.4
    return delta[:, None] + common + noise


def _bias_verdict(res, margin: float) -> str:
    """The findings' verdict of a single bias-score row (a one-row family: q = p)."""
    p_material, p_equivalence = margin_tests(res, margin)
    if p_material <= ALPHA:
        return "material"
    if p_equivalence <= ALPHA:
        return "negligible"
    return "below_margin" if min(1.0, 2.0 * res.p_value) <= ALPHA else "inconclusive"


def bias_section(seed: int, reps: int) -> str:
    rows = []
    n_targets, n_templates = 30, 14
    margin = math.log(1.25)
    for truth_sd in (0.0, 0.05, 0.1, 0.3, 0.5):
        rng = rng_for(seed, f"bias/{truth_sd}")
        cover = cover_naive = 0
        lows = []
        scores = []
        verdicts = {v: 0 for v in VERDICTS}
        for _ in range(reps):
            delta = rng.normal(0.0, truth_sd, n_targets)
            theta = math.sqrt(float(np.mean(delta**2)))
            d = _bias_set(rng, delta, n_templates)
            res = bias_score(d, rng=rng, alpha=ALPHA)
            cover += res.ci_low <= theta <= res.ci_high
            lows.append(res.ci_low)
            scores.append(res.score)
            verdicts[_bias_verdict(res, margin)] += 1
            # naive: mean |gap| with a percentile bootstrap over templates
            idx = rng.integers(0, n_templates, (400, n_templates))
            boot = np.abs(d[:, idx].mean(axis=2)).mean(axis=0)
            lo, hi = np.quantile(boot, [ALPHA / 2, 1 - ALPHA / 2])
            truth_naive = float(np.mean(np.abs(delta)))
            cover_naive += lo <= truth_naive <= hi
        rows.append([f"{truth_sd}", fmt(cover / reps), fmt(float(np.mean(scores))), fmt(float(np.mean(lows))),
                     fmt(cover_naive / reps)] + [fmt(verdicts[v] / reps) for v in VERDICTS])
    return (
        f"### Bias score coverage and verdicts ({n_targets} targets, {n_templates} templates, template effect "
        f"common to all targets sd 0.2, skewed noise sd 0.4; margin log 1.25 = 0.223; {reps} probe sets per row)"
        "\n\n"
        + table(["true gaps sd", "coverage (debiased RMS)", "mean score", "mean lower end",
                 "coverage (naive mean abs gap, percentile bootstrap)"] + list(VERDICTS), rows)
    )


def bias_delta_section(seed: int, reps: int) -> str:
    """compare's bias-score delta (paired jackknife t interval, model-swap test) under no change and a change."""
    rows = []
    n_targets, n_templates = 30, 14
    margin = math.log(1.1)
    cases = (("self-comparison", 0.3, 1.0, 0.0), ("item noise sd 0.02", 0.3, 1.0, 0.02),
             ("item noise sd 0.05, no bias", 0.0, 1.0, 0.05), ("true gaps x 1.5", 0.3, 1.5, 0.02),
             ("true gaps x 0.5", 0.3, 0.5, 0.02))
    for name, truth_sd, factor, noise_sd in cases:
        rng = rng_for(seed, f"bias_delta/{name}")
        cover = reject = 0
        verdicts = {v: 0 for v in VERDICTS}
        for _ in range(reps):
            delta = rng.normal(0.0, truth_sd, n_targets)
            base = _bias_set(rng, delta, n_templates)
            cand = base + (factor - 1.0) * delta[:, None] + rng.normal(0.0, noise_sd, base.shape) * (noise_sd > 0)
            truth = math.sqrt(float(np.mean((factor * delta) ** 2))) - math.sqrt(float(np.mean(delta**2)))
            res = paired_delta(base, cand, rng=rng, alpha=ALPHA, margin=margin, n_resamples=2000)
            cover += res.ci_low <= truth <= res.ci_high
            reject += res.p_value <= ALPHA
            verdict = ("material" if res.p_material <= ALPHA else "negligible" if res.p_equivalence <= ALPHA
                       else "below_margin" if res.p_value <= ALPHA else "inconclusive")
            verdicts[verdict] += 1
        rows.append([name, fmt(cover / reps), fmt(reject / reps)] + [fmt(verdicts[v] / reps) for v in VERDICTS])
    return (
        f"### Bias score delta in compare ({n_targets} targets, {n_templates} templates, base as above with true "
        f"gaps sd 0.3 unless stated; delta margin log 1.1 = 0.095; {reps} pairs of models per row; coverage of "
        "the true change of the RMS gap)\n\n"
        + table(["candidate", "coverage", "p <= 0.05"] + list(VERDICTS), rows)
    )


def terms_scope_section(seed: int, reps: int) -> str:
    rows = []
    for k, t in ((2, 14), (4, 14), (4, 8)):
        rng = rng_for(seed, f"terms/{k}/{t}")
        # the claim is about these terms: their own gap is 0 (no term effects to generalise over)
        a, b = crossed_items(rng, n_rows=reps, n_templates=t, n_terms_a=k, n_terms_b=k, term_sd=0.0,
                             template_group_sd=0.1, noise_sd=0.3, skew=True)
        res = crossed_gap(a, b, rng=rng)
        rows.append([str(k), str(t), str(res.scope[0]), fmt(float((res.p_value <= ALPHA).mean())),
                     fmt(float((res.p_material <= ALPHA).mean()))])
    return (
        f"### Scope 'terms' (fewer than 5 terms per group): size of the template-only exact sign-flip test for a "
        f"claim about these terms ({reps} targets)\n\n"
        + table(["terms/group", "templates", "scope", "size (p <= 0.05)", "material at gap 0"], rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--quick", action="store_true", help="small replication counts (a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    reps = int(4000 * scale)
    variance = "quasi_f"
    start = time.time()
    parts = [
        f"Generated by `scripts/simulate_verdicts.py --seed {args.seed}`" + (" --quick" if args.quick else ""),
        issue_section(args.seed, reps),
        size_section(args.seed, reps),
        robustness_section(args.seed, 2 * reps),
        terms_scope_section(args.seed, reps),
        power_section(args.seed, reps, variance),
        verdict_section(args.seed, max(2, int(50 * scale)), variance),
        compare_section(args.seed, reps, variance),
        bias_section(args.seed, max(20, int(400 * scale))),
        bias_delta_section(args.seed, max(20, int(400 * scale))),
    ]
    text = "\n\n".join(parts)
    print(text)
    print(f"\n({time.time() - start:.0f} s)", file=sys.stderr)
    if not args.no_write:
        doc = DOC.read_text(encoding="utf-8")
        if BEGIN not in doc or END not in doc:
            print(f"{DOC}: markers {BEGIN} / {END} missing", file=sys.stderr)
            return 1
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(head + BEGIN + "\n" + text + "\n" + END + tail, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
