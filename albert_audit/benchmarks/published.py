"""Published benchmark numbers for context: the shipped ``albert_audit/data/published_numbers.yaml``.

One data file holds every published number the reports show (never computed, never compared in a test):
per benchmark, a list of sources with the model, the method variant, whether the numbers are computed the
way this tool computes the benchmark (``comparable``), the citation, its URL and the values. Only numbers
read in the cited source are in the file; none is for an ALBERT checkpoint (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from albert_audit.errors import AuditError

FILE = "published_numbers.yaml"
_SOURCE_KEYS = ("model", "source", "citation", "url", "variant", "comparable", "values")
_VALUE_KEYS = ("metric", "subgroup", "value")


@dataclass(frozen=True)
class PublishedValue:
    """One published number."""

    metric: str
    subgroup: str
    value: float


@dataclass(frozen=True)
class PublishedSource:
    """One source's numbers for one model on one benchmark."""

    model: str
    source: str
    citation: str
    url: str
    variant: str
    comparable: bool
    values: tuple[PublishedValue, ...]


def shipped_path() -> Path:
    """The shipped data file."""
    return Path(str(resources.files("albert_audit") / "data" / FILE))


def _source(item: Any, where: str) -> PublishedSource:
    if not isinstance(item, dict) or set(item) != set(_SOURCE_KEYS):
        raise AuditError(f"{where}: expected the keys {', '.join(_SOURCE_KEYS)}")
    if not isinstance(item["comparable"], bool) or not isinstance(item["values"], list) or not item["values"]:
        raise AuditError(f"{where}: comparable must be true or false and values a non-empty list")
    values = []
    for n, value in enumerate(item["values"], start=1):
        if not isinstance(value, dict) or set(value) != set(_VALUE_KEYS) or isinstance(value["value"], bool) \
                or not isinstance(value["value"], (int, float)):
            raise AuditError(f"{where}: value {n}: expected metric, subgroup and a number value")
        values.append(PublishedValue(str(value["metric"]), str(value["subgroup"]), float(value["value"])))
    return PublishedSource(**{k: str(item[k]) for k in _SOURCE_KEYS[:5]}, comparable=item["comparable"],
                           values=tuple(values))


def load_published(path: str | Path | None = None) -> dict[str, tuple[PublishedSource, ...]]:
    """``{benchmark: sources}`` from the data file (default: the shipped one); a malformed file is one
    AuditError line naming it and the entry."""
    path = Path(path) if path is not None else shipped_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AuditError(f"{path}: cannot read the published numbers ({str(exc).splitlines()[0][:80]})") from exc
    if not isinstance(data, dict):
        raise AuditError(f"{path}: expected a mapping of benchmark names to lists of sources")
    out = {}
    for name, sources in data.items():
        if not isinstance(sources, list):
            raise AuditError(f"{path}: {name}: expected a list of sources")
        out[str(name)] = tuple(_source(s, f"{path}: {name} source {i}") for i, s in enumerate(sources, start=1))
    return out
