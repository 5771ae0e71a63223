"""English indefinite articles: which of "a" / "an" a word takes (by its first sound, spelled heuristically).

Probe templates write ``a(n) <group>`` when an article precedes a filled-in term; expansion resolves it with
:func:`indefinite_article`. An article right before ``[MASK]`` cannot agree with every target scored there,
so the validator refuses ``a(n) [MASK]`` and warns about ``a [MASK]`` / ``an [MASK]`` (see docs/probe_library.md).
"""

from __future__ import annotations

import re

ARTICLE_SLOT = "a(n)"
"""How a template asks for the article that agrees with the filled-in term (``A(n)`` at a sentence start)."""

# Vowel letters that sound like a consonant ("a university", "a European", "a one-off", "a user").
_VOWEL_LETTER_CONSONANT_SOUND = re.compile(
    r"^(?:uni(?![nmd])|use|usu|ura|uro|uti|ute|utop|eu|ewe|one\b|one-|once|ouija|ukr|uga|uk\b)"
)
# Consonant letters that sound like a vowel ("an hour", "an honest", "an heir"; letters read out: "an MP").
_SILENT_H = re.compile(r"^(?:hour|honest|honou?r|heir)")
_DIGIT_AN = re.compile(r"^(?:8|11|18|80)(?!\d)")


def indefinite_article(word: str) -> str:
    """``"an"`` when ``word`` starts with a vowel sound, else ``"a"`` (lower case; heuristic by spelling).

    >>> [indefinite_article(w) for w in ("engineer", "nurse", "hour", "university", "uncle", "Asian")]
    ['an', 'a', 'an', 'a', 'an', 'an']
    """
    text = word.strip().lower()
    if not text:
        raise ValueError("indefinite_article() needs a word")
    if _DIGIT_AN.match(text) or _SILENT_H.match(text):
        return "an"
    if text[0] in "aeiou":
        return "a" if _VOWEL_LETTER_CONSONANT_SOUND.match(text) else "an"
    return "a"


def agrees(article: str, word: str) -> bool:
    """True when ``article`` ("a"/"an", any case) is the one ``word`` takes."""
    return article.lower() == indefinite_article(word)
