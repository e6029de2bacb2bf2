"""Whole-process time of the default fit on the shipped cohort: pkmodel vs Bambi, side by side.

Run from the repository root, with Bambi installed (``pip install -e ".[bench]"``):

    .venv/bin/python benchmarks/bench_fit.py [--repeats 3]

Each run is a fresh Python process (import, model build, compile or cache load, sampling of
4 chains x 1000 tuning + 1000 draws, diagnostics), alternating the tools so that machine noise
hits both alike. Bambi fits the same formula on the same data: remission ~ log TL x strategy +
month + (1 | center) + (1 | patient), with TL > 16 entered as 16 (Bambi has no censoring) and its
default priors; pkmodel fits its default model (latent censored TL, patient effect integrated
out). Prints medians, min-max, the ratio and each tool's divergences and smallest bulk ESS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PKMODEL = """
import json, pkmodel
fit = pkmodel.RemissionModel().fit(pkmodel.load_ungar2019(), random_seed=1, progressbar=False)
d = fit.diagnostics()
print(json.dumps({"divergences": d.divergences, "min_ess_bulk": d.min_ess_bulk}))
"""

BAMBI = """
import json, warnings
import numpy as np, bambi as bmb, arviz as az, pkmodel
warnings.simplefilter("ignore")
d = pkmodel.load_ungar2019().data.copy()
d["log_tl"] = np.log(d.baseline_tl) - np.log(5)
d["month"] = d["month"].astype(str)
m = bmb.Model("remission ~ log_tl * strategy + month + (1|center) + (1|patient_id)", d,
              family="bernoulli")
idata = m.fit(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
s = az.summary(idata, kind="diagnostics")
print(json.dumps({"divergences": int(idata["sample_stats"]["diverging"].sum()),
                  "min_ess_bulk": float(s["ess_bulk"].min())}))
"""


def run(code: str) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    elapsed = time.perf_counter() - start
    return elapsed, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"pkmodel": [], "bambi": []}
    info: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, code in (("pkmodel", PKMODEL), ("bambi", BAMBI)):
            elapsed, info[name] = run(code)
            times[name].append(elapsed)
    print("Default fit on the shipped cohort, whole process (s), "
          f"{args.repeats} alternating runs each")
    print(f"{'tool':10s} {'median':>8s} {'min':>7s} {'max':>7s} {'divergences':>12s} "
          f"{'min bulk ESS':>13s}")
    for name, values in times.items():
        values = sorted(values)
        median = values[len(values) // 2]
        print(f"{name:10s} {median:8.1f} {values[0]:7.1f} {values[-1]:7.1f} "
              f"{info[name]['divergences']:12d} {info[name]['min_ess_bulk']:13.0f}")
    ratio = sorted(times["pkmodel"])[args.repeats // 2] / sorted(times["bambi"])[args.repeats // 2]
    print(f"pkmodel / bambi = {ratio:.2f} (target <= 0.33)")


if __name__ == "__main__":
    main()
