"""``reference:``: shares of a reference statistic for the words of a probe set or lexicon (e.g. the share of
women in each occupation)."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from albert_audit.errors import quoted
from albert_audit.errors import shown as shown_text
from albert_audit.probeset.model import NAME_RE, Reference
from albert_audit.probeset.nodes import FLOAT, INT, NULL, Problems, describe, is_str, suggest

REFERENCE_KEYS = ("name", "source", "licence", "measure", "keyed_by", "values")


def build_references(
    entry: tuple[yaml.Node, yaml.Node] | None, problems: Problems, known: dict[str, Sequence[str]],
    *, lexicon: bool = False,
) -> list[Reference]:
    """``reference:`` (a mapping, or a list of mappings each with a ``name``) -> validated references.

    ``known`` maps ``keyed_by`` ("target", "term") to the words a reference may give values for. In a lexicon
    the values are keyed by the lexicon's own words (``keyed_by`` is not written; it is set where it is used).
    """
    if entry is None:
        return []
    key_node, node = entry
    if isinstance(node, yaml.MappingNode):
        nodes, listed = [node], False
    elif isinstance(node, yaml.SequenceNode) and node.value:
        nodes, listed = list(node.value), True
    else:
        problems.error(node if node.tag != NULL else key_node,
                       f"reference must be a mapping (source:, measure:, values:) or a list of them, "
                       f"found {describe(node)}")
        return []
    refs: list[Reference] = []
    names: set[str] = set()
    allowed = tuple(k for k in REFERENCE_KEYS if not (lexicon and k == "keyed_by"))
    for rnode in nodes:
        if not isinstance(rnode, yaml.MappingNode):
            problems.error(rnode, "a reference must be a mapping (source:, measure:, values:), "
                                  f"found {describe(rnode)}")
            continue
        fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in rnode.value:
            if not is_str(k) or k.value not in allowed:
                shown = k.value if isinstance(k, yaml.ScalarNode) else "?"
                problems.error(k, f"unknown reference key {quoted(shown)}{suggest(str(shown), allowed)}; "
                                  f"known keys: {', '.join(allowed)}")
                continue
            fields.setdefault(k.value, (k, v))
        required = ("source", "measure", "values") + (("name",) if listed else ())
        missing = [r for r in required if r not in fields]
        for r in missing:
            problems.error(rnode, f"reference is missing {quoted(r)}" + (" (several references need names)"
                                                                  if r == "name" else ""))
        text = {k: (problems.word(fields[k][1], f"reference {k}") or "") if k in fields else ""
                for k in ("name", "source", "licence", "measure", "keyed_by")}
        if text["name"] and not NAME_RE.fullmatch(text["name"]):
            problems.error(fields["name"][1], f"reference name {quoted(text['name'])} must match [a-z0-9_]+")
        if text["name"] in names:
            problems.error(fields["name"][1], f"reference name {quoted(text['name'])} is used twice")
        names.add(text["name"])
        keyed_by = "word" if lexicon else (text["keyed_by"] or "target")
        if not lexicon and keyed_by not in known:
            problems.error(fields["keyed_by"][1],
                           f"reference keyed_by must be 'target' or 'term', found {quoted(keyed_by)}")
            continue
        values: dict[str, float] = {}
        if "values" in fields:
            vnode = fields["values"][1]
            if not isinstance(vnode, yaml.MappingNode) or not vnode.value:
                problems.error(vnode, f"reference values must be a mapping word -> share, found {describe(vnode)}")
            else:
                words = known.get(keyed_by, ())
                for wnode, num in vnode.value:
                    word = problems.word(wnode, "a reference word")
                    if word is None:
                        continue
                    if word not in words:
                        kind = "word of the lexicon" if lexicon else f"{keyed_by} of the probe set"
                        problems.error(wnode, f"reference value for {quoted(word)}, which is not a {kind}"
                                              f"{suggest(word, words)}")
                        continue
                    if word in values:
                        problems.error(wnode, f"reference value for {quoted(word)} is given twice")
                        continue
                    if not (isinstance(num, yaml.ScalarNode) and num.tag in (INT, FLOAT)):
                        problems.error(num, f"reference share of {quoted(word)} must be a number, found "
                                            f"{describe(num)}")
                        continue
                    share = float(num.value)
                    if not 0.0 < share < 1.0:
                        problems.error(num, f"reference share of {quoted(word)} is {shown_text(num.value)}; shares "
                                            "lie strictly between 0 and 1 (write 0.42 for 42 %)")
                        continue
                    values[word] = share
        if not missing and values:
            refs.append(Reference(text["name"], text["source"], text["licence"], text["measure"], keyed_by,
                                  tuple(values.items())))
    return refs


def rekey(ref: Reference, keyed_by: str) -> Reference:
    """The reference keyed by ``keyed_by`` (a lexicon's references are keyed by where the set uses its words)."""
    return Reference(ref.name, ref.source, ref.licence, ref.measure, keyed_by, ref.values)
