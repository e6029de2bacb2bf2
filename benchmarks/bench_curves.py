"""Time a remission curve (200 TL points) and a futility threshold from 4000 posterior draws.

Run from the repository root:  .venv/bin/python benchmarks/bench_curves.py

Uses a hand-made posterior with the shape of a default fit (4 chains x 1000 draws, two
strategies, two months, patient and centre effects), so that it measures the computation only.
Prints the median and min-max of 7 repeats, and the ratio to the 0.2 s target.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from pkmodel.response.curves import compute_curve
from pkmodel.response.thresholds import futility_table

META = {"months": [6, 12], "strategies": ["dose_escalation", "interval_shortening"],
        "groups": ["a", "b"], "diseases": [], "encodings": [], "tl_range_ug_ml": [3.0, 16.0],
        "patient_ids": []}


def posterior(chains: int = 4, draws: int = 1000) -> xr.Dataset:
    rng = np.random.default_rng(0)
    dims = ("chain", "draw")

    def normal(mu, sd, *shape):
        return mu + sd * rng.normal(size=(chains, draws, *shape))

    return xr.Dataset(
        {"alpha": (dims, normal(0.3, 0.5)), "beta": (dims, normal(-2, 0.6)),
         "b_slope_strategy": ((*dims, "strategy"), normal(0, 0.3, 2)),
         "delta_strategy": ((*dims, "strategy_contrast"), normal(0.9, 0.5, 1)),
         "tau_month": ((*dims, "month_contrast"), normal(0.6, 0.5, 1)),
         "a_group": ((*dims, "group"), normal(0, 0.3, 2)),
         "sigma_group": (dims, np.abs(normal(0.3, 0.2))),
         "sigma_patient": (dims, np.abs(normal(1.1, 0.5)))},
        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                "strategy": META["strategies"], "strategy_contrast": META["strategies"][1:],
                "month_contrast": [12], "group": ["a", "b"]},
    )


def timed(fn, repeats: int = 7) -> tuple[float, float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), min(times), max(times)


def main() -> None:
    post = posterior()
    tl = np.geomspace(3, 25, 200)
    rows = [
        ("curve, 1 strategy x 1 month", lambda: compute_curve(
            post, META, tl=tl, strategy="dose_escalation", month=12)),
        ("curve + threshold, 1 x 1", lambda: futility_table(compute_curve(
            post, META, tl=tl, strategy="dose_escalation", month=12), 0.2, 0.9, 0.9)),
        ("curve + threshold, 2 strategies x 2 months", lambda: futility_table(
            compute_curve(post, META, tl=tl), 0.2, 0.9, 0.9)),
    ]
    print("200 TL points x 4000 draws (4 chains x 1000), population level")
    print(f"{'work':46s} {'median s':>9s} {'min':>7s} {'max':>7s} {'/ 0.2 s target':>15s}")
    for name, fn in rows:
        med, lo, hi = timed(fn)
        print(f"{name:46s} {med:9.3f} {lo:7.3f} {hi:7.3f} {med / 0.2:15.2f}")


if __name__ == "__main__":
    main()
