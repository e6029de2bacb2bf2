"""Benchmark: a per-patient recommendation on a saved exposure-driven fit.

Fits the exposure-driven model on the shipped cohort (default settings) into a temporary file,
then times, in one run:

- ``fit.recommend(...)`` in a process that has the fit loaded (the call: target < 1 s), with a
  measured trough, a trough above the assay limit (``>16``: the latent trough) and without one
  (the value of a measurement: 4000 trough draws, one PK importance sample), and with a TDM
  history of five troughs under ten doses (the patient's PK posterior from every trough);
- ``pkmodel.load_fit`` of the saved file;
- the whole command ``pkmodel recommend FIT --tl 4 --weight 62 --json`` and ``pkmodel recommend
  FIT --history HISTORY.csv --json`` (target < 2 s) in a fresh process, against ``pkmodel
  --help`` (the interpreter and the command line's imports alone), as a ratio.

    .venv/bin/python benchmarks/bench_recommend.py [--fit FIT.nc] [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def history_file(folder: Path) -> Path:
    """A TDM history: 5 mg/kg every 8 weeks (70 kg, 2-hour infusions), five troughs."""
    import pandas as pd

    rows = [{"ID": 1, "TIME": 56.0 * k, "AMT": 350.0, "RATE": 4200.0, "DV": ".", "EVID": 1,
             "MDV": 1} for k in range(10)]
    rows += [{"ID": 1, "TIME": 56.0 * k, "AMT": ".", "RATE": ".", "DV": tl, "EVID": 0,
              "MDV": 0} for k, tl in zip((2, 4, 6, 8, 10), (3.1, 2.2, 4.0, 2.6, 3.0),
                                         strict=True)]
    frame = pd.DataFrame(rows).sort_values(["TIME", "EVID"], kind="stable")
    frame["WT"], frame["ALB"], frame["IMM"] = 70.0, 4.0, 0
    path = folder / "history.csv"
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fit", help="a saved exposure-driven fit (default: fit one)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import pkmodel

    path = args.fit
    if path is None:
        path = str(Path(tempfile.mkdtemp()) / "exposure.nc")
        pkmodel.RemissionModel(exposure=True).fit(pkmodel.load_ungar2019(), random_seed=1,
                                                  progressbar=False).save(path)
    load = _best(lambda: pkmodel.load_fit(path), args.repeat)
    fit = pkmodel.load_fit(path)
    measured = _best(lambda: fit.recommend(tl_ug_ml=4.0, weight_kg=62), args.repeat)
    censored = _best(lambda: fit.recommend(tl_ug_ml=16.0, tl_cens=-1, weight_kg=62),
                     args.repeat)
    unmeasured = _best(lambda: fit.recommend(tl_ug_ml=None, weight_kg=62), args.repeat)
    history = history_file(Path(tempfile.mkdtemp()))
    with_history = _best(lambda: fit.recommend(history=history), args.repeat)
    exe = str(Path(sys.executable).with_name("pkmodel"))
    whole = _best(lambda: subprocess.run([exe, "recommend", path, "--tl", "4", "--weight", "62",
                                          "--json"], check=True, capture_output=True),
                  args.repeat)
    whole_history = _best(lambda: subprocess.run([exe, "recommend", path, "--history",
                                                  str(history), "--json"], check=True,
                                                 capture_output=True), args.repeat)
    bare = _best(lambda: subprocess.run([exe, "--help"], check=True, capture_output=True),
                 args.repeat)
    print(f"recommend call, measured trough:      {measured:7.3f} s")
    print(f"recommend call, trough above 16:      {censored:7.3f} s")
    print(f"recommend call, no trough (TDM value): {unmeasured:7.3f} s")
    print(f"recommend call, 5-trough history:     {with_history:7.3f} s")
    print(f"load_fit:                             {load:7.3f} s")
    print(f"pkmodel recommend, whole process:     {whole:7.3f} s")
    print(f"... --history (5 troughs), whole:      {whole_history:7.3f} s")
    print(f"pkmodel --help, whole process:        {bare:7.3f} s")
    print(f"ratio whole recommend / --help:       {whole / bare:7.2f}")


if __name__ == "__main__":
    main()
