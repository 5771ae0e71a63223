"""BEC-Pro (Bartl, Nissim and Gatt 2020; CC BY 4.0) -> its sentences as a table, or as probe sets.

``BEC-Pro_EN.tsv`` (5,400 rows; read from a path the user gives) holds sentences made from five templates,
18 person words (He/She, "This man/woman", "My <kin noun>") and 60 professions in three BLS groups. The
person word is masked (``Sent_TM``) to ask which gender the model puts with a profession.

:func:`bec_pro_probe_sets` rebuilds the design as three probe sets, one per way the person word is written
(pronoun, "This", "My"), whose targets are the person words and whose ``<group>`` slot takes the professions
(groups: BEC-Pro's female / male / balanced). BEC-Pro's own sentences put "a" before every profession
(378 of them start with a vowel: "a electrical installer"); here the templates write ``a(n) <group>``,
which expansion resolves to the article each profession takes. ``professions_us_de.tsv`` (optional) adds
the US (BLS) and German shares of women as term-keyed references.
"""

from __future__ import annotations

import csv
import hashlib
from os import PathLike
from pathlib import Path

import pandas as pd

from albert_audit.errors import AuditError
from albert_audit.probeset.articles import agrees
from albert_audit.probeset.model import MASK_PLACEHOLDER, Group, ProbeSet, Reference, Template

SENTENCE_COLUMNS = ("Sentence", "Sent_TM", "Sent_AM", "Sent_TAM", "Template", "Person", "Gender", "Profession",
                    "Prof_Gender")
PROFESSION_COLUMNS = ("simplified_professions", "percent_us", "percent_de", "prof_gender")
PROF_GROUPS = ("female", "male", "balanced")
SOURCE = ("BEC-Pro, Bartl, Nissim and Gatt 2020, 'Unmasking Contextual Stereotypes: Measuring and Mitigating "
          "BERT's Gender Bias' (GeBNLP), github.com/marionbartl/gender-bias-BERT, CC BY 4.0; templates "
          "rewritten with a(n) by albert-audit")
_SUBJECT, _PROFESSION = "<person subject>", "<profession>"
# How BEC-Pro writes each person word before the verb: pronouns alone, man/woman after "This", kin after "My".
_KINDS = {"pronoun": ("He", "She"), "this": ("man", "woman")}


def _read_tsv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    shown = str(path)
    if not path.is_file():
        raise AuditError(f"{shown}: no such file")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise AuditError(f"{shown}: cannot read as a tab-separated file: {exc}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise AuditError(f"{shown}:1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(expected BEC-Pro's header: {', '.join(columns)})")
    return table


def read_bec_pro(path: str | PathLike[str]) -> pd.DataFrame:
    """BEC-Pro_EN.tsv -> one row per sentence: BEC-Pro's columns (lower-cased names) and ``article_agrees``
    (False where the sentence puts "a" before a profession that takes "an")."""
    path = Path(path)
    table = _read_tsv(path, SENTENCE_COLUMNS)
    for number, row in enumerate(table.itertuples(index=False), start=2):
        if _SUBJECT not in row.Template or _PROFESSION not in row.Template:
            raise AuditError(f"{path}:{number}: template {row.Template!r} lacks {_SUBJECT} or {_PROFESSION}")
        if row.Prof_Gender not in PROF_GROUPS:
            raise AuditError(f"{path}:{number}: Prof_Gender {row.Prof_Gender!r} is not one of {', '.join(PROF_GROUPS)}")
        if MASK_PLACEHOLDER not in row.Sent_TM:
            raise AuditError(f"{path}:{number}: Sent_TM has no {MASK_PLACEHOLDER}")
    out = table[list(SENTENCE_COLUMNS)].rename(columns=str.lower)
    needs_article = out["template"].str.contains(f" a {_PROFESSION}", regex=False)
    out["article_agrees"] = ~needs_article | out["profession"].map(lambda p: agrees("a", p))
    return out.reset_index(drop=True)


def read_professions(path: str | PathLike[str]) -> pd.DataFrame:
    """professions_us_de.tsv -> profession, share_us, share_de (fractions), prof_gender."""
    path = Path(path)
    table = _read_tsv(path, PROFESSION_COLUMNS)
    out = pd.DataFrame({"profession": table["simplified_professions"], "prof_gender": table["prof_gender"]})
    for column, name in (("percent_us", "share_us"), ("percent_de", "share_de")):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values <= 0) | (values >= 100)
        if bad.any():
            line = int(bad.to_numpy().nonzero()[0][0]) + 2
            raise AuditError(f"{path}:{line}: {column} must be a percentage strictly between 0 and 100")
        out[name] = values / 100.0
    return out


def _templates(table: pd.DataFrame, subject: str) -> tuple[Template, ...]:
    out: list[Template] = []
    for raw in dict.fromkeys(table["template"]):
        text = raw.replace(f" a {_PROFESSION}", f" a(n) {_PROFESSION}").replace(_PROFESSION, "<group>")
        text = text.replace(_SUBJECT, subject)
        line = int(table.index[table["template"] == raw][0]) + 2
        out.append(Template(len(out), text, line, "group"))
    return tuple(out)


def bec_pro_probe_sets(
    sentences: str | PathLike[str], professions: str | PathLike[str] | None = None
) -> list[ProbeSet]:
    """BEC-Pro as three probe sets (``bec_pro_pronoun``, ``bec_pro_this``, ``bec_pro_my``), targets = the
    person words (category female/male), groups = the professions by BEC-Pro's Prof_Gender."""
    path = Path(sentences)
    table = read_bec_pro(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    groups = tuple(Group(g, tuple(dict.fromkeys(table.loc[table["prof_gender"] == g, "profession"])))
                   for g in PROF_GROUPS)
    references: tuple[Reference, ...] = ()
    if professions is not None:
        prof = read_professions(professions).set_index("profession")
        known = {t for g in groups for t in g.terms}
        refs = []
        for name, column, where in (("us", "share_us", "US BLS CPS"), ("de", "share_de", "German employment "
                                                                          "statistics, by KldB category")):
            values = tuple((p, float(prof.loc[p, column])) for p in prof.index if p in known)
            refs.append(Reference(name, f"BEC-Pro professions_us_de.tsv ({where})", "CC BY 4.0",
                                  "share of women", "term", values))
        references = tuple(refs)
    persons = table[["person", "gender"]].drop_duplicates()
    kin = tuple(p for p in persons["person"] if p not in _KINDS["pronoun"] + _KINDS["this"])
    gender = dict(zip(persons["person"], persons["gender"], strict=True))
    kinds = {"pronoun": ("[MASK]", tuple(p for p in _KINDS["pronoun"] if p in gender)),
             "this": ("This [MASK]", tuple(p for p in _KINDS["this"] if p in gender)), "my": ("My [MASK]", kin)}
    wrong = int((~table["article_agrees"]).sum())
    warnings = (f"{path}: BEC-Pro's sentences put 'a' before a vowel-initial profession in {wrong} rows; these "
                "probe sets write a(n) instead",) if wrong else ()
    sets = []
    for kind, (subject, words) in kinds.items():
        if not words:
            continue
        sets.append(ProbeSet(
            name=f"bec_pro_{kind}", description=f"BEC-Pro person words ({kind}) masked before professions",
            category="gender", source=SOURCE, groups=groups, templates=_templates(table, subject),
            targets=tuple(words), pair_terms_by_position=False, path=str(path), sha256=sha, schema_version=1,
            warnings=warnings, target_categories=tuple((w, gender[w]) for w in words), references=references,
        ))
    return sets
