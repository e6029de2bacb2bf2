"""Forecast-interval coverage of individual Bayesian estimation over simulated patients.

Each simulated patient: covariates drawn like a UC/CD cohort, random effects from the population
model, standard induction + q8w dosing, troughs observed before several maintenance doses with the
model's residual error (values below 0.4 µg/mL reported as "<0.4"). Individual estimation (MAP +
importance resampling, or NUTS) then forecasts the steady-state trough under each named regimen;
we count how often the credible interval covers the patient's true trough.

    .venv/bin/python benchmarks/pk_coverage.py --patients 500 --model fasanmade2009
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from pkmodel.pk import (
    NAMED_REGIMENS,
    DoseSchedule,
    Observations,
    concentrations,
    estimate_individual,
    forecast_troughs,
    get_model,
    steady_state_troughs,
)

LLOQ = 0.4


def simulate_patient(model, rng, n_troughs=3):
    cov = {"weight_kg": float(np.clip(rng.lognormal(np.log(75), 0.2), 40, 140)),
           "albumin_g_dl": float(np.clip(rng.normal(4.0, 0.4), 2.5, 5.0))}
    eta = model.sample_eta((), rng)
    history = DoseSchedule.from_regimen("5mg/kg q8w", until_week=14 + 8 * n_troughs)
    times = history.times_days[-n_troughs:]
    params = model.individual_parameters(cov, eta)
    pred = concentrations(params, history, times, cov["weight_kg"])
    sd = np.sqrt(model.additive_sd_ug_ml**2 + (model.proportional_sd * pred) ** 2)
    y = pred + sd * rng.standard_normal(pred.shape)
    cens = (y < LLOQ).astype(int)
    obs = Observations(times, np.where(cens == 1, LLOQ, y), cens)
    return cov, eta, history, obs


def coverage(model_name="fasanmade2009", n_patients=100, seed=0, method="map", credible=0.9,
             draws=500):
    model = get_model(model_name)
    rng = np.random.default_rng(seed)
    regimens = list(NAMED_REGIMENS.values())
    hits = np.zeros(len(regimens))
    log_err_map, log_err_prior = [], []
    for i in range(n_patients):
        cov, eta, history, obs = simulate_patient(model, rng)
        truth = steady_state_troughs(model, regimens, cov, eta=eta[None, None]).values[:, 0, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = estimate_individual(model, cov, history, obs, method=method, draws=draws,
                                      tune=draws, chains=2, random_seed=seed * 100_000 + i)
        fc = forecast_troughs(est, regimens, credible=credible).table()
        hits += (fc["lower"].values <= truth) & (truth <= fc["upper"].values)
        true_cl = float(model.individual_parameters(cov, eta).cl)
        log_err_map.append(np.log(est.map_parameters()["cl"] / true_cl))
        log_err_prior.append(np.log(float(model.individual_parameters(cov).cl) / true_cl))
    return {"coverage": hits / n_patients, "regimens": [r.label for r in regimens],
            "rmse_log_cl_map": float(np.sqrt(np.mean(np.square(log_err_map)))),
            "rmse_log_cl_prior": float(np.sqrt(np.mean(np.square(log_err_prior))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--model", default="fasanmade2009")
    parser.add_argument("--method", default="map", choices=("map", "nuts"))
    parser.add_argument("--credible", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    res = coverage(args.model, args.patients, args.seed, args.method, args.credible)
    elapsed = time.perf_counter() - start
    n = args.patients
    se = np.sqrt(args.credible * (1 - args.credible) / n)
    print(f"model {args.model}, method {args.method}, {n} simulated patients, "
          f"{int(args.credible * 100)}% intervals (binomial SE {se:.3f}), {elapsed:.1f} s")
    print(f"{'regimen':<14} {'coverage':>9}")
    for label, cov in zip(res["regimens"], res["coverage"], strict=True):
        print(f"{label:<14} {cov:>9.3f}")
    print(f"RMSE of log CL: MAP {res['rmse_log_cl_map']:.3f}, "
          f"population prior {res['rmse_log_cl_prior']:.3f}")


if __name__ == "__main__":
    main()
