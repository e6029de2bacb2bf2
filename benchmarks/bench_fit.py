"""Whole-process time of the default fit on the shipped cohort: pkmodel vs Bambi vs plain PyMC.

Run from the repository root, with Bambi installed (``pip install -e ".[bench]"``):

    .venv/bin/python benchmarks/bench_fit.py [--repeats 3] [--modes warm cold]

Each run is a fresh Python process (import, model build, compile or cache load, sampling of
4 chains x 1000 tuning + 1000 draws, diagnostics), alternating the tools so that machine noise
hits all alike. A *cold* run gets fresh, empty ``PYTENSOR_FLAGS=compiledir=<tmp>``,
``NUMBA_CACHE_DIR=<tmp>`` and ``PKMODEL_CACHE_DIR=<tmp>`` directories; a *warm* run uses the
default caches, filled by one untimed run of each tool first, as a user's second fit would.
``--breakdown`` times the phases of warm pkmodel processes instead.

The three tools fit the same data:

* **pkmodel**: its default model (latent censored TL, patient effect integrated out by
  Gauss-Hermite quadrature, regularised strategy slope offsets, zero-sum centre effects);
* **bambi**: ``remission ~ log_tl * strategy + month + (1|center) + (1|patient_id)``,
  Bernoulli, TL > 16 entered as 16 (Bambi has no censoring), Bambi's default priors;
* **pymc**: the same formula as Bambi written by hand in PyMC (non-centred centre and patient
  intercepts, weakly informative priors), TL > 16 entered as 16.

All three sample with nutpie (PyMC's default NUTS sampler when installed; pkmodel calls it
directly, with its compiled model cached on disk). Reported: wall time
(median, min-max), divergences, the smallest bulk ESS over the population parameters (every
variable not indexed by patient, centre or observation) and that ESS per second of wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# Shared by the subprocesses: the smallest bulk ESS over population-level variables.
_POPULATION_ESS = """
def population_ess(idata):
    import arviz as az
    post = idata["posterior"]
    local = ("patient", "center", "group", "obs")
    names = [v for v in post.data_vars
             if not any(k in d for d in post[v].dims[2:] for k in local)]
    ess = az.ess(idata, var_names=names, method="bulk")
    return float(min(float(ess[v].min()) for v in names))
"""

PKMODEL = _POPULATION_ESS + """
import json, pkmodel
fit = pkmodel.RemissionModel().fit(pkmodel.load_ungar2019(), random_seed=1, progressbar=False)
d = fit.diagnostics
print(json.dumps({"divergences": d.divergences, "pop_ess_bulk": population_ess(fit.tree)}))
"""

_DATA = """
import numpy as np, pkmodel
d = pkmodel.load_ungar2019().data.copy()
d["log_tl"] = np.log(d.baseline_tl) - np.log(5)
d["month"] = d["month"].astype(str)
"""

BAMBI = _POPULATION_ESS + _DATA + """
import json, warnings
import bambi as bmb
warnings.simplefilter("ignore")
m = bmb.Model("remission ~ log_tl * strategy + month + (1|center) + (1|patient_id)", d,
              family="bernoulli")
idata = m.fit(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
print(json.dumps({"divergences": int(idata["sample_stats"]["diverging"].sum()),
                  "pop_ess_bulk": population_ess(idata)}))
"""

PYMC = _POPULATION_ESS + _DATA + """
import json, warnings
import pymc as pm
warnings.simplefilter("ignore")
strategy, strategies = d["strategy"].factorize(sort=True)
month, months = d["month"].factorize(sort=True)
center, centers = d["center"].factorize(sort=True)
patient, patients = d["patient_id"].factorize(sort=True)
s1 = (strategy == 1).astype(float)
m1 = (month == 1).astype(float)
x = d["log_tl"].to_numpy()
coords = {"center": list(centers), "patient": list(patients)}
with pm.Model(coords=coords):
    b0 = pm.Normal("intercept", 0.0, 2.5)
    b_tl = pm.Normal("log_tl", 0.0, 2.5)
    b_s = pm.Normal("strategy", 0.0, 2.5)
    b_tl_s = pm.Normal("log_tl_strategy", 0.0, 2.5)
    b_m = pm.Normal("month", 0.0, 2.5)
    sigma_center = pm.HalfNormal("sigma_center", 1.0)
    z_center = pm.Normal("z_center", 0.0, 1.0, dims="center")
    sigma_patient = pm.HalfNormal("sigma_patient", 2.0)
    z_patient = pm.Normal("z_patient", 0.0, 1.0, dims="patient")
    eta = (b0 + b_tl * x + b_s * s1 + b_tl_s * x * s1 + b_m * m1
           + sigma_center * z_center[center] + sigma_patient * z_patient[patient])
    pm.Bernoulli("remission", logit_p=eta, observed=d["remission"].to_numpy())
    idata = pm.sample(draws=1000, tune=1000, chains=4, random_seed=1, progressbar=False)
print(json.dumps({"divergences": int(idata["sample_stats"]["diverging"].sum()),
                  "pop_ess_bulk": population_ess(idata)}))
"""

TOOLS = {"pkmodel": PKMODEL, "bambi": BAMBI, "pymc": PYMC}

# Where a warm pkmodel process spends its time; wall-clock stamps compared with the parent's.
BREAKDOWN = """
import time
t0 = time.time()
import json, pkmodel  # the rest is imported by the fit, as in the timed runs
from pkmodel.response.spec import RemissionModel
from pkmodel.response.compiled import sampler_model
t1 = time.time()
spec = RemissionModel()
cohort = pkmodel.load_ungar2019()
design, options = spec._design(cohort)
model = sampler_model(design, spec.priors, **options)
t2 = time.time()
fit = spec.fit(cohort, random_seed=1, progressbar=False)  # the model above is reused
t3 = time.time()
fit.diagnostics
t4 = time.time()
print(json.dumps({"start": t0, "imports": t1 - t0, "model": t2 - t1, "fit": t3 - t2,
                  "diagnostics": t4 - t3, "end": t4, "from_cache": model.from_cache}))
"""


def run(code: str, cold: bool) -> tuple[float, dict]:
    """Run ``code`` in a fresh interpreter; return its wall time and the JSON it prints last.

    Parameters
    ----------
    code : str
        Python source that prints a JSON object as its last line.
    cold : bool
        Give the process empty PyTensor, numba and pkmodel cache directories.
    """
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench_fit_") as tmp:
        if cold:
            env["PYTENSOR_FLAGS"] = f"compiledir={tmp}/pytensor"
            env["NUMBA_CACHE_DIR"] = f"{tmp}/numba"
            env["PKMODEL_CACHE_DIR"] = f"{tmp}/pkmodel"
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env)
        elapsed = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"benchmark process failed:\n{out.stderr[-3000:]}")
    return elapsed, json.loads(out.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    """Median (mean of the two middle values for an even count)."""
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def breakdown(repeats: int) -> None:
    """Print the phases of ``repeats`` warm pkmodel processes (after one untimed run)."""
    rows = []
    for i in range(repeats + 1):
        begin = time.time()
        out = subprocess.run([sys.executable, "-c", BREAKDOWN], capture_output=True, text=True)
        finish = time.time()
        if out.returncode:
            raise RuntimeError(f"benchmark process failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if i:
            rows.append({"interpreter start": r["start"] - begin, "imports": r["imports"],
                         "cohort + compiled model (numba, cache load)": r["model"],
                         "fit: nutpie and arviz import, sampling, xarray, checks": r["fit"],
                         "diagnostics": r["diagnostics"], "interpreter exit": finish - r["end"],
                         "whole process": finish - begin})
    print(f"Warm pkmodel process, phases, {repeats} runs (load average "
          f"{os.getloadavg()[0]:.1f}): median [min-max] s")
    print("| phase | median s | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for phase in rows[0]:
        v = [r[phase] for r in rows]
        print(f"| {phase} | {median(v):.2f} | {min(v):.2f} | {max(v):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=("cold", "warm"), default=["cold", "warm"])
    parser.add_argument("--tools", nargs="+", choices=tuple(TOOLS), default=list(TOOLS))
    parser.add_argument("--breakdown", action="store_true",
                        help="only time the phases of warm pkmodel runs")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.repeats)
        return
    times: dict[tuple[str, str], list[float]] = {}
    info: dict[tuple[str, str], list[dict]] = {}
    if "warm" in args.modes:  # fill the default caches first, untimed, for every tool
        for name in args.tools:
            run(TOOLS[name], cold=False)
    for _ in range(args.repeats):
        for mode in args.modes:
            for name in args.tools:
                elapsed, result = run(TOOLS[name], cold=mode == "cold")
                times.setdefault((mode, name), []).append(elapsed)
                info.setdefault((mode, name), []).append(result)
                print(f"  {mode} {name}: {elapsed:.1f} s {result}", file=sys.stderr, flush=True)
    print(f"Default fit on the shipped cohort, whole process, {args.repeats} alternating runs "
          f"each (load average {os.getloadavg()[0]:.1f})")
    print("| mode | tool | median s | min | max | / bambi | divergences | min pop bulk ESS "
          "| pop ESS/s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in args.modes:
        ref = median(times[(mode, "bambi")]) if (mode, "bambi") in times else float("nan")
        for name in args.tools:
            t = times[(mode, name)]
            runs = info[(mode, name)]
            div = median([r["divergences"] for r in runs])
            ess = median([r["pop_ess_bulk"] for r in runs])
            rate = median([r["pop_ess_bulk"] / s for r, s in zip(runs, t, strict=True)])
            print(f"| {mode} | {name} | {median(t):.1f} | {min(t):.1f} | {max(t):.1f} | "
                  f"{median(t) / ref:.2f} | {div:g} | {ess:.0f} | {rate:.0f} |")
    print("target: pkmodel / bambi <= 0.33 (warm), no divergences, bulk ESS >= 1000")


if __name__ == "__main__":
    main()
