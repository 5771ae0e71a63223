"""Templates: one template's text parsed and checked (mask, slot, articles), and the ``templates:`` section."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import yaml

from albert_audit.errors import quoted
from albert_audit.errors import shown as shown_text
from albert_audit.probeset.articles import agrees
from albert_audit.probeset.model import MASK_PLACEHOLDER, SLOT_RE, TEMPLATE_TAGS, Group, Template
from albert_audit.probeset.nodes import NULL, Problems, describe, is_str, line_of, tagged_lists
from albert_audit.probeset.sections import GroupLines
from albert_audit.probeset.words import visible

# Near-misses of [MASK] that a tokenizer would not turn into the mask token.
_MISSPELT_MASK_RE = re.compile(r"[\[<{(]\s*mask\s*[\]>})]", re.IGNORECASE)
_SPECIAL_TOKEN_RE = re.compile(r"\[(?:CLS|SEP|PAD|UNK)\]|</?(?:s|pad|unk|cls|sep)>", re.IGNORECASE)
_HYPHENS = r"\-\u2010\u2011"  # for a regex character class: hyphen-minus, hyphen, non-breaking hyphen
_GLUED_AFTER_RE = re.compile(rf"\[MASK\](?=[\w'’{_HYPHENS}])")
_GLUED_BEFORE_RE = re.compile(r"(?<=[^\W_])\[MASK\]")
_GLUED_HYPHEN_BEFORE_RE = re.compile(rf"(?<=[{_HYPHENS}])\[MASK\]")
_ARTICLE_SLOT_RE = re.compile(r"(?<![\w])[Aa]\(n\)")
_ARTICLE_BEFORE_SLOT_RE = re.compile(r"(?<![\w(])([Aa]n?) +<")
_ARTICLE_BEFORE_MASK_RE = re.compile(r"(?<![\w(])([Aa]n?) +\[MASK\]")


def parse_template(text: str) -> tuple[str | None, tuple[str, ...], list[str]]:
    """Parse one template: (slot kind, inline alternatives, problems)."""
    problems: list[str] = []
    n_masks = text.count(MASK_PLACEHOLDER)
    misspelt = [m.group(0) for m in _MISSPELT_MASK_RE.finditer(text) if m.group(0) != MASK_PLACEHOLDER]
    for bad in misspelt:
        problems.append(f"{quoted(bad)} is not the mask: write {MASK_PLACEHOLDER} exactly (upper case, no spaces)")
    if n_masks == 0 and not misspelt:
        problems.append(f"template has no {MASK_PLACEHOLDER}; every template needs exactly one")
    elif n_masks > 1:
        problems.append(f"template has {n_masks} {MASK_PLACEHOLDER}s; every template needs exactly one")
    for special in _SPECIAL_TOKEN_RE.finditer(text):
        problems.append(f"template contains the special token '{special.group(0)}'; remove it")
    for glued in _GLUED_AFTER_RE.finditer(text):
        nxt = text[glued.end() :].split(maxsplit=1)[0]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to {quoted(nxt)}: the tokenizer treats the text after a mask token as a "
            "new word and adds a stray piece, so the masked sentence would not match the filled one; put a "
            "space after the mask or rephrase (e.g. 'the ... of the [MASK]')"
        )
    for glued in _GLUED_BEFORE_RE.finditer(text):
        prev = text[: glued.start()].split()[-1]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to the preceding {quoted(prev)}: the mask stands for a whole word; put a "
            "space before it"
        )
    for glued in _GLUED_HYPHEN_BEFORE_RE.finditer(text):
        prev = text[: glued.start()].split()[-1]
        problems.append(
            f"{MASK_PLACEHOLDER} is glued to the hyphen of {quoted(prev)}: the filled word would be tokenized as the "
            "middle of a hyphenated word (no word start), so the masked sentence would not match the filled "
            "one; rephrase so that the mask stands alone between spaces"
        )

    for article in _ARTICLE_SLOT_RE.finditer(text):
        rest_after = text[article.end() :]
        if rest_after.startswith(" " + MASK_PLACEHOLDER):
            problems.append(
                f"'{article.group(0)} {MASK_PLACEHOLDER}': no article can agree with every target scored at the "
                "mask; rephrase so that no article precedes the mask (e.g. 'as the new [MASK]', 'as a trained "
                "[MASK]') or put the word with its article in the slot (see docs/probe_library.md)"
            )
        elif not rest_after.startswith(" <"):
            problems.append(
                f"'{article.group(0)}' must stand right before the slot ('a(n) <group>'): it is resolved to 'a' "
                "or 'an' for the term filled in there"
            )

    ignored = {m.span() for m in _MISSPELT_MASK_RE.finditer(text)} | {
        m.span() for m in _SPECIAL_TOKEN_RE.finditer(text)
    }
    slots = [m for m in SLOT_RE.finditer(text) if m.span() not in ignored]
    rest = SLOT_RE.sub("", text)
    if "<" in rest or ">" in rest:
        problems.append("unbalanced '<' or '>': a slot is written <group> or <a/b>")
    if len(slots) > 1:
        listed = shown_text(", ".join(m.group(0) for m in slots), 120)
        problems.append(f"template has {len(slots)} slots ({listed}); a template has at most one slot")
    for slot in slots:
        if text.startswith(MASK_PLACEHOLDER, slot.end()) or text[: slot.start()].endswith(MASK_PLACEHOLDER):
            problems.append(
                f"the slot {slot.group(0)} is glued to {MASK_PLACEHOLDER}: the filled term and the mask would "
                "run together into one word and the tokenizer would add stray pieces; put a space between them"
            )
    if not slots:
        return None, (), problems
    content = slots[0].group(1)
    if content == "group":
        return "group", (), problems
    if "/" in content:
        alternatives = tuple(a.strip() for a in content.split("/"))
        if any(not a for a in alternatives):
            problems.append(f"inline alternatives <{shown_text(content, 60)}> contain an empty alternative")
        dups = sorted({a for a in alternatives if a and alternatives.count(a) > 1})
        if dups:
            problems.append(f"inline alternatives <{shown_text(content, 60)}> repeat {', '.join(map(quoted, dups))}")
        if MASK_PLACEHOLDER in content:
            problems.append(f"inline alternatives <{shown_text(content, 60)}> contain {MASK_PLACEHOLDER}")
        return "inline", alternatives, problems
    hint = " (did you mean <group>?)" if difflib.get_close_matches(content.strip().lower(), ["group"]) else ""
    problems.append(
        f"unknown slot <{shown_text(content, 60)}>{hint}: the only named slot is <group>; inline alternatives are "
        "written <a/b>"
    )
    return None, (), problems


def build_templates(
    entry: tuple[yaml.Node, yaml.Node] | None, groups: GroupLines, problems: Problems
) -> tuple[list[Template], GroupLines | None]:
    """Parse the templates; returns them and, for files without groups, the groups their inline slots name."""
    if entry is None:
        return [], None
    key_node, node = entry
    tagged = tagged_lists(node, key_node, problems, "templates", TEMPLATE_TAGS, strict_names=True)
    if tagged is None:
        hint = '; write it as a list: templates: ["..."]' if is_str(node) else ""
        problems.error(
            node if node.tag != NULL else key_node,
            f"templates must be a list of strings (or a mapping tag -> list), found {describe(node)}{hint}",
        )
        return [], None
    if not any(items for _, items in tagged):
        problems.error(node, "templates is empty; give at least one template")
        return [], None

    templates: list[Template] = []
    first_line: dict[str, int] = {}
    first_folded: dict[str, int] = {}
    declared = bool(groups)
    # Without declared groups, the first inline template names the groups; later ones add their terms.
    derived: list[tuple[str, dict[str, int]]] | None = None
    derived_from = 0
    for tag, tnode in ((tag, t) for tag, items in tagged for t in items):
        text = problems.word(tnode, "template")
        if text is None or not visible(problems, tnode, "template", text):
            continue
        line = line_of(tnode)
        if text in first_line:
            problems.error(tnode, f"duplicate template (first at line {first_line[text]})")
            continue
        first_line[text] = line
        folded = text.casefold()
        if folded in first_folded:
            problems.warn(tnode, f"templates at lines {first_folded[folded]} and {line} differ only in case: an "
                                 "uncased tokenizer (ALBERT's lower-cases its input) reads them the same, so they are "
                                 "not independent units; remove one")
        else:
            first_folded[folded] = line
        slot, alternatives, template_problems = parse_template(text)
        for message in template_problems:
            problems.error(tnode, message)
        if slot == "group" and not declared:
            problems.error(
                tnode, "template has a <group> slot but the file declares no groups (add a groups: mapping)"
            )
        if slot == "inline" and all(alternatives):
            names = ", ".join(g.name for g, _ in groups)
            if declared and len(alternatives) != len(groups):
                problems.error(
                    tnode,
                    f"inline slot has {len(alternatives)} alternatives but the file declares {len(groups)} "
                    f"group{'s' if len(groups) != 1 else ''} ({names}); the i-th alternative goes to the "
                    "i-th group",
                )
            elif not declared and derived is None:
                derived = [(alt, {alt: line}) for alt in alternatives]
                derived_from = line
            elif not declared and derived is not None:
                if len(alternatives) != len(derived):
                    problems.error(
                        tnode,
                        f"inline slot has {len(alternatives)} alternatives but the first inline template "
                        f"(line {derived_from}) has {len(derived)}; the i-th alternative goes to the i-th "
                        "group",
                    )
                else:
                    for (_, terms), alt in zip(derived, alternatives, strict=True):
                        terms.setdefault(alt, line)
        templates.append(Template(len(templates), text, line, slot, alternatives, tag or TEMPLATE_TAGS[0]))
    derived_groups = None
    if derived is not None:
        derived_groups = [(Group(gname, tuple(terms)), terms) for gname, terms in derived]
    return templates, derived_groups


def check_articles(templates: list[Template], terms: Sequence[str], targets: Sequence[str],
                    problems: Problems) -> None:
    """Warn where a written "a"/"an" cannot agree with the words put after it."""
    for t in templates:
        if t.slot is not None:
            words = t.alternatives if t.slot == "inline" else terms
            for match in _ARTICLE_BEFORE_SLOT_RE.finditer(t.text):
                wrong = [w for w in words if not agrees(match.group(1), w)]
                if wrong:
                    problems.warn(t.line, f"'{match.group(1)}' before the slot does not agree with "
                                          f"{len(wrong)} of {len(words)} terms ({', '.join(wrong[:4])}"
                                          f"{', ...' if len(wrong) > 4 else ''}); write 'a(n) <...>'")
        for match in _ARTICLE_BEFORE_MASK_RE.finditer(t.text):
            wrong = [w for w in targets if not agrees(match.group(1), w)]
            if wrong:
                problems.warn(t.line, f"'{match.group(1)} [MASK]' puts {len(wrong)} of {len(targets)} targets "
                                      f"after the wrong article ({', '.join(wrong[:4])}"
                                      f"{', ...' if len(wrong) > 4 else ''}); rephrase so that no article "
                                      "precedes the mask")
