"""Convert R's ``datasets::Theoph`` to the NONMEM format of ``pkmodel/data/theophylline.csv``.

The theophylline data (Boeckmann, Sheiner and Beal, NONMEM Users Guide Part V, 1994; R's
``datasets::Theoph``): 12 subjects given one oral dose of theophylline (mg/kg), 11 plasma
concentrations each (mg/L) over 25 hours, the first at time 0 before the dose. Input: the
table as the Rdatasets project writes it (``csv/datasets/Theoph.csv`` of
vincentarelbundock/Rdatasets: columns ``Subject, Wt, Dose, Time, conc``), or as R writes it
with ``write.csv(Theoph)``. Output columns::

    ID    R's Subject label
    TIME  hours after the dose
    AMT   mg: Dose (mg/kg) x Wt (kg), on the dose row
    DV    mg/L (= µg/mL); "." on the dose row
    EVID  1 dose, 0 observation
    MDV   1 dose, 0 observation
    WT    kg
    DOSE  mg/kg (ignored by the reader)

Each subject's time-0 sample comes before its dose row, as in NONMEM's record order: a
pre-dose sample, predicted 0. Run from the repository root::

    python data/make_theophylline.py path/to/Theoph.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "pkmodel" / "data" / "theophylline.csv"


def convert(source: str | Path) -> pd.DataFrame:
    """The NONMEM-format table of R's ``Theoph`` read from ``source``."""
    raw = pd.read_csv(source)
    raw = raw.rename(columns={c: c.strip() for c in raw.columns})
    rows = []
    for subject, group in raw.groupby(raw["Subject"].astype(int), sort=True):
        group = group.sort_values("Time", kind="stable")
        weight = float(group["Wt"].iloc[0])
        dose = float(group["Dose"].iloc[0])
        if group["Wt"].nunique() != 1 or group["Dose"].nunique() != 1:
            raise ValueError(f"subject {subject}: weight or dose changes")
        samples = list(group.itertuples(index=False))
        common = {"ID": int(subject), "WT": weight, "DOSE": dose}
        predose = [s for s in samples if s.Time == 0]
        for s in predose:
            rows.append({**common, "TIME": 0.0, "AMT": ".", "DV": s.conc, "EVID": 0, "MDV": 0})
        rows.append({**common, "TIME": 0.0, "AMT": round(dose * weight, 4), "DV": ".",
                     "EVID": 1, "MDV": 1})
        for s in samples:
            if s.Time > 0:
                rows.append({**common, "TIME": float(s.Time), "AMT": ".", "DV": s.conc,
                             "EVID": 0, "MDV": 0})
    columns = ["ID", "TIME", "AMT", "DV", "EVID", "MDV", "WT", "DOSE"]
    return pd.DataFrame(rows)[columns]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python data/make_theophylline.py path/to/Theoph.csv")
    convert(sys.argv[1]).to_csv(OUT, index=False)
    print(f"wrote {OUT}")
