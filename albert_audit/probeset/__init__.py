"""Probe sets: YAML files -> validated, frozen probe sets -> the items table (the first stage of a run).

- :mod:`.model`: the frozen dataclasses (ProbeSet, Group, Template, Reference, Lexicon) and the format's constants;
- :mod:`.build`: ``load_probe_set(s)``, file -> ProbeSet in steps; :mod:`.yaml_file` (file -> safe YAML node tree),
  :mod:`.nodes` (node helpers, problems as ``PATH:LINE: message``), :mod:`.fields` (the top-level keys as a
  declarative table), :mod:`.templates`, :mod:`.sections` (groups, targets, polysemous, factors),
  :mod:`.references`, :mod:`.words` (checks of one word), :mod:`.lexicons` (shared word lists),
  :mod:`.articles` (a / an);
- :mod:`.checks`: checks of a whole set (findings-size guard, the scope its gaps can claim);
- :mod:`.tokenizer_checks`: checks that need the model's tokenizer (taken as a callable, never loaded here);
- :mod:`.expand`: probe sets -> the items table; :mod:`.as_seen`: the items as the model sees them;
- :mod:`.bec_pro`: the BEC-Pro data set -> its sentences, or probe sets.

No module here imports torch, transformers or the engine.
"""

from __future__ import annotations

from albert_audit.probeset.build import load_probe_set, load_probe_sets
from albert_audit.probeset.lexicons import load_lexicon
from albert_audit.probeset.model import (
    DEFINITIONAL,
    MASK_PLACEHOLDER,
    Group,
    Lexicon,
    ProbeSet,
    Reference,
    Template,
)

__all__ = ["DEFINITIONAL", "MASK_PLACEHOLDER", "Group", "Lexicon", "ProbeSet", "Reference", "Template",
           "load_lexicon", "load_probe_set", "load_probe_sets"]
