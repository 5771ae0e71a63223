"""`albert-audit demo`: the shipped demo models (a planted bias), audited and compared offline on the CPU."""

from __future__ import annotations

from pathlib import Path

from albert_audit.api.compare import compare_models
from albert_audit.api.options import CompareConfig, CompareResult
from albert_audit.errors import AuditError

DEMO_MODELS_DIR = Path(__file__).resolve().parent.parent / "demo_models"


def demo_paths() -> tuple[Path, Path, Path]:
    """The shipped demo base model, its fine-tuned descendant and the demo probe set."""
    base, descendant = DEMO_MODELS_DIR / "base", DEMO_MODELS_DIR / "descendant"
    probes = DEMO_MODELS_DIR / "demo_probes.yaml"
    for path in (base / "config.json", descendant / "config.json", probes):
        if not path.is_file():
            raise AuditError(f"{path}: the demo models are not installed; build them with "
                             "`python scripts/make_demo_models.py`")
    return base, descendant, probes


def run_demo(out: str | Path, *, seed: int = 0, progress: bool = True) -> CompareResult:
    """`albert-audit demo`: audit the demo base, compare the descendant against it, write both reports.

    Everything is local (no network) and runs on the CPU: the demo models are tiny. Their pseudo-perplexity
    is measured on an in-domain neutral sample (the demo corpus's filler sentences): the shipped English sample
    is mostly outside their 427-piece vocabulary.
    """
    base, descendant, probes = demo_paths()
    config = CompareConfig(out=Path(out), base=str(base), candidates=[str(descendant)], probes=[str(probes)],
                           device="cpu", dtype="float32", offline=True, seed=seed, progress=progress,
                           utility_sample=DEMO_MODELS_DIR / "neutral_sample.txt")
    return compare_models(config)
