"""The import contracts (pyproject.toml, run by lint-imports in tests/test_cli.py) cover every module of the
package: a new top-level module must be given its layer and, unless it is the engine, the API or the CLI, is
kept free of torch, transformers and the engine, and never imports the API."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import albert_audit

REPO = Path(__file__).resolve().parents[1]
MODULES = {info.name for info in pkgutil.iter_modules(albert_audit.__path__)}
"""The package's top-level modules and subpackages."""
MODEL_SIDE = {"engine", "api", "cli", "lineage"}
"""The only modules that may reach torch and transformers (the API, the CLI and the lineage command, which calls
the API on Ray workers, through the engine, inside functions)."""
API_CALLERS = {"api", "cli", "lineage"}
"""The API itself and the modules above it that call it."""


def _contract(name_start: str) -> dict:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    found = [c for c in contracts["contracts"] if c["name"].startswith(name_start)]
    assert len(found) == 1, f"one contract named {name_start!r}..."
    return found[0]


def _short(modules: list[str]) -> list[str]:
    return [m.removeprefix("albert_audit.") for m in modules]


def test_the_package_has_the_modules_this_test_expects():
    assert {"engine", "api", "cli", "probeset", "inference", "benchmarks", "errors"} <= MODULES


def test_every_module_has_its_layer_and_the_layers_are_exhaustive():
    layers = _contract("Stages flow one way")
    assert layers["containers"] == ["albert_audit"] and layers["exhaustive"] is True
    listed = [name.strip() for layer in layers["layers"] for name in re.split(r"[|:]", layer)]
    assert sorted(listed) == sorted(MODULES), "give every top-level module its layer in pyproject.toml"


def test_every_module_but_the_model_side_is_kept_free_of_torch():
    contract = _contract("Everything but the engine, the API and the CLI is free of the model")
    assert set(contract["forbidden_modules"]) == {"torch", "transformers", "albert_audit.engine"}
    assert sorted(_short(contract["source_modules"])) == sorted(MODULES - MODEL_SIDE)


def test_no_stage_imports_the_api():
    contract = _contract("No stage imports the API")
    assert contract["forbidden_modules"] == ["albert_audit.api"]
    assert contract.get("allow_indirect_imports", False) is False
    assert sorted(_short(contract["source_modules"])) == sorted(MODULES - API_CALLERS)
