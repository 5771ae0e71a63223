"""Where the tests find the reference data sets (never shipped): ../shared/data beside the checkout."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_data(relative: str) -> Path:
    """The first existing ``shared/data/<relative>`` beside the repository or one level up (a worktree)."""
    candidates = [REPO.parent / "shared" / "data" / relative, REPO.parent.parent / "shared" / "data" / relative]
    return next((c for c in candidates if c.exists()), candidates[0])


def one_torch_thread():
    """Generator for a fixture: torch on one thread while a test module runs (on a shared 2-core machine
    two threads spin against other processes and run tiny models ~30x slower), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
