"""How the default fit's cost grows with the number of patients (48 to 50,000 simulated).

Run from the repository root:

    .venv/bin/python benchmarks/bench_scaling.py [--sizes 48 500 5000 50000]
        [--chains 4 --tune 1000 --draws 1000]

Each size runs in a fresh Python process: simulate a cohort with
:func:`pkmodel.response.simulation.simulate_cohort` (two assessments per patient, three centres,
TL > 16 censored), then time the two steps of ``RemissionModel().fit`` separately: compiling
the sampler model (:func:`pkmodel.response.compiled.sampler_model`, with the disk cache off)
and ``nutpie.sample`` with the specification's ``target_accept``; "µs direct" is one call of
the compiled log density + gradient at the initial point, without the sampler. Reported per
size: compile and sampling seconds, gradient evaluations (``n_steps`` summed over chains,
tuning included) and per draw, the cost of one gradient (sampling wall time x parallel chains /
evaluations), divergences, the smallest bulk ESS over population parameters and that ESS per
second of sampling.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _direct_gradient_us(compiled) -> float:
    """Median µs of one call of the compiled log density + gradient at the initial point."""
    import numpy as np

    from pkmodel.nutpie_internals import c_logp

    function = c_logp(compiled.logp_address)
    x = np.ascontiguousarray(compiled.initial_point(0))
    grad, logp, user = np.zeros(compiled.n_dim), np.zeros(()), np.zeros(())
    args = (compiled.n_dim, x.ctypes.data, grad.ctypes.data, logp.ctypes.data, user.ctypes.data)
    calls = max(10, int(20000 / max(compiled.n_dim, 20)))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            function(*args)
        times.append((time.perf_counter() - start) / calls * 1e6)
    return float(np.median(times))


def one_size(n_patients: int, chains: int, tune: int, draws: int, seed: int) -> dict:
    """Simulate, compile and sample the default model for ``n_patients``; return the figures."""
    import warnings

    import arviz as az
    import numpy as np
    import nutpie

    from pkmodel.response.compiled import sampler_model
    from pkmodel.response.diagnostics import compute_diagnostics
    from pkmodel.response.fit import POPULATION_PARAMETERS, diagnosed_parameters
    from pkmodel.response.simulation import simulate_cohort
    from pkmodel.response.spec import RemissionModel

    start = time.perf_counter()
    cohort = simulate_cohort(n_patients, 3, random_seed=seed)
    simulate_s = time.perf_counter() - start
    spec = RemissionModel()
    start = time.perf_counter()
    design, options = spec._design(cohort)
    build_s = time.perf_counter() - start
    os.environ["PKMODEL_CACHE_DIR"] = "off"
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = sampler_model(design, spec.priors, **options)
    compile_s = time.perf_counter() - start
    direct_us = _direct_gradient_us(compiled)
    cores = min(chains, os.cpu_count() or 1)
    start = time.perf_counter()
    tree = nutpie.sample(compiled.nutpie_model(), draws=draws, tune=tune, chains=chains,
                         cores=cores, seed=seed, progress_bar=False, save_warmup=True,
                         target_accept=spec.target_accept)
    sample_s = time.perf_counter() - start
    stats = tree["warmup_sample_stats"]["n_steps"].values.sum() + \
        tree["sample_stats"]["n_steps"].values.sum()
    post = tree["posterior"].to_dataset()
    post = post.drop_vars([v for v in post.data_vars if str(v).endswith("__")]
                          + ["remission_loglik"])
    names = [v for v in POPULATION_PARAMETERS if v in post.data_vars]
    ess = az.ess(post[names], method="bulk")
    min_ess = min(float(ess[v].min()) for v in names)
    slowest = min(names, key=lambda v: float(ess[v].min()))
    gate = compute_diagnostics(post, tree["sample_stats"].to_dataset(),
                               diagnosed_parameters(post))
    return {
        "patients": n_patients, "rows": len(cohort.data), "simulate_s": simulate_s,
        "build_s": build_s, "compile_s": compile_s, "sample_s": sample_s,
        "grad_evals": int(stats), "evals_per_draw": float(stats) / (chains * (tune + draws)),
        "us_per_grad": 1e6 * sample_s * cores / float(stats), "us_direct": direct_us,
        "divergences": int(np.asarray(tree["sample_stats"]["diverging"]).sum()),
        "min_pop_ess_bulk": min_ess, "slowest": slowest, "ess_per_s": min_ess / sample_s,
        "gate": gate.converged, "max_rhat": gate.max_rhat,
        "min_ess_all": min(gate.min_ess_bulk, gate.min_ess_tail),
        "centring": options["structure"].group_centring,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[48, 500, 5000, 50000])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.chains, args.tune, args.draws, args.seed)))
        return
    print(f"Default model, simulated cohorts (2 assessments per patient), {args.chains} chains x "
          f"{args.tune} tune + {args.draws} draws")
    print("| patients | rows | compile s | sampling s | gradient evals | evals / draw | "
          "µs / gradient | µs / gradient / patient | µs direct | divergences | "
          "min pop bulk ESS (slowest) | ESS / sampling s | gate (max R-hat, min ESS) | w |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
          "--- | ---: |")
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--chains", str(args.chains),
               "--tune", str(args.tune), "--draws", str(args.draws), "--seed", str(args.seed)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(f"size {n} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {n:,} | {r['rows']:,} | {r['compile_s']:.1f} | {r['sample_s']:.1f} | "
              f"{r['grad_evals']:,} | {r['evals_per_draw']:.1f} | {r['us_per_grad']:.0f} | "
              f"{r['us_per_grad'] / n:.2f} | {r.get('us_direct', float('nan')):.1f} | "
              f"{r['divergences']} | "
              f"{r['min_pop_ess_bulk']:.0f} ({r['slowest']}) | {r['ess_per_s']:.1f} | "
              f"{'pass' if r['gate'] else 'FAIL'} ({r['max_rhat']:.3f}, {r['min_ess_all']:.0f}) | "
              f"{r['centring']:.2f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
