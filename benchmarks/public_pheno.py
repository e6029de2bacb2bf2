"""Agreement with NONMEM on the public phenobarbital dataset (59 neonates), fitted as published.

The dataset and NONMEM's FOCE-I estimates come with pharmpy (the PyPI wheel ``pharmpy-core``
2.2.0, LGPL: ``pharmpy/internals/example_models/pheno.dta`` and ``pheno.mod`` with its ``.ext``
file of estimates and standard errors). They are downloaded at run time into a temporary
directory with pip and never written into this repository.

The data are read as published: whitespace-separated, the column names of the control stream's
``$INPUT`` (``ID TIME AMT WGT APGR DV FA1 FA2``, the file's own header line), TIME in hours, AMT
in mg, DV in mg/L, WGT in kg, APGR the Apgar score 1-10. The file has no ``EVID`` column:
pkmodel's reader infers each row's event as NONMEM does (a row with ``AMT > 0`` is a dose, the
others observations) and notes it. The model is the control stream's (``ADVAN1 TRANS2``, IV
bolus):

    TVCL = THETA(1)*WGT;  TVV = THETA(2)*WGT;  IF(APGR.LT.5) TVV = TVV*(1 + THETA(3))
    CL = TVCL*EXP(ETA(1));  V = TVV*EXP(ETA(2));  Y = F + F*EPS(1)

as a pkmodel specification: WGT and APGR declared with their units and ranges, ``power`` effects
of WGT with the exponent fixed at 1 (reference 1 kg, so the typical values are per kg), and an
``indicator`` effect of APGR < 5 on V, ``exp(theta) = 1 + THETA(3)``. Agreement (issue 26): each
typical value within 2 NONMEM standard errors of NONMEM's estimate, each variance within a factor
1.5 (posterior medians; omega^2 = median(omega)^2).

    .venv/bin/python benchmarks/public_pheno.py                # 4 chains x 1000 + 1000
    .venv/bin/python benchmarks/public_pheno.py --json docs/pheno_nonmem.json
    python docs/generate.py                                    # the table in the docs

``--json`` writes the figures (no data) that the table of ``docs/population_pk.md`` is
generated from.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

WHEEL = "pharmpy-core==2.2.0"
MEMBER = "pharmpy/internals/example_models/"

SPEC = """\
[model]
compartments = 1
dosing = "bolus"

[data]
time_unit = "hour"

[data.covariates.WGT]
unit = "kg"
range = [0.3, 6.0]

[data.covariates.APGR]
levels = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]

[parameters.cl]
typical = 0.12            # L/day per kg (0.005 L/h/kg)
unit = "L/day"            # the dataset's time unit is the hour: without this, 0.12 L/h/kg
bsv = true

[parameters.v]
typical = 1.0             # L per kg
bsv = true

[[covariates]]            # TVCL = THETA(1)*WGT
parameter = "cl"
covariate = "WGT"
effect = "power"
reference = 1.0
exponent = 1.0

[[covariates]]            # TVV = THETA(2)*WGT
parameter = "v"
covariate = "WGT"
effect = "power"
reference = 1.0
exponent = 1.0

[[covariates]]            # IF(APGR.LT.5) TVV = TVV*(1 + THETA(3))
parameter = "v"
covariate = "APGR"
effect = "indicator"
below = 5

[residual]
error = "proportional"    # Y = F + F*EPS(1)
"""


def download(directory: Path) -> Path:
    """The wheel's example models, unpacked into ``directory``."""
    subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d",
                    str(directory)], check=True)
    wheel = next(directory.glob("pharmpy_core-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(MEMBER + "pheno."):
                archive.extract(name, directory)
    return directory / MEMBER


def nonmem_estimates(ext: Path) -> dict[str, tuple[float, float]]:
    """NONMEM's final estimates and standard errors from the ``.ext`` file (iterations
    -1000000000 and -1000000001)."""
    table = pd.read_csv(ext, sep=r"\s+", skiprows=1)
    final = table[table["ITERATION"] == -1000000000].iloc[0]
    se = table[table["ITERATION"] == -1000000001].iloc[0]
    names = {"THETA1": "CL (L/h/kg)", "THETA2": "V (L/kg)", "THETA3": "APGR<5 on V (THETA3)",
             "SIGMA(1,1)": "sigma^2 (proportional)", "OMEGA(1,1)": "omega^2 CL",
             "OMEGA(2,2)": "omega^2 V"}
    return {label: (float(final[k]), float(se[k])) for k, label in names.items()}



def agreement(label: str, estimate: float, se: float, value: float, *,
              variance: bool) -> dict:
    """One row of the agreement table: a typical value within 2 NONMEM standard errors of
    NONMEM's estimate, a variance within a factor 1.5 of it."""
    if variance:
        ratio = value / estimate
        ok, measure = 1 / 1.5 <= ratio <= 1.5, f"ratio {ratio:.2f}"
    else:
        z = (value - estimate) / se
        ok, measure = abs(z) <= 2, f"{z:+.2f} SE"
    return {"quantity": label, "nonmem": estimate, "nonmem_se": se, "pkmodel": value,
            "agreement": measure, "within": bool(ok)}


def print_table(rows: list[dict]) -> None:
    """The agreement rows (:func:`agreement`) as a Markdown table."""
    print("| quantity | NONMEM FOCE-I (SE) | pkmodel posterior median | agreement | within |")
    print("| --- | ---: | ---: | ---: | :---: |")
    for r in rows:
        print(f"| {r['quantity']} | {r['nonmem']:.5g} ({r['nonmem_se']:.3g}) | "
              f"{r['pkmodel']:.5g} | {r['agreement']} | {'yes' if r['within'] else 'NO'} |")

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from pkmodel.pk.population import fit_population, read_spec

    with tempfile.TemporaryDirectory() as tmp:
        folder = download(Path(tmp))
        nonmem = nonmem_estimates(folder / "pheno.ext")
        spec_path = Path(tmp) / "pheno.toml"
        spec_path.write_text(SPEC, encoding="utf-8")
        spec = read_spec(spec_path)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the file as published: whitespace-separated, its header $INPUT's names, no EVID
            fit = fit_population(folder / "pheno.dta", spec, sep=r"\s+", draws=args.draws,
                                 tune=args.tune, chains=args.chains, random_seed=args.seed)
        seconds = time.perf_counter() - start
    post = fit.posterior
    median = {k: float(np.median(post[k].values)) for k in post.data_vars
              if "subject" not in post[k].dims}
    ours = {"CL (L/h/kg)": median["tv_cl"] / 24.0, "V (L/kg)": median["tv_v"],
            "APGR<5 on V (THETA3)": float(np.median(np.exp(post["theta_v_APGR"].values))) - 1,
            "sigma^2 (proportional)": median["sigma_prop"] ** 2,
            "omega^2 CL": median["omega_cl"] ** 2, "omega^2 V": median["omega_v"] ** 2}
    rows = [agreement(label, estimate, se, ours[label],
                      variance=label.startswith(("sigma", "omega")))
            for label, (estimate, se) in nonmem.items()]
    print(f"pheno (59 neonates, {fit.data.n_observations} observations), {args.chains} chains "
          f"x {args.tune} + {args.draws}, {seconds:.0f} s; converged: {fit.converged}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({
            "source": "benchmarks/public_pheno.py", "data": WHEEL + " " + MEMBER + "pheno.dta",
            "nonmem": MEMBER + "pheno.mod, pheno.ext", "random_seed": args.seed,
            "chains": args.chains, "draws": args.draws, "tune": args.tune,
            "n_subjects": fit.data.n_subjects, "n_observations": fit.data.n_observations,
            "converged": bool(fit.converged), "rows": rows}, indent=1) + "\n",
            encoding="utf-8")
    return 0 if all(r["within"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
