"""Generate the SIMULATED example NONMEM-style PK dataset shipped with pkmodel.

Three invented patients on infliximab, simulated from the Fasanmade 2009 model (ulcerative
colitis) with known random effects and the model's residual error, written in the NONMEM format
that ``pkmodel.pk.read_nonmem`` reads (``docs/pk.md``, "NONMEM-style input"):

- ``101``: 72 kg adult, standard induction and 5 mg/kg q8w, troughs at weeks 14, 22 and 30; fast
  clearance (eta_CL = +0.4), troughs below 1 µg/mL;
- ``102``: a 38 kg adolescent whose weight rises to 46 kg and albumin from 3.6 to 4.2 g/dL over
  the course (time-varying covariates), troughs at weeks 14, 22 and 30, the first below the LLOQ
  of 0.4 µg/mL (``CENS`` = 1);
- ``103``: 80 kg adult on 5 mg/kg q8w with troughs around the target, typical clearance.

Doses are in mg (``AMT`` = mg/kg x weight at the dose), 2 h infusions (``RATE`` in mg/day),
times in days, concentrations in µg/mL. Every row carries ``DATA_ORIGIN = simulated`` (a column
the reader ignores). Run from the repository root; it rewrites
``pkmodel/data/example_pk_nonmem.csv``::

    python data/make_example_pk.py

The same seed always gives the same file. THE RESULT IS NOT PATIENT DATA.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pkmodel.pk import FASANMADE_2009_UC, CovariateHistory, DoseSchedule

OUT = Path(__file__).resolve().parents[1] / "pkmodel" / "data" / "example_pk_nonmem.csv"
LLOQ = 0.4


def patient(pid: str, history: CovariateHistory, eta: np.ndarray, trough_weeks, rng) -> list:
    doses = DoseSchedule.from_regimen("5mg/kg q8w", until_week=max(trough_weeks) + 1)
    amounts = history.dose_amounts_mg(doses)
    times = np.array([7.0 * w for w in trough_weeks]) - 0.01  # just before the dose
    pred = np.asarray(history.concentrations(FASANMADE_2009_UC, doses, times,
                                             eta)).reshape(-1)
    m = FASANMADE_2009_UC
    sd = np.sqrt(m.additive_sd_ug_ml**2 + (m.proportional_sd * pred) ** 2)
    dv = pred + sd * rng.standard_normal(pred.shape)
    rows = []
    for t, amt in zip(doses.times_days, amounts, strict=True):
        cov = {k: float(np.ravel(v)[0]) for k, v in history.at([t]).items()}
        rows.append({"ID": pid, "TIME": round(t, 2), "AMT": round(float(amt), 1),
                     "RATE": round(float(amt) * 12, 1), "DV": ".", "EVID": 1, "MDV": 1,
                     "CENS": 0, **cov})
    for t, y in zip(times, dv, strict=True):
        cov = {k: float(np.ravel(v)[0]) for k, v in history.at([t]).items()}
        cens = int(y < LLOQ)
        rows.append({"ID": pid, "TIME": round(float(t), 2), "AMT": ".", "RATE": ".",
                     "DV": LLOQ if cens else round(float(y), 2), "EVID": 0, "MDV": 0,
                     "CENS": cens, **cov})
    return rows


def main() -> None:
    rng = np.random.default_rng(20261202)
    rows = []
    rows += patient("101", CovariateHistory([0.0], {"weight_kg": 72.0, "albumin_g_dl": 3.9}),
                    np.array([0.4, 0.1]), [14, 22, 30], rng)
    rows += patient("102", CovariateHistory([0.0, 98.0, 154.0],
                                            {"weight_kg": [38.0, 42.0, 46.0],
                                             "albumin_g_dl": [3.6, 3.9, 4.2]}),
                    np.array([-0.2, -0.1]), [14, 22, 30], rng)
    rows += patient("103", CovariateHistory([0.0], {"weight_kg": 80.0, "albumin_g_dl": 4.2}),
                    np.array([-0.3, 0.0]), [14, 22, 30], rng)
    frame = pd.DataFrame(rows).rename(columns={"weight_kg": "WT", "albumin_g_dl": "ALB"})
    frame["DATA_ORIGIN"] = "simulated"
    frame = frame.sort_values(["ID", "TIME", "EVID"], kind="stable")
    frame.to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
