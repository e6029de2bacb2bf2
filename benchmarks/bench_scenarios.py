"""Benchmark: dosing-scenario simulation of 10^4, 10^5 and 10^6 virtual patients x 1000 draws.

Each size runs in a fresh Python process (so that peak memory is that run's own): load a saved
remission fit with 1000 posterior draws, simulate three intensified regimens (10 mg/kg q8w,
5 mg/kg q4w, 5 mg/kg q6w) over the default virtual population with the default PK model, chunked
with dask on the local threaded scheduler, and report the wall time of ``simulate_scenarios``,
the peak resident memory of the process (``resource.getrusage``, which includes the ~0.4 GB of
imported libraries, reported separately as the memory before simulating). Per-patient outputs
are off (``per_patient=False``) so that what is measured is the reduction itself.

    .venv/bin/python benchmarks/bench_scenarios.py [--fit FIT.nc] [--sizes 10000 100000 1000000]

``--exposure`` uses the exposure-driven model instead. Without ``--fit`` the model is first
fitted on the shipped cohort (2 chains x 500 draws, about 20 s) into a temporary file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings

REGIMENS = ["10mg/kg q8w", "5mg/kg q4w", "5mg/kg q6w"]

_CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import pkmodel
from pkmodel.scenarios import simulate_scenarios

fit_path, n, chunk, n_draws = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fit = pkmodel.load_fit(fit_path)
simulate_scenarios(fit, 100, ["10mg/kg q8w"], random_seed=0, progress=False)  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
ds = simulate_scenarios(fit, n, %(regimens)r, random_seed=1, chunk_size=chunk,
                        n_draws=n_draws, per_patient=False, progress=False)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
row = ds.remission_rate_mean.sel(month=12, band="all")
print(json.dumps({"patients": n, "draws": int(ds.attrs["n_posterior_draws"]),
                  "eligible": int(ds.n_patients.sel(band="all")), "seconds": seconds,
                  "rss_before_mb": before, "rss_peak_mb": peak,
                  "rate_12m": {str(r): round(float(row.sel(regimen=r)), 4)
                               for r in row.regimen.values}}))
"""


def _fit(path: str, exposure: bool = False) -> None:
    warnings.simplefilter("ignore")
    import pkmodel

    model = pkmodel.RemissionModel(exposure=exposure)
    fit = model.fit(pkmodel.load_ungar2019(), draws=500, chains=2, random_seed=1,
                    progressbar=False)
    fit.save(path, force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", help="a saved remission fit (default: fit one now)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws used")
    parser.add_argument("--exposure", action="store_true",
                        help="fit the exposure-driven model instead (every regimen predicted "
                             "from its own exposure gain: three predictions, not two)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fit_path = args.fit
        if fit_path is None:
            fit_path = os.path.join(tmp, "fit.nc")
            kind = "exposure-driven" if args.exposure else "default"
            print(f"fitting the {kind} remission model (2 chains x 500 draws)...", flush=True)
            _fit(fit_path, args.exposure)
        code = _CHILD % {"regimens": REGIMENS}
        print(f"regimens {', '.join(REGIMENS)}; chunk size {args.chunk_size}; "
              f"{os.cpu_count()} cores")
        print(f"{'patients':>10} {'draws':>6} {'eligible':>9} {'seconds':>9} "
              f"{'RSS before MB':>14} {'RSS peak MB':>12}")
        for n in args.sizes:
            out = subprocess.run([sys.executable, "-c", code, fit_path, str(n),
                                  str(args.chunk_size), str(args.draws)],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['patients']:>10,} {r['draws']:>6} {r['eligible']:>9,} "
                  f"{r['seconds']:>9.1f} {r['rss_before_mb']:>14.0f} {r['rss_peak_mb']:>12.0f}   "
                  f"12-month rates {r['rate_12m']}", flush=True)


if __name__ == "__main__":
    main()
