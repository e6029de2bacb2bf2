"""Whole-process time of ``pkmodel pk fit`` against a plain PyMC model of the same population.

Run from the repository root:

    .venv/bin/python benchmarks/bench_popk.py [--subjects 60] [--samples 2.5]
    .venv/bin/python benchmarks/bench_popk.py --design troughs --subjects 1000 --samples 2
    .venv/bin/python benchmarks/bench_popk.py --design iov --subjects 200 --samples 6

A two-compartment infusion dataset is simulated with known truth (CL x (WT/70)^0.75 estimated,
proportional error), in one of two designs:

* ``mixed`` (default): 3 doses of 5 mg/kg at weeks 0, 2, 6; ``--subjects`` x ``--samples``
  observations at random times among peaks and troughs; CL and V1 with BSV, every typical value
  with a weak prior (log-SD 1, 0.5 for Q and V2);
* ``troughs``: a therapeutic drug monitoring dataset, doses at weeks 0, 2, 6 then every 8 weeks
  to week 22, ``--samples`` troughs a patient on average at random among weeks 6, 14 and 22. Troughs
  inform clearance and little else: CL has BSV (its random effects centred as pkmodel decides by
  default), and V1, Q and V2 are fixed at their true values (``fixed = true``, NONMEM's FIX, as
  taken from a published model);
* ``iov``: the ``mixed`` design's doses, each dosing interval an occasion (three, written in
  ``OCC``), clearance with inter-occasion variability as well (``iov = true``, omega_iov 0.2),
  ``--samples`` observations a subject at random among two a dosing interval.

Each tool runs in a fresh Python process (import, model build, compilation, nutpie sampling of 4
chains x 1000 tuning + 2000 draws, pkmodel's default):

* **pkmodel**: ``pkmodel pk fit DATA --spec SPEC -o FIT.nc --json``, twice, with an empty
  compiled-model cache of its own (``PKMODEL_CACHE_DIR``): *cold*, the first fit of the
  specification, which compiles the model and writes it to the cache; *warm*, a second dataset
  of the same design and size (another seed), which the cached model serves, as it serves every
  refit of a specification with as many subjects;
* **pymc**: the same model written by hand in PyMC (non-centred etas, except clearance centred
  in the trough design, as someone who knows the answer would write it; the same priors, the
  two-compartment infusion closed form summed over doses with numpy-style broadcasting), sampled
  by ``nutpie`` with its default settings.

Printed: the wall time of each, the ratios, and pkmodel's convergence gate. The figures in
benchmarks/README.md come from one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = """\
[model]
compartments = 2
dosing = "infusion"

[parameters.cl]
typical = 0.3
bsv = true

[parameters.v1]
typical = 3.0
bsv = true

[parameters.q]
typical = 0.5
prior_log_sd = 0.5

[parameters.v2]
typical = 2.0
prior_log_sd = 0.5

[[covariates]]
parameter = "cl"
covariate = "WT"
effect = "power"
reference = 70
prior_mean = 0.75
prior_sd = 0.25

[residual]
error = "proportional"
"""

IOV_SPEC = SPEC.replace("typical = 0.3\nbsv = true", "typical = 0.3\nbsv = true\niov = true")

TROUGH_SPEC = SPEC.replace(
    "typical = 3.0\nbsv = true", "typical = 3.2\nfixed = true").replace(
    "typical = 0.5\nprior_log_sd = 0.5", "typical = 0.6\nfixed = true").replace(
    "typical = 2.0\nprior_log_sd = 0.5", "typical = 2.2\nfixed = true")

TRUTH = {"tv_cl": 0.35, "tv_v1": 3.2, "tv_q": 0.6, "tv_v2": 2.2, "omega_cl": 0.35,
         "omega_v1": 0.2, "theta_cl_weight_kg": 0.75, "sigma_prop": 0.15}
# the plain model's priors: (median of the typical value, log-SD) or a fixed value, and
# whether V1 has BSV and CL is sampled centred
PLAIN_PRIORS = {"mixed": {"cl": (0.3, 1), "v1": (3.0, 1), "q": (0.5, 0.5), "v2": (2.0, 0.5),
                          "bsv_v1": True, "centred_cl": False},
                "troughs": {"cl": (0.3, 1), "v1": 3.2, "q": 0.6, "v2": 2.2, "bsv_v1": False,
                            "centred_cl": True},
                "iov": {"cl": (0.3, 1), "v1": (3.0, 1), "q": (0.5, 0.5), "v2": (2.0, 0.5),
                        "bsv_v1": True, "centred_cl": False, "iov_cl": True}}

PLAIN_PYMC = r'''
import json, sys, time
import numpy as np, pandas as pd, pymc as pm, pytensor.tensor as pt, nutpie
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1]); pri = json.loads(sys.argv[2])
ids = {v: i for i, v in enumerate(dict.fromkeys(frame.ID))}
doses = frame[frame.EVID == 1]; obs = frame[frame.EVID == 0]
wt = frame.groupby("ID", sort=False).WT.first().to_numpy()
o_subj = obs.ID.map(ids).to_numpy(); d_subj = doses.ID.map(ids).to_numpy()
po, pd_ = np.nonzero((o_subj[:, None] == d_subj[None, :])
                     & (doses.TIME.to_numpy()[None, :] <= obs.TIME.to_numpy()[:, None]))
elapsed = obs.TIME.to_numpy()[po] - doses.TIME.to_numpy()[pd_]
amt = doses.AMT.to_numpy()[pd_]; dur = (doses.AMT / doses.RATE).to_numpy()[pd_]
subj = d_subj[pd_]; n = len(ids)
with pm.Model() as model:
    lt = {k: np.log(pri[k]) if isinstance(pri[k], float)  # fixed
          else pm.Normal(f"log_tv_{k}", np.log(pri[k][0]), pri[k][1])
          for k in ("cl", "v1", "q", "v2")}
    th = pm.Normal("theta", 0.75, 0.25)
    ocl = pm.HalfNormal("omega_cl", 0.5); sig = pm.HalfNormal("sigma_prop", 0.3)
    if pri["centred_cl"]:
        lcl = pm.Normal("log_cl_i", lt["cl"] + th * np.log(wt / 70), ocl, shape=n)
        cl = pt.exp(lcl)[subj]
    else:
        zcl = pm.Normal("z_cl", 0, 1, shape=n)
        cl = pt.exp(lt["cl"] + th * np.log(wt / 70) + ocl * zcl)[subj]
    if pri.get("iov_cl"):  # each observation's occasion (OCC, numbered from 1): its kappa
        occ = obs.OCC.to_numpy().astype(int) - 1
        oiov = pm.HalfNormal("omega_iov_cl", 0.3)
        ziov = pm.Normal("z_iov_cl", 0, 1, shape=(n, occ.max() + 1))
        cl = cl * pt.exp(oiov * ziov[o_subj[po], occ[po]])
    if pri["bsv_v1"]:
        ov1 = pm.HalfNormal("omega_v1", 0.5); zv1 = pm.Normal("z_v1", 0, 1, shape=n)
        v1 = pt.exp(lt["v1"] + ov1 * zv1)[subj]
    else:
        v1 = pt.exp(lt["v1"])
    q = pt.exp(lt["q"]); v2 = pt.exp(lt["v2"])
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    alpha = 0.5 * (s + pt.sqrt(s * s - 4 * k10 * k21)); beta = k10 * k21 / alpha
    a = (alpha - k21) / (v1 * (alpha - beta)); b = (k21 - beta) / (v1 * (alpha - beta))
    rate = amt / dur; t_in = np.minimum(elapsed, dur)
    def part(c, lam):
        return c / lam * (pt.exp(-lam * (elapsed - t_in)) - pt.exp(-lam * elapsed))
    conc = rate * (part(a, alpha) + part(b, beta))
    pred = pt.inc_subtensor(pt.zeros(len(obs))[po], conc)
    pm.Normal("y", pred, sig * pred, observed=obs.DV.to_numpy())
compiled = nutpie.compile_pymc_model(model)
trace = nutpie.sample(compiled, draws=2000, tune=1000, chains=4, seed=1, progress_bar=False)
div = int(trace.sample_stats.diverging.sum())
print(f"PLAIN {time.perf_counter() - start:.1f} divergences={div}")
'''


def simulate(path: Path, n_subjects: int, samples: float, seed: int,
             design: str = "mixed") -> int:
    """Write the dataset and its specification; return its number of observations."""
    from pkmodel.pk.population import read_spec, simulate_dataset

    spec_path = path.parent / "spec.toml"
    spec_path.write_text({"mixed": SPEC, "troughs": TROUGH_SPEC, "iov": IOV_SPEC}[design],
                         encoding="utf-8")
    spec = read_spec(spec_path)
    rng = np.random.default_rng(seed)
    if design == "mixed":
        doses, times, truth = [0, 14, 42], [0.1, 13.9, 14.1, 41.9, 42.1, 55.9, 70.0, 97.9], TRUTH
    elif design == "iov":  # two samples in each of the three dosing intervals
        doses, times = [0, 14, 42], [0.1, 13.9, 14.1, 41.9, 42.1, 55.9]
        truth = TRUTH | {"omega_iov_cl": 0.2}
    else:
        doses, times = [0, 14, 42, 98, 154], [41.9, 97.9, 153.9]
        truth = {k: v for k, v in TRUTH.items() if k != "omega_v1"}
    sim = simulate_dataset(spec, truth, n_subjects=n_subjects, dose_times_days=doses,
                           sample_times_days=times, dose_mg_kg=5, random_seed=seed)
    frame = sim.frame
    obs = frame.index[frame.EVID == 0].to_numpy()
    keep = rng.choice(obs, size=round(samples * n_subjects), replace=False)
    frame = frame[(frame.EVID == 1) | frame.index.isin(keep)]
    frame.to_csv(path, index=False)
    return int((frame.EVID == 0).sum())


def _pkmodel(data: Path, tmp: Path, seed: int, cache: Path, label: str) -> float:
    """Run ``pkmodel pk fit`` in a fresh process with the cache directory ``cache``; print its
    time and gate, return the time."""
    cli = "import sys; from pkmodel.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PKMODEL_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", cli, "pk", "fit", str(data), "--spec",
                          str(tmp / "spec.toml"), "-o", str(tmp / f"{data.stem}.nc"), "--json",
                          "--force", "--seed", str(seed)],
                         capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"pkmodel pk fit failed: {out.stderr[-2000:]}")
    gate = json.loads(out.stdout)["diagnostics"]
    print(f"pkmodel pk fit ({label}): {elapsed:.1f} s whole process; gate passed: "
          f"{gate['converged']}, divergences {gate['divergences']}, max R-hat "
          f"{gate['max_rhat']:.3f}, min bulk ESS {gate['min_ess_bulk']:.0f} "
          f"({gate.get('worst_ess_parameter', '?')})")
    return elapsed


def main() -> None:
    """Run both tools once each and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=60)
    parser.add_argument("--samples", type=float, default=2.5, help="observations per subject")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--design", choices=("mixed", "troughs", "iov"), default="mixed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pk.csv"
        n_obs = simulate(data, args.subjects, args.samples, args.seed, args.design)
        print(f"{args.subjects} subjects, {n_obs} observations")
        cache = Path(tmp) / "cache"  # empty: the first fit compiles and writes the entry
        ours = _pkmodel(data, Path(tmp), args.seed, cache, "cold: compiles")
        # another dataset of the same design and size: the entry of the first serves it
        other = Path(tmp) / "pk_other.csv"
        simulate(other, args.subjects, args.samples, args.seed + 1, args.design)
        warm = _pkmodel(other, Path(tmp), args.seed, cache, "warm: another dataset, cached model")
        script = Path(tmp) / "plain.py"
        script.write_text(PLAIN_PYMC, encoding="utf-8")
        start = time.perf_counter()
        plain = subprocess.run([sys.executable, str(script), str(data),
                                json.dumps(PLAIN_PRIORS[args.design])], capture_output=True,
                               text=True, check=False)
        theirs = time.perf_counter() - start
        if plain.returncode != 0:
            sys.exit(f"plain PyMC failed: {plain.stderr[-2000:]}")
        line = [s for s in plain.stdout.splitlines() if s.startswith("PLAIN")][-1]
        print(f"plain PyMC + nutpie: {theirs:.1f} s whole process ({line.split()[-1]})")
        print(f"ratio pkmodel / plain PyMC: {ours / theirs:.2f} cold, {warm / theirs:.2f} warm")


if __name__ == "__main__":
    main()
