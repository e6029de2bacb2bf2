"""Recovery of a population fit on a dataset of NONMEM event records (ADDL, SS, CMT, EVID 4).

Each simulated subject of a one-compartment model with first-order absorption takes oral doses
at steady state (``SS`` 1, ``II`` 12, with ``ADDL`` 2 more), then a reset with an IV bolus into
the central compartment (``EVID`` 4, ``CMT`` 2) and an oral dose after it; concentrations are
the population equations' at known truth (tested against explicit doses, a fresh start and
``solve_ivp`` in tests/pk/test_pk_events.py) with a combined residual error. The dataset is written
as a NONMEM table, read by the one reader and fitted by ``fit_population``; the script prints
each parameter's truth, posterior median and 90% interval, and the time taken.

    .venv/bin/python benchmarks/events_recovery.py [--subjects 40] [--seed 1] [--chains 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from pkmodel.pk.population import PopulationSpec, fit_population, read_population_data
from pkmodel.pk.population.build import model_data
from pkmodel.pk.population.equations import individual_log_parameters, predict

TRUTH = {"tv_cl": 2.8, "tv_v": 32.0, "tv_ka": 1.5, "omega_cl": 0.3, "omega_v": 0.2,
         "sigma_prop": 0.1, "sigma_add_ug_ml": 0.1}
SAMPLES = (0.5, 1.5, 4.0, 8.0, 11.9, 48.25, 50.0, 56.0, 61.0, 64.0, 80.0)


def dataset(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, PopulationSpec]:
    spec = PopulationSpec.from_dict({
        "model": {"compartments": 1, "dosing": "oral"},
        "data": {"time_unit": "day"},  # times and parameters in one unit (hours, here)
        "parameters": {"cl": {"typical": 3.0, "bsv": True}, "v": {"typical": 30.0, "bsv": True},
                       "ka": {"typical": 1.0}},
        "residual": {"error": "combined"}})
    records = []
    for s in range(1, n + 1):
        records += [{"ID": s, "TIME": 0.0, "AMT": 320.0, "EVID": 1, "CMT": 1, "SS": 1, "II": 12,
                     "ADDL": 2},
                    {"ID": s, "TIME": 48.0, "AMT": 250.0, "EVID": 4, "CMT": 2},
                    {"ID": s, "TIME": 60.0, "AMT": 320.0, "EVID": 1, "CMT": 1}]
        records += [{"ID": s, "TIME": t, "EVID": 0, "CMT": 2, "DV": 1.0} for t in SAMPLES]
    frame = pd.DataFrame(records).sort_values(["ID", "TIME"], kind="stable")
    frame = frame.reset_index(drop=True)
    data = read_population_data(frame, spec)
    arrays = model_data(spec, data)
    values = {f"log_tv_{p}": np.log(TRUTH[f"tv_{p}"]) for p in ("cl", "v", "ka")}
    values |= {f"eta_{p}": rng.normal(0.0, TRUTH[f"omega_{p}"], n) for p in ("cl", "v")}
    pred = predict(spec, arrays, individual_log_parameters(spec, arrays, values))
    sd = np.hypot(TRUTH["sigma_prop"] * pred, TRUTH["sigma_add_ug_ml"])
    frame.loc[frame["EVID"] == 0, "DV"] = np.round(pred + sd * rng.standard_normal(pred.size), 4)
    return frame, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    frame, spec = dataset(args.subjects, np.random.default_rng(args.seed))
    start = time.perf_counter()
    fit = fit_population(frame, spec, draws=1000, tune=1000, chains=args.chains,
                         random_seed=args.seed)
    took = time.perf_counter() - start
    table = fit.summary(0.9).set_index("parameter")
    print(f"{args.subjects} subjects, {int((frame['EVID'] == 0).sum())} observations; "
          f"fit {took:.0f} s; gate {'PASS' if fit.converged else 'FAIL'}")
    print(f"{'parameter':<16} {'truth':>8} {'median':>8} {'90% interval':>20} covered")
    for name, truth in TRUTH.items():
        row = table.loc[name]
        inside = row["lower"] <= truth <= row["upper"]
        print(f"{name:<16} {truth:>8.3g} {row['median']:>8.3g} "
              f"{f'[{row['lower']:.3g}, {row['upper']:.3g}]':>20} {'yes' if inside else 'no'}")


if __name__ == "__main__":
    main()
