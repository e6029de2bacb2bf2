"""Cold compile of the population PK model against a plain PyMC model of the same population.

Run from the repository root (fresh processes, alternating, so that a noisy machine affects
both alike):

    .venv/bin/python benchmarks/compile_popk.py [--repeats 2]

The ``mixed`` design of ``bench_popk.py`` (60 subjects, 150 observations, two-compartment
infusions, CL and V1 with BSV, a weight effect): the time of ``nutpie.compile_pymc_model`` (PyTensor
rewrites and Numba compilation) of

* **plain**: the hand-written PyMC model of ``bench_popk.py`` (the data as constants);
* **pkmodel**: pkmodel's model of the same data (the data as inputs, so that one compiled model
  serves every dataset of the specification), without censored values;
* **pkmodel, censored**: the same with an LLOQ that censors some values (the M3 terms compiled).

and the number of nodes of each compiled log-density-and-gradient graph, by kind. Printed: the
times, their ratios, and the node counts that differ.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import collections, json, sys, time, warnings
from pathlib import Path
warnings.simplefilter("ignore")
sys.path.insert(0, "benchmarks")
import nutpie
from pytensor.compile.mode import get_mode
which, data, tmp = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if which == "plain":
    from bench_popk import PLAIN_PYMC, PLAIN_PRIORS
    sys.argv = ["plain", str(data), json.dumps(PLAIN_PRIORS["mixed"])]
    ns = {}
    exec(PLAIN_PYMC.split("compiled = nutpie")[0], ns)
    model = ns["model"]
else:
    from pkmodel.pk.population import read_population_data, read_spec
    from pkmodel.pk.population.build import build_model
    from pkmodel.pk.population.compiled import padded, subject_slots
    text = (tmp / "spec.toml").read_text()
    if which == "censored":
        text = text.replace("[parameters.cl]", "[data]\nlloq_ug_ml = 20.0\n\n[parameters.cl]", 1)
    (tmp / f"{which}.toml").write_text(text)
    spec = read_spec(tmp / f"{which}.toml")
    population = read_population_data(data, spec)
    model = build_model(spec, padded(population, subject_slots(population.n_subjects)))
start = time.perf_counter()
nutpie.compile_pymc_model(model)
seconds = time.perf_counter() - start
graph = model.logp_dlogp_function(mode=get_mode("NUMBA"))._pytensor_function.maker.fgraph
kinds = collections.Counter(type(n.op).__name__ for n in graph.apply_nodes)
print("RESULT " + json.dumps({"seconds": seconds, "nodes": len(graph.apply_nodes),
                             "kinds": kinds}))
"""


def _run(which: str, data: Path, tmp: Path) -> dict:
    """Compile one model in a fresh process (no compiled-model cache); its figures."""
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(data), str(tmp)],
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "PKMODEL_CACHE_DIR": "off"})
    if out.returncode != 0:
        sys.exit(f"{which} failed: {out.stderr[-2000:]}")
    line = [s for s in out.stdout.splitlines() if s.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    """Compile each model ``--repeats`` times in fresh processes, alternating."""
    from bench_popk import simulate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = tmp / "pk.csv"
        n_obs = simulate(data, 60, 2.5, 1, "mixed")
        print(f"60 subjects, {n_obs} observations")
        times: dict[str, list[float]] = collections.defaultdict(list)
        kinds = {}
        start = time.perf_counter()
        for _ in range(args.repeats):
            for which in ("plain", "pkmodel", "censored"):
                result = _run(which, data, tmp)
                times[which].append(result["seconds"])
                kinds[which] = (result["nodes"], result["kinds"])
        for which, label in (("plain", "plain PyMC"), ("pkmodel", "pkmodel"),
                             ("censored", "pkmodel, censored values")):
            best = min(times[which])
            print(f"{label:<26} compile {best:5.1f} s (best of {args.repeats}; all: "
                  f"{', '.join(f'{t:.1f}' for t in times[which])}), {kinds[which][0]} nodes")
        plain = min(times["plain"])
        print(f"ratio to plain: pkmodel {min(times['pkmodel']) / plain:.2f}, censored "
              f"{min(times['censored']) / plain:.2f} ({time.perf_counter() - start:.0f} s)")
        names = sorted(set(kinds["plain"][1]) | set(kinds["censored"][1]))
        print("nodes by kind (plain / pkmodel / censored), where they differ:")
        for name in names:
            row = [kinds[w][1].get(name, 0) for w in ("plain", "pkmodel", "censored")]
            if len(set(row)) > 1:
                print(f"  {name:<24} {row[0]:>4} {row[1]:>4} {row[2]:>4}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
