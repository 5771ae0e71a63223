"""The reports' formatting kit: how a number, p/q-value, interval, ratio, confidence level, slug or piece of
metadata is written on report.html and compare.html (one definition for both pages).

Every function takes anything (a float, a numpy scalar, None, a string) and returns text; a missing or
non-finite value is "—". The returned text is plain: the autoescaping templates escape it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

MISSING = "—"
SLUG_MAX = 40


def finite(value: Any) -> bool:
    """True for a value that converts to a finite float."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def finite_mask(values: pd.Series) -> pd.Series:
    """Boolean mask of the finite numbers of a column (a real bool Series even when the table is empty)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return pd.Series(np.isfinite(numbers.to_numpy()), index=values.index, dtype=bool)


def as_float(value: Any) -> float:
    """The value as a float; NaN when it is missing or not finite."""
    return float(value) if finite(value) else float("nan")


def number(value: Any, digits: int = 2, *, signed: bool = False, keep_tiny: bool = False) -> str:
    """A number with ``digits`` decimals ("+" in front of positives when ``signed``); "—" when missing.

    With ``keep_tiny`` a non-zero value that would print as zero is written with two significant digits
    (``1.2e-04``), so that a small change never reads as no change.
    """
    if not finite(value):
        return MISSING
    x = float(value) + 0.0  # -0.0 prints as 0.00
    sign = "+" if signed else ""
    if keep_tiny and x != 0.0 and abs(x) < 0.5 * 10.0**-digits:
        return f"{x:{sign}.1e}"
    return f"{x:{sign}.{digits}f}"


def p_value(value: Any) -> str:
    """A p- or q-value: "< 0.001" below 0.001, else three decimals; "—" when missing."""
    if not finite(value):
        return MISSING
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def q_phrase(value: Any) -> str:
    """``q < 0.001`` or ``q = 0.012`` (for sentences)."""
    text = p_value(value)
    return f"q {text}" if text.startswith("<") else f"q = {text}"


def ci(low: Any, high: Any, digits: int = 2, *, signed: bool = False, keep_tiny: bool = False) -> str:
    """``[low, high]`` written like :func:`number`; "—" when either bound is missing."""
    if not (finite(low) and finite(high)):
        return MISSING
    return (f"[{number(low, digits, signed=signed, keep_tiny=keep_tiny)}, "
            f"{number(high, digits, signed=signed, keep_tiny=keep_tiny)}]")


def ratio(value: float) -> str:
    """A probability ratio: one decimal below 100, whole numbers up to 100,000, then 3 significant digits."""
    if not math.isfinite(value):
        return "∞" if value > 0 else MISSING
    if value < 100:
        return f"{value:.1f}"
    if value < 100_000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def margin(value: Any, unit: str = "nats") -> str:
    """A practical margin: ``0.223 nats (1.25x)`` for a log-ratio margin, else the number and its unit."""
    if not finite(value):
        return MISSING
    x = float(value)
    if unit == "nats":
        return f"{x:.3g} nats ({math.exp(x):.3g}x)"
    return f"{x:.3g} {unit}".strip()


def margin_ratio(value: Any) -> str:
    """A log-ratio margin as its probability ratio: ``1.25x``."""
    return f"{math.exp(float(value)):.3g}x" if finite(value) else MISSING


def share(p: Any) -> str:
    """A probability as a percentage with one decimal ("< 0.1%" below that)."""
    percent = 100.0 * float(p)
    return "< 0.1%" if percent < 0.1 else f"{percent:.1f}%"


def alpha_text(alpha: float) -> str:
    """The FDR level as the pages print it (``0.05``, ``0.025``)."""
    return f"{alpha:g}"


def ci_level(alpha: float) -> str:
    """The confidence level 1 - alpha of the intervals, exactly: 0.05 -> "95%", 0.025 -> "97.5%".

    Never ``f"{1 - alpha:.0%}"``, which rounds 97.5% to "98%".
    """
    return f"{round((1.0 - alpha) * 100, 6):g}%"


def ci_label(alpha: float) -> str:
    """The header of an interval column and the prefix of an interval in sentences: "97.5% CI"."""
    return f"{ci_level(alpha)} CI"


def attr(value: Any) -> str | None:
    """The exact value for a ``data-*`` attribute (round-trips through float), or None when missing."""
    return repr(float(value)) if finite(value) else None


def short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slug(text: Any) -> str:
    """An id-safe fragment of a name: lower-case letters and digits joined by "-", at most 40 characters."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:SLUG_MAX] or "x"


def text(value: Any) -> str:
    """A metadata value as text: "—" when missing (None, "", NaN), floats as ``g``, dicts and lists as JSON."""
    if value is None or (isinstance(value, str) and value == ""):
        return MISSING
    if isinstance(value, float):
        return f"{value:g}" if not math.isnan(value) else MISSING
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def seconds(value: Any) -> str:
    """A duration: ``2.25 s``."""
    return f"{float(value):.2f} s" if finite(value) else MISSING


def pair(group_a: str, group_b: str) -> str:
    """``a vs b``; "" for a row without groups."""
    return f"{group_a} vs {group_b}" if group_a or group_b else ""


def alpha_of(summary: dict[str, Any]) -> float:
    """The FDR level a summary.json or compare_summary.json records (0.05 when it records none)."""
    return float(summary["alpha"]) if finite(summary.get("alpha")) else 0.05
