"""Agreement with NONMEM on a public one-compartment infusion dataset (120 subjects, single and
multiple doses), fitted as published.

The dataset and the NONMEM FOCE-I run are those of the nlmixr validation (Schoemaker et al.,
CPT Pharmacometrics Syst Pharmacol 2019;8:923-930): the simulated ``Infusion_1CPT`` dataset and
NONMEM 7.4.3's run ``runN015`` ("INFUSION_1CPT_VCL SINGLE + MULTIPLE DOSE FOCE INTER"), in the
GitHub repository nlmixr2/nlmixr2test at commit 2c1809adce065aa1f769717f9aeef4689a850130
(``cpt/Infusion_1CPT.csv``; ``nonmem/solved/runN015.ctl``, ``.ext`` with the estimates and
standard errors, ``.lst``). They are downloaded at run time into a temporary directory (or copied
from a local checkout of that commit, ``--from``), checked against their SHA-256, and never
written into this repository.

The data are read as published: comma-separated with their own header, TIME in hours, AMT in µg
(10 to 120 mg) infused over an hour (``RATE`` = ``AMT`` per hour), DV in µg/L; a single dose at
time 0 sampled to 72 h, then seven daily doses from 72 h, all as explicit dose records (EVID 1),
and seven EVID 2 records. The control stream renames the file's ``SS`` and ``II`` columns to
``SSX`` and ``IIX`` (the file holds 99 as a placeholder in ``SS``, and ``SS`` 1 with ``II`` 24
on each subject's last dose), so NONMEM does not read them: the specification's ``[data] drop =
["SS", "II"]`` does the same. The columns ``V`` and ``CL`` (each subject's simulated values) are
not read, as NONMEM does not use them. The model is the control stream's (``ADVAN1 TRANS2``):

    CL = EXP(THETA(1)+ETA(1));  V = EXP(THETA(2)+ETA(2))
    Y = IPRED + IPRED*THETA(3)*EPS(1)   ($SIGMA 1 FIX)

as a pkmodel specification: one compartment, zero-order infusion, ``cl`` and ``v`` with BSV
(diagonal, as ``$OMEGA``), proportional error (``sigma_prop`` is THETA(3)); the prior medians of
the typical values are the control stream's initial estimates. NONMEM's THETA(1) and THETA(2) are
the logarithms of the typical values: each is compared on that scale, in NONMEM standard errors,
with the logarithm of pkmodel's posterior median. Agreement (issue 26): each within 2 standard
errors; each variance (omega^2 = median(omega)^2, sigma^2 = median(sigma_prop)^2 against
THETA(3)^2) within a factor 1.5.

    .venv/bin/python benchmarks/public_infusion1cpt.py             # 4 chains x 1000 + 1000
    .venv/bin/python benchmarks/public_infusion1cpt.py --json docs/infusion1cpt_nonmem.json
    .venv/bin/python benchmarks/public_infusion1cpt.py --from ~/nlmixr2test   # a local checkout
    python docs/generate.py                                        # the table in the docs

``--json`` writes the figures (no data) that the table of ``docs/population_pk.md`` is
generated from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from public_pheno import agreement, print_table

REPOSITORY = "nlmixr2/nlmixr2test"
COMMIT = "2c1809adce065aa1f769717f9aeef4689a850130"
DATA = "cpt/Infusion_1CPT.csv"
RUN = "nonmem/solved/runN015"
#: SHA-256 of the files at COMMIT: a download or a local copy must be these.
SHA256 = {
    DATA: "5214b203c6ffcca506486469559f11f1a1e610eb4256b104a240125394942dfc",
    RUN + ".ext": "65ee9a53a91ed0e3d41c57d348a87ac6f7e19c342def67aeceddd155f4435df6",
    RUN + ".ctl": "512cbc756a2915bbaf9ea8b31d0edb0346b8c5368cb9be534c26f9fedd808159",
    RUN + ".csv": "6fd9061bbe012f59597bc52c8d6eca21237d24fc2bee56f6f4b046cbfebd64c8",
}

SPEC = """\
[model]
compartments = 1
dosing = "infusion"       # durations from RATE (AMT/RATE = 1 h)

[data]
time_unit = "hour"
amount_unit = "µg"
concentration_unit = "µg/L"
drop = ["SS", "II"]       # $INPUT ... SSX IIX ...: NONMEM does not read them either

[parameters.cl]           # CL = EXP(THETA(1)+ETA(1)), $THETA 1.6
typical = 4.953
unit = "L/h"
bsv = true

[parameters.v]            # V = EXP(THETA(2)+ETA(2)), $THETA 4.5
typical = 90.02
bsv = true

[residual]
error = "proportional"    # Y = IPRED + IPRED*THETA(3)*EPS(1), $SIGMA 1 FIX
"""

#: NONMEM's name of each quantity in the .ext file, its label, and pkmodel's parameter.
QUANTITIES = {
    "THETA1": ("log CL (L/h)", "cl"), "THETA2": ("log V (L)", "v"),
    "THETA3": ("sigma^2 (proportional, THETA3^2)", None),
    "OMEGA(1,1)": ("omega^2 CL", "cl"), "OMEGA(2,2)": ("omega^2 V", "v"),
}
RESIDUAL = "THETA3"


def download(directory: Path, local: Path | None = None) -> Path:
    """The dataset and the run's files, from GitHub at :data:`COMMIT` (or copied from a local
    checkout ``local``) into ``directory``, each checked against :data:`SHA256`."""
    for name, digest in SHA256.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if local is not None:
            shutil.copyfile(local / name, target)
        else:
            url = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/{name}"
            with urllib.request.urlopen(url, timeout=60) as response:
                target.write_bytes(response.read())
        found = hashlib.sha256(target.read_bytes()).hexdigest()
        if found != digest:
            raise SystemExit(f"{name}: SHA-256 {found}, expected {digest} (not the file of "
                             f"{REPOSITORY} at {COMMIT})")
    return directory


def nonmem_estimates(ext: Path) -> dict[str, tuple[float, float]]:
    """NONMEM's final estimates and standard errors from the ``.ext`` file (iterations
    -1000000000 and -1000000001); THETA3 (the proportional SD) as its square, a variance, with
    the delta-method standard error ``2 THETA3 SE``."""
    table = pd.read_csv(ext, sep=r"\s+", skiprows=1)
    final = table[table["ITERATION"] == -1000000000].iloc[0]
    se = table[table["ITERATION"] == -1000000001].iloc[0]
    out = {k: (float(final[k]), float(se[k])) for k in QUANTITIES}
    value, error = out[RESIDUAL]
    out[RESIDUAL] = (value**2, 2 * value * error)
    return out


def ipred_difference(data_file: Path, table_file: Path) -> float:
    """The largest relative difference between NONMEM's individual predictions (``IPRED`` of
    the run's table, at each subject's ``CL`` and ``V`` there) and pkmodel's closed form at
    those parameters, over the observations: a check of the dosing records as read (the
    ``SS`` and ``II`` columns dropped) and of the structure, independent of the sampler. The
    table has five significant digits."""
    from pkmodel.pk import read_nonmem
    from pkmodel.pk.structures import linear_structure
    from pkmodel.pk.units import to_internal

    table = pd.read_csv(table_file, sep=r"\s+", skiprows=1)
    table = table[(table["EVID"] == 0) & (table["MDV"] == 0)]
    data = read_nonmem(data_file, time_unit="hour", dosing="infusion", drop=["SS", "II"])
    structure = linear_structure(1, "infusion")
    worst = 0.0
    for sid, subject in data.subjects.items():
        rows = table[table["ID"] == float(sid)]
        p = {"cl": np.asarray(to_internal(rows["CL"].iloc[0], "volume/time", "hour")),
             "v": np.asarray(rows["V"].iloc[0])}
        pred = subject.schedule.concentrations(structure, p, subject.schedule.amounts,
                                               subject.observations.times_days)
        ipred = rows["IPRED"].to_numpy()
        worst = max(worst, float(np.max(np.abs(pred - ipred) / ipred)))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--from", dest="local", type=Path,
                        help="a local checkout of nlmixr2test at the commit, instead of GitHub")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from pkmodel.pk.population import fit_population, read_spec
    from pkmodel.pk.units import from_internal

    with tempfile.TemporaryDirectory() as tmp:
        folder = download(Path(tmp), args.local)
        nonmem = nonmem_estimates(folder / (RUN + ".ext"))
        ipred = ipred_difference(folder / DATA, folder / (RUN + ".csv"))
        spec_path = Path(tmp) / "infusion1cpt.toml"
        spec_path.write_text(SPEC, encoding="utf-8")
        spec = read_spec(spec_path)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = fit_population(folder / DATA, spec, draws=args.draws, tune=args.tune,
                                 chains=args.chains, random_seed=args.seed)
        seconds = time.perf_counter() - start
    post = fit.posterior
    ours: dict[str, float] = {}
    for key, (_, name) in QUANTITIES.items():
        if key.startswith("THETA") and name is not None:  # log typical value, per hour
            typical = from_internal(post[f"tv_{name}"], spec.structure.kind(name), "hour")
            ours[key] = float(np.log(np.median(np.asarray(typical))))
        elif key == RESIDUAL:
            ours[key] = float(np.median(post["sigma_prop"].values)) ** 2
        else:
            ours[key] = float(np.median(post[f"omega_{name}"].values)) ** 2
    rows = [agreement(QUANTITIES[key][0], estimate, se, ours[key],
                      variance=key.startswith("OMEGA") or key == RESIDUAL)
            for key, (estimate, se) in nonmem.items()]
    print(f"Infusion_1CPT ({fit.data.n_subjects} subjects, {fit.data.n_observations} "
          "observations), "
          f"{args.chains} chains x {args.tune} + {args.draws}, {seconds:.0f} s; "
          f"converged: {fit.converged}")
    print(f"pkmodel's predictions at NONMEM's individual CL and V: NONMEM's IPRED within "
          f"{ipred:.1e} (relative)")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({
            "source": "benchmarks/public_infusion1cpt.py",
            "data": f"{REPOSITORY}@{COMMIT} {DATA}",
            "nonmem": f"{RUN}.ctl, {RUN}.ext", "random_seed": args.seed,
            "chains": args.chains, "draws": args.draws, "tune": args.tune,
            "seconds": round(seconds), "n_subjects": fit.data.n_subjects,
            "n_observations": fit.data.n_observations, "converged": bool(fit.converged),
            "ipred_max_relative_difference": ipred,
            "rows": rows}, indent=1) + "\n", encoding="utf-8")
    return 0 if fit.converged and all(r["within"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
