"""The run metadata of report.html (from summary.json): the page header and the appendix tables."""

from __future__ import annotations

from typing import Any

from albert_audit.report import fmt


def run_header(summary: dict[str, Any], probe_sets: list[str]) -> dict[str, Any]:
    """The page header: model, revision, shortened weight hashes, date, device, probe sets, library versions."""
    model = summary.get("model") or {}
    hashes = model.get("weights_sha256") or {}
    if isinstance(hashes, dict) and hashes:
        weights = "; ".join(f"{f}: {str(h)[:16]}…" if len(str(h)) > 16 else f"{f}: {h}"
                            for f, h in hashes.items())
    else:
        weights = "—"
    runtime = summary.get("runtime") or {}
    return {
        "model_id": fmt.text(model.get("id")),
        "revision": fmt.text(model.get("revision")),
        "commit": fmt.text(model.get("commit")),
        "weights": weights,
        "date": fmt.text(summary.get("created_utc")),
        "device": fmt.text(summary.get("device")),
        "dtype": fmt.text(summary.get("dtype")),
        "probe_sets": ", ".join(probe_sets) or "—",
        "versions": " · ".join(f"{k} {v}" for k, v in runtime.items()) or "—",
        "tool_version": fmt.text(summary.get("tool_version")),
    }


_SHOWN_SUMMARY_KEYS = {"schema_version", "tool_version", "created_utc", "model", "runtime", "device", "dtype",
                       "batch_size", "seed", "alpha", "n_resamples", "top_k", "timings_s", "counts",
                       "probe_files", "multi_piece_method"}


def run_appendix(summary: dict[str, Any]) -> dict[str, Any]:
    """The appendix: every recorded value of summary.json, grouped (values not shown elsewhere under "other")."""
    model = summary.get("model") or {}
    model_rows = [(k, fmt.text(v)) for k, v in model.items() if k != "weights_sha256"]
    hashes = model.get("weights_sha256") or {}
    weights = [{"file": str(f), "sha256": str(h)} for f, h in hashes.items()] if isinstance(hashes, dict) else []
    batch = summary.get("batch_size")
    run_rows = [
        ("tool version", fmt.text(summary.get("tool_version"))),
        ("summary schema version", fmt.text(summary.get("schema_version"))),
        ("created (UTC)", fmt.text(summary.get("created_utc"))),
        ("device", fmt.text(summary.get("device"))),
        ("dtype", fmt.text(summary.get("dtype"))),
        ("batch size", fmt.text(batch)),
        ("seed", fmt.text(summary.get("seed"))),
        ("alpha (FDR level)", fmt.text(summary.get("alpha"))),
        ("bootstrap resamples", fmt.text(summary.get("n_resamples"))),
        ("top-k fills saved", fmt.text(summary.get("top_k"))),
        ("multi-piece target method", fmt.text(summary.get("multi_piece_method"))),
    ]
    counts = [(k, fmt.text(v)) for k, v in (summary.get("counts") or {}).items()]
    timings = [(k, fmt.seconds(v)) for k, v in (summary.get("timings_s") or {}).items()]
    versions = [(k, fmt.text(v)) for k, v in (summary.get("runtime") or {}).items()]
    files = [{"name": fmt.text(f.get("name")), "path": fmt.text(f.get("path")), "sha256": fmt.text(f.get("sha256"))}
             for f in summary.get("probe_files") or [] if isinstance(f, dict)]
    other = [(k, fmt.text(v)) for k, v in summary.items() if k not in _SHOWN_SUMMARY_KEYS]
    return {"model": model_rows, "weights": weights, "run": run_rows, "counts": counts, "timings": timings,
            "versions": versions, "probe_files": files, "other": other}
