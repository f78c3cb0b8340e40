"""Rebuild examples/penguins.csv and penguins_bad.csv from the palmerpenguins package.

Run from the repository root: `uv run python examples/build_penguins.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import palmerpenguins

HERE = Path(__file__).parent
SEED = 20241124


def main() -> None:
    penguins = palmerpenguins.load_penguins()
    penguins.to_csv(HERE / "penguins.csv", index=False)

    # The defects datagate is meant to catch, each in rows of its own so every one shows.
    rng = np.random.default_rng(SEED)
    rows = rng.permutation(penguins.index[penguins["body_mass_g"].notna()].to_numpy())
    bad = penguins.copy()
    # A normalisation slip: body mass in kilograms for 25 rows.
    bad.loc[rows[:25], "body_mass_g"] = bad.loc[rows[:25], "body_mass_g"] / 1000
    # An unknown species label.
    bad.loc[rows[25:28], "species"] = "Emperor"
    # Extra nulls: 20 more missing bill lengths (about 6% missing in all).
    bad.loc[rows[28:48], "bill_length_mm"] = np.nan
    bad.to_csv(HERE / "penguins_bad.csv", index=False)


if __name__ == "__main__":
    main()
