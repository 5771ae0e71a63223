"""The word sections of a probe set: ``groups:``, ``targets:``, ``polysemous:`` and ``factors:``."""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from albert_audit.errors import quoted
from albert_audit.errors import shown as shown_text
from albert_audit.probeset.model import CONVENTIONAL_TARGET_CATEGORIES, N_FACTORS, NAME_RE, Group
from albert_audit.probeset.nodes import NULL, Problems, describe, is_str, line_of, suggest, tagged_lists
from albert_audit.probeset.words import check_term, visible

# (group, {term: line}) so later checks can point at the term's line.
GroupLines = list[tuple[Group, dict[str, int]]]


def build_groups(entry: tuple[yaml.Node, yaml.Node] | None, problems: Problems) -> GroupLines:
    """``groups:`` (a mapping group name -> list of terms) -> the groups, each with the line of every term."""
    if entry is None:
        return []
    key_node, node = entry
    if not isinstance(node, yaml.MappingNode):
        problems.error(
            node if node.tag != NULL else key_node,
            f"groups must be a mapping of group name -> list of terms, found {describe(node)}",
        )
        return []
    groups: GroupLines = []
    seen: set[str] = set()
    for gkey, gvalue in node.value:
        # A bad group is still kept (without terms) so that later checks count the declared groups right.
        gname = problems.word(gkey, "group name")
        if gname is None or not visible(problems, gkey, "group name", gname):
            gname = str(gkey.value)
        if gname in seen:
            continue  # reported as a duplicate key by check_tree
        seen.add(gname)
        terms: dict[str, int] = {}
        term_nodes: list[yaml.Node] = []
        if not isinstance(gvalue, yaml.SequenceNode):
            if gvalue.tag == NULL or (is_str(gvalue) and not gvalue.value):
                problems.error(gkey, f"group {quoted(gname)} is empty; give it at least one term")
            else:
                problems.error(
                    gvalue, f"group {quoted(gname)} must be a list of terms, e.g. [a, b]; found {describe(gvalue)}"
                )
        elif not gvalue.value:
            problems.error(gkey, f"group {quoted(gname)} is empty; give it at least one term")
        else:
            term_nodes = gvalue.value
        for tnode in term_nodes:
            term = check_term(problems, tnode, f"term of group {quoted(gname)}")
            if term is None:
                continue
            if term in terms:
                problems.error(
                    tnode, f"term {quoted(term)} appears twice in group {quoted(gname)} (first at line {terms[term]})"
                )
                continue
            terms[term] = line_of(tnode)
        groups.append((Group(gname, tuple(terms)), terms))
    return groups


def build_targets(
    entry: tuple[yaml.Node, yaml.Node] | None, problems: Problems
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The targets (file order) and target -> category (empty categories for a plain list)."""
    if entry is None:
        return (), {}
    key_node, node = entry
    tagged = tagged_lists(node, key_node, problems, "targets", CONVENTIONAL_TARGET_CATEGORIES, strict_names=False)
    if tagged is None:
        problems.error(
            node if node.tag != NULL else key_node,
            f"targets must be a list of words (or a mapping category -> list), found {describe(node)}"
            + ("; remove the key for no targets" if node.tag == NULL else ""),
        )
        return (), {}
    targets: dict[str, int] = {}
    categories: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for category, tnode in ((c, t) for c, items in tagged for t in items):
        target = check_term(problems, tnode, "target")
        if target is None:
            continue
        if any(ch.isspace() for ch in target):
            problems.error(tnode, f"target {quoted(target)} must be a single word (no spaces)")
            continue
        if target in targets:
            problems.error(tnode, f"target {quoted(target)} is listed twice (first at line {targets[target]})")
            continue
        targets[target] = line_of(tnode)
        categories[target] = category
        low = target.lower()
        if low in lowered:
            problems.warn(
                tnode,
                f"targets {quoted(lowered[low])} and {quoted(target)} differ only in case; an uncased tokenizer "
                "scores them identically",
            )
        else:
            lowered[low] = target
    return tuple(targets), categories


def warn_shared_terms(groups: GroupLines, problems: Problems) -> None:
    """Warn at a term that two groups share (the comparison between them is blurred)."""
    owner: dict[str, str] = {}
    for group, lines in groups:
        for term in group.terms:
            if term in owner and owner[term] != group.name:
                problems.warn(
                    lines[term],
                    f"term {quoted(term)} is in both group {quoted(owner[term])} and group {quoted(group.name)}; "
                    "the comparison between them is blurred",
                )
            else:
                owner.setdefault(term, group.name)


def build_factors(
    entry: tuple[yaml.Node, yaml.Node] | None, group_names: Sequence[str], problems: Problems
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``factors: {race: [black, white], gender: [female, male]}``: two crossed factors whose level
    combinations ``<first>_<second>`` are exactly the groups (each group one cell of the crossing)."""
    if entry is None:
        return ()
    key_node, node = entry
    if not isinstance(node, yaml.MappingNode) or len(node.value) != N_FACTORS:
        problems.error(node if node.tag != NULL else key_node,
                       f"factors must be a mapping of {N_FACTORS} factor names -> lists of levels, e.g. "
                       f"{{race: [black, white], gender: [female, male]}}; found {describe(node)}")
        return ()
    factors: list[tuple[str, tuple[str, ...]]] = []
    for fnode, lnode in node.value:
        name = problems.word(fnode, "a factor name")
        if name is None:
            return ()
        if not NAME_RE.fullmatch(name):
            problems.error(fnode, f"factor name {quoted(name)} must match [a-z0-9_]+")
            return ()
        levels = []
        if isinstance(lnode, yaml.SequenceNode):
            levels = [problems.word(v, f"a level of factor {quoted(name)}") for v in lnode.value]
        if len(levels) < 2 or any(v is None or not NAME_RE.fullmatch(v) for v in levels) or \
                len(set(levels)) != len(levels):
            problems.error(lnode, f"factor {quoted(name)} needs a list of at least 2 distinct levels matching "
                                  f"[a-z0-9_]+, found {describe(lnode)}")
            return ()
        factors.append((name, tuple(str(v) for v in levels)))
    (_, first), (_, second) = factors
    cells = [f"{a}_{b}" for a in first for b in second]
    if len(set(cells)) != len(cells):
        twice = sorted({c for c in cells if cells.count(c) > 1})
        problems.error(key_node, f"factors: the group name {quoted(twice[0])} stands for two combinations of "
                                 "levels; rename a level")
        return ()
    missing = [c for c in cells if c not in group_names]
    extra = [g for g in group_names if g not in cells]
    if missing or extra:
        parts = ([f"no group for {shown_text(', '.join(missing), 160)}"] if missing else []) + \
                ([f"group(s) {shown_text(', '.join(extra), 160)} match no combination"] if extra else [])
        problems.error(key_node, "factors: every group must be named <level of "
                                 f"{factors[0][0]}>_<level of {factors[1][0]}>, once per combination: "
                                 + "; ".join(parts))
        return ()
    return tuple(factors)


def build_polysemous(
    entry: tuple[yaml.Node, yaml.Node] | None, problems: Problems, words: Sequence[str]
) -> dict[str, str]:
    """``polysemous: {word: other sense}``: flags words with a second, unrelated sense (gay/happy)."""
    if entry is None:
        return {}
    key_node, node = entry
    if not isinstance(node, yaml.MappingNode):
        problems.error(node if node.tag != NULL else key_node,
                       f"polysemous must be a mapping word -> its other sense, found {describe(node)}")
        return {}
    out: dict[str, str] = {}
    for wnode, snode in node.value:
        word = problems.word(wnode, "a polysemous word")
        sense = problems.word(snode, f"the other sense of {quoted(word)}")
        if word is None or sense is None:
            continue
        if word not in words:
            problems.error(wnode, f"polysemous word {quoted(word)} is not a term or target of this file"
                                  f"{suggest(word, words)}")
            continue
        out[word] = sense
    return out
