"""The lineage: a root base model and its descendants, each with a parent, a label and a kind.

Four sources make the same :class:`Lineage`:

* a **manifest** (YAML, safe loader; every problem reported at once as ``PATH:LINE: problem``, like probe
  files)::

      schema_version: 1                 # optional; 1 is the only version
      name: my_zoo                      # optional, [A-Za-z0-9_.-]+
      base: albert-large-v2             # hub id or folder; or a mapping {model, revision, label}
      descendants:
        - model: my-org/albert-ft       # hub id or folder (relative folders: relative to the manifest)
          label: ft                     # optional: folder name / hub name; [A-Za-z0-9_.-]+, unique
          parent: base                  # optional: a label; default the base
          revision: v1.0                # optional: hub branch, tag or commit
          kind: auto                    # optional: auto, mlm, grafted or task (albert_audit.lineage.kinds)

* a **folder of model folders** (every sub-folder with a config.json is a descendant of ``--base``; a
  folder whose model card names a sibling as its ``base_model`` gets that sibling as parent);
* a **folder of model cards** (offline: ``<org>--<name>.md`` or ``<org>--<name>/README.md`` files whose
  ``base_model`` metadata links them), or the hub cache's cards;
* the **hub's model tree** (online: every model whose card names the root, then theirs, breadth first).

Nodes come root first, every parent before its children.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from albert_audit import inputs
from albert_audit.errors import AuditError, quoted, shown

MANIFEST_SCHEMA_VERSION = 1
MAX_MANIFEST_BYTES = 5 * 2**20
KINDS = ("auto", "mlm", "grafted", "task")
"""``kind`` values of a manifest entry; ``auto`` detects it from the checkpoint (albert_audit.lineage.kinds)."""
ROOT_KEYS = ("schema_version", "name", "base", "descendants")
ENTRY_KEYS = ("model", "label", "parent", "revision", "kind")
BASE_KEYS = ("model", "label", "revision", "kind")
LABEL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
"""A label names its run folder, so it is a plain file name."""
MAX_NODES = 10_000


@dataclass(frozen=True)
class Node:
    """One model of a lineage."""

    label: str
    """Unique name; its run folder is ``OUT/runs/<label>``."""
    model: str
    """Hub id or local folder (absolute)."""
    revision: str | None = None
    parent: str | None = None
    """The parent's label; None for the root."""
    kind: str = "auto"
    line: int = 0
    """Where it was declared (manifest line; 0 otherwise)."""


@dataclass
class Lineage:
    """A root and its descendants, root first, every parent before its children."""

    name: str
    source: str
    """Where the tree came from, in words (``manifest PATH``, ``folder DIR``, ...)."""
    nodes: list[Node] = field(default_factory=list)

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def node(self, label: str) -> Node:
        for node in self.nodes:
            if node.label == label:
                return node
        raise KeyError(label)

    def children(self, label: str) -> list[Node]:
        return [n for n in self.nodes if n.parent == label]

    def ancestors(self, label: str) -> list[Node]:
        """Parent, grandparent, ..., root."""
        out: list[Node] = []
        node = self.node(label)
        while node.parent is not None:
            node = self.node(node.parent)
            out.append(node)
        return out

    def depth(self, label: str) -> int:
        return len(self.ancestors(label))

    def tree_order(self) -> list[Node]:
        """Depth-first order (each node followed by its subtree), children in declaration order: the order of
        the report's tree and dot plot."""
        out: list[Node] = []

        def visit(node: Node) -> None:
            out.append(node)
            for child in self.children(node.label):
                visit(child)

        visit(self.root)
        return out


# ---------------------------------------------------------------------------------------------- manifest


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.lines.append(f"{self.path}:{line}: {message}")


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _mapping(node: yaml.Node, keys: tuple[str, ...], what: str, problems: _Problems) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, f"{what} must be a mapping")
        return {}
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            problems.add(key_node, f"{what}: keys must be text")
            continue
        key = key_node.value
        if key in out:
            problems.add(key_node, f"{what}: duplicate key {shown(repr(key))}")
        elif key not in keys:
            problems.add(key_node, f"{what}: unknown key {shown(repr(key))}{_suggest(key, keys)}; expected "
                                   f"{', '.join(keys)}")
        else:
            out[key] = value_node
    return out


def _text(node: yaml.Node | None, what: str, problems: _Problems, *, allow_int: bool = False) -> str | None:
    """A scalar text value (a YAML string; an integer too where ``allow_int``, e.g. a revision)."""
    if node is None:
        return None
    tags = ("tag:yaml.org,2002:str",) + (("tag:yaml.org,2002:int",) if allow_int else ())
    if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
        kind = "null" if node.tag.endswith(":null") else node.tag.rsplit(":", 1)[-1] if isinstance(
            node, yaml.ScalarNode) else "a list or mapping"
        problems.add(node, f"{what} must be text, got {kind} (quote it)")
        return None
    value = node.value
    if not value.strip():
        problems.add(node, f"{what} is empty")
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.add(node, f"{what} {quoted(value)} contains control characters")
        return None
    return value


def _model_ref(value: str, base_dir: Path) -> str:
    """A manifest's model reference: an existing folder relative to the manifest becomes absolute; anything
    else (a hub id, an absolute path) stays as written."""
    candidate = (base_dir / value).expanduser()
    try:
        if not Path(value).is_absolute() and candidate.is_dir():
            return str(candidate.resolve())
    except (OSError, ValueError):
        pass
    path = Path(value).expanduser()
    try:
        if path.is_dir():
            return str(path.resolve())
    except (OSError, ValueError):
        pass
    return value


def default_label(model: str) -> str:
    """The label of a model without one: its folder's or hub name's last part, made a plain file name."""
    name = Path(model.rstrip("/")).name or model
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-") or "model"
    return label[:80]


def load_manifest(path: str | Path) -> Lineage:
    """Read and validate a lineage manifest; AuditError with every problem, one ``PATH:LINE: problem`` each."""
    path = Path(path)
    text = inputs.read_text_limited(path, what="a lineage manifest", max_bytes=MAX_MANIFEST_BYTES)
    where = shown(path, limit=240)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise AuditError(f"{where}:{line}: invalid YAML: {shown(exc.problem or exc, limit=120)}") from None
    except yaml.YAMLError as exc:
        raise AuditError(f"{where}:1: invalid YAML: {shown(exc, limit=120)}") from None
    if root is None:
        raise AuditError(f"{where}:1: the manifest is empty; it needs base: and descendants:")
    problems = _Problems(where)
    fields_ = _mapping(root, ROOT_KEYS, "the manifest", problems)
    if problems.lines and not fields_:
        raise AuditError("\n".join(problems.lines))
    version = fields_.get("schema_version")
    if version is not None and (not isinstance(version, yaml.ScalarNode) or version.value != "1"):
        problems.add(version, f"schema_version {shown(repr(getattr(version, 'value', '?')))}: this tool reads "
                              f"{MANIFEST_SCHEMA_VERSION}")
    name = _text(fields_.get("name"), "name", problems) or path.stem
    if not LABEL_RE.fullmatch(name):
        problems.add(fields_.get("name"), f"name {quoted(name)}: use letters, digits, '_', '.' and '-'")
    base_dir = path.resolve().parent
    nodes: list[Node] = []
    base_node = fields_.get("base")
    if base_node is None:
        problems.add(root, "missing key 'base' (the root model: a hub id or folder)")
    else:
        nodes += _entry(base_node, "base", BASE_KEYS, base_dir, problems, parent_allowed=False)
    entries = fields_.get("descendants")
    if entries is None:
        problems.add(root, "missing key 'descendants' (a list of models)")
    elif not isinstance(entries, yaml.SequenceNode):
        problems.add(entries, "descendants must be a list of models")
    else:
        if len(entries.value) + 1 > MAX_NODES:
            problems.add(entries, f"{len(entries.value)} descendants: over the limit of {MAX_NODES - 1}")
        else:
            for index, entry in enumerate(entries.value, start=1):
                nodes += _entry(entry, f"descendant {index}", ENTRY_KEYS, base_dir, problems, parent_allowed=True)
    if not problems.lines:
        nodes = _link(nodes, problems)
    if problems.lines:
        raise AuditError("\n".join(problems.lines))
    return Lineage(name=name, source=f"manifest {path}", nodes=nodes)


def _entry(node: yaml.Node, what: str, keys: tuple[str, ...], base_dir: Path, problems: _Problems, *,
           parent_allowed: bool) -> list[Node]:
    if isinstance(node, yaml.ScalarNode):  # a bare model reference
        value = _text(node, what, problems)
        if value is None:
            return []
        model = _model_ref(value, base_dir)
        return [Node(label=default_label(value), model=model, parent="" if parent_allowed else None,
                     line=node.start_mark.line + 1)]
    values = _mapping(node, keys, what, problems)
    if not values and not isinstance(node, yaml.MappingNode):
        return []
    if "model" not in values:
        problems.add(node, f"{what}: missing key 'model' (a hub id or folder)")
        return []
    model = _text(values["model"], f"{what}: model", problems)
    label = _text(values.get("label"), f"{what}: label", problems)
    revision = _text(values.get("revision"), f"{what}: revision", problems, allow_int=True)
    kind = _text(values.get("kind"), f"{what}: kind", problems) or "auto"
    parent = _text(values.get("parent"), f"{what}: parent", problems) if parent_allowed else None
    if kind not in KINDS:
        problems.add(values.get("kind"), f"{what}: kind {quoted(kind)}{_suggest(kind, KINDS)}; expected "
                                         f"{', '.join(KINDS)}")
    if model is None:
        return []
    label = label or default_label(model)
    if not LABEL_RE.fullmatch(label):
        problems.add(values.get("label") or values["model"],
                     f"{what}: label {quoted(label)}: use letters, digits, '_', '.' and '-' (at most 80), "
                     "starting with a letter, digit or '_'")
    return [Node(label=label, model=_model_ref(model, base_dir), revision=revision,
                 parent=(parent or "") if parent_allowed else None, kind=kind, line=node.start_mark.line + 1)]


class _LineNode:
    def __init__(self, line: int) -> None:
        self.start_mark = yaml.Mark("", 0, line - 1, 0, None, None)


def _link(nodes: list[Node], problems: _Problems) -> list[Node]:
    """Default parents to the root, check labels and parents, order parents before children."""
    if not nodes:
        return nodes
    root = nodes[0]
    seen: dict[str, Node] = {}
    for node in nodes:
        if node.label in seen:
            problems.add(_LineNode(node.line), f"label {quoted(node.label)} is used twice (also line "
                                               f"{seen[node.label].line}); give each model its own label")
        else:
            seen[node.label] = node
    linked = [root] + [Node(label=n.label, model=n.model, revision=n.revision, parent=n.parent or root.label,
                            kind=n.kind, line=n.line) for n in nodes[1:]]
    for node in linked[1:]:
        if node.parent not in seen:
            problems.add(_LineNode(node.line), f"parent {quoted(node.parent)} of {quoted(node.label)} is not a "
                                               f"label of this manifest{_suggest(node.parent, seen)}")
        elif node.parent == node.label:
            problems.add(_LineNode(node.line), f"{quoted(node.label)} names itself as its parent")
    if problems.lines:
        return linked
    return order_nodes(linked, problems)


def order_nodes(nodes: list[Node], problems: _Problems | None = None) -> list[Node]:
    """Root first, then breadth first (children in declaration order); a cycle is a problem (or AuditError)."""
    by_parent: dict[str | None, list[Node]] = {}
    for node in nodes:
        by_parent.setdefault(node.parent, []).append(node)
    ordered = [nodes[0]]
    index = 0
    while index < len(ordered):
        ordered += by_parent.get(ordered[index].label, [])
        index += 1
    if len(ordered) != len(nodes):
        placed = {n.label for n in ordered}
        stuck = [n for n in nodes if n.label not in placed]
        message = (f"the parents of {', '.join(quoted(n.label) for n in stuck[:3])} form a cycle and never reach "
                   "the base")
        if problems is None:
            raise AuditError(message)
        problems.add(_LineNode(stuck[0].line), message)
    return ordered


# ------------------------------------------------------------------------------------ folders, cards, hub


def card_base_models(text: str) -> list[str]:
    """The ``base_model`` entries of a model card's YAML metadata (a string or a list), [] when none."""
    from huggingface_hub import ModelCard

    try:
        data = ModelCard(text, ignore_metadata_errors=True).data.to_dict()
    except Exception:  # a card whose metadata is not YAML: no parent known
        return []
    value = data.get("base_model")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _read_card(path: Path) -> str:
    try:
        return inputs.read_text_limited(path, what="a model card", max_bytes=MAX_MANIFEST_BYTES)
    except AuditError:
        return ""


def from_folder(base: str, folder: str | Path, *, name: str | None = None) -> Lineage:
    """Every sub-folder of ``folder`` with a config.json is a descendant of ``base``; a sub-folder whose model
    card (README.md) names another sub-folder (or its hub id) as ``base_model`` gets it as parent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AuditError(f"{shown(folder)}: no such folder of model folders")
    base_ref = _model_ref(base, Path.cwd())
    base_label = default_label(base)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file()
                        and p.resolve() != Path(base_ref).resolve())
    if not subfolders:
        raise AuditError(f"{shown(folder)}: no model folders (sub-folders with a config.json) in it")
    labels = {p.name: default_label(p.name) for p in subfolders}
    nodes = [Node(label=base_label, model=base_ref)]
    for sub in subfolders:
        parent = base_label
        for named in card_base_models(_read_card(sub / "README.md")) if (sub / "README.md").is_file() else []:
            key = named.rstrip("/").split("/")[-1]
            if key in labels and key != sub.name:
                parent = labels[key]
                break
        nodes.append(Node(label=labels[sub.name], model=str(sub.resolve()), parent=parent))
    _unique(nodes)
    return Lineage(name=name or default_label(str(folder)), source=f"folder {folder}", nodes=order_nodes(nodes))


def _unique(nodes: list[Node]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.label in seen:
            raise AuditError(f"two models get the label {quoted(node.label)}; use a manifest to label them")
        seen.add(node.label)


def cards_in_folder(folder: Path) -> dict[str, str]:
    """Model id -> card text of a folder of cards: ``org--name.md`` files, or ``org--name/README.md``."""
    cards: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix == ".md":
            cards[path.stem.replace("--", "/")] = _read_card(path)
        elif path.is_dir() and (path / "README.md").is_file():
            cards[path.name.replace("--", "/")] = _read_card(path / "README.md")
    return cards


def cards_in_cache(cache_dir: str | Path | None = None) -> dict[str, str]:
    """Model id -> card text of every model in the local hub cache (``models--org--name/snapshots/*/README.md``,
    the newest snapshot)."""
    if cache_dir is None:
        from huggingface_hub.constants import HF_HUB_CACHE

        cache_dir = HF_HUB_CACHE
    cache = Path(cache_dir)
    cards: dict[str, str] = {}
    if not cache.is_dir():
        return cards
    for repo in sorted(cache.glob("models--*")):
        readmes = sorted((repo / "snapshots").glob("*/README.md"), key=lambda p: p.stat().st_mtime)
        if readmes:
            cards[repo.name[len("models--"):].replace("--", "/")] = _read_card(readmes[-1])
    return cards


def _same_id(a: str, b: str) -> bool:
    """Hub ids are the same model when equal, or when one lacks the other's organisation (``albert-large-v2`` is
    ``albert/albert-large-v2``)."""
    a, b = a.strip().rstrip("/"), b.strip().rstrip("/")
    return a == b or a.split("/")[-1] == b.split("/")[-1] and ("/" not in a or "/" not in b)


def from_cards(root: str, cards: dict[str, str], *, source: str, name: str | None = None,
               limit: int = MAX_NODES) -> Lineage:
    """The tree under ``root`` read from model cards (model id -> card text) linked by ``base_model``."""
    parents = {model: card_base_models(text) for model, text in cards.items()}
    nodes = [Node(label=default_label(root), model=root)]
    frontier, placed = [root], {root}
    while frontier and len(nodes) < limit:
        current = frontier.pop(0)
        for model in sorted(parents):
            if model in placed or not any(_same_id(p, current) for p in parents[model]):
                continue
            placed.add(model)
            nodes.append(Node(label=_hub_label(model, nodes), model=model, parent=_label_of(current, nodes)))
            frontier.append(model)
            if len(nodes) >= limit:
                break
    if len(nodes) == 1:
        raise AuditError(f"no descendants of {quoted(root)} found in {source} (model cards whose base_model "
                         "names it)")
    return Lineage(name=name or default_label(root), source=source, nodes=nodes)


def _label_of(model: str, nodes: list[Node]) -> str:
    return next(n.label for n in nodes if n.model == model)


def _hub_label(model: str, nodes: list[Node]) -> str:
    label = default_label(model)
    taken = {n.label for n in nodes}
    if label in taken:
        label = default_label(model.replace("/", "__"))
    suffix = 2
    while label in taken:
        label, suffix = f"{default_label(model)}_{suffix}", suffix + 1
    return label


def from_hub(root: str, *, limit: int = 500, name: str | None = None) -> Lineage:
    """The hub's model tree under ``root`` (online): the models whose card names a model of the tree as
    ``base_model``, breadth first, at most ``limit`` nodes."""
    from huggingface_hub import HfApi

    api = HfApi()
    cards: dict[str, str] = {}
    frontier, seen = [root], {root}
    while frontier and len(cards) < limit:
        current = frontier.pop(0)
        try:
            children = [m.id for m in api.list_models(filter=f"base_model:{current}", limit=limit)]
        except Exception as exc:  # the hub client raises many kinds; all mean "tree not readable"
            raise AuditError(f"cannot read the hub's model tree of {quoted(current)}: {type(exc).__name__}") from None
        for child in children:
            if child not in seen:
                seen.add(child)
                cards[child] = f"---\nbase_model: {current}\n---\n"
                frontier.append(child)
    return from_cards(root, cards, source=f"hub tree of {root}", name=name, limit=limit)


def describe(lineage: Lineage) -> list[str]:
    """The tree as indented lines (``label (model)``), for the CLI."""
    return [f"{'  ' * lineage.depth(n.label)}{n.label} ({shown(n.model)})" for n in lineage.tree_order()]


def as_records(lineage: Lineage) -> list[dict[str, Any]]:
    return [{"label": n.label, "model": n.model, "revision": n.revision, "parent": n.parent, "kind": n.kind}
            for n in lineage.nodes]
