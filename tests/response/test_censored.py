"""Censored TLs integrated out (``integrate_tl``) against independent implementations.

(1) The fused kernel against ``scipy.integrate.quad`` of the integral itself and its gradient
against finite differences; (2) the integrated model's log density against the latent-TL
model's, whose latent TLs are integrated out numerically (``scipy.integrate.quad_vec``, one
adaptive quadrature over every censored patient at once), at the same parameter points, on
cohorts with 0 %, 25 % and 60 % of TLs censored above and below their limits.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

import pkmodel
from pkmodel.response.censored import censored_marginal_kernel, normal_survival_inverse
from pkmodel.response.marginal import marginal_bernoulli_kernel
from pkmodel.response.simulation import simulate_cohort


def _marginal(y, eta, sigma_p, mask):
    return np.exp(marginal_bernoulli_kernel(y[None], eta[None], np.array([sigma_p]),
                                            mask[None])[0][0])


def _random_case(rng):
    months = 3
    y = rng.integers(0, 2, (1, months))
    mask = (rng.random((1, months)) < 0.8).astype(float)
    slope = rng.normal(0.0, 3.0, 1)
    mu, sd = rng.normal(1.8, 0.5), rng.uniform(0.2, 1.2)
    side = rng.choice([-1.0, 1.0])
    limit = mu + side * rng.uniform(-2.0, 4.0) * sd  # on either side of the mean
    eta0 = rng.normal(0.0, 2.0, (1, months)) - slope[:, None] * mu
    return (y, eta0, slope, np.array([mu]), np.array([sd]), np.array([limit]),
            np.array([side]), np.array([rng.uniform(0.0, 2.0)]), mask)


def test_inverse_tail_matches_scipy():
    q = np.array([1e-300, 1e-40, 1e-8, 0.01, 0.3, 0.5, 0.9, 1 - 1e-9])
    got = np.array([normal_survival_inverse(v) for v in q])
    np.testing.assert_allclose(got, stats.norm.isf(q), rtol=1e-12, atol=1e-12)


def test_kernel_matches_adaptive_quadrature_and_finite_differences():
    rng = np.random.default_rng(1)
    for _ in range(25):
        args = _random_case(rng)
        y, eta0, slope, mu, sd, limit, side, sp, mask = args
        out = censored_marginal_kernel(*args)

        def integrand(x, y=y, eta0=eta0, slope=slope, mu=mu, sd=sd, sp=sp, mask=mask):
            return (stats.norm.pdf(x, mu[0], sd[0])
                    * _marginal(y[0], eta0[0] + slope[0] * x, sp[0], mask[0]))

        bounds = ((limit[0], mu[0] + 40 * sd[0]) if side[0] > 0
                  else (mu[0] - 40 * sd[0], limit[0]))
        ref = integrate.quad(integrand, *bounds, epsabs=0, epsrel=1e-12, limit=400)[0]
        assert abs(out[0][0] - np.log(ref)) < 2e-5
        # gradient of the rule itself (nodes move with mu and sigma)
        h = 1e-6
        for index, grad in ((2, out[2][0]), (3, out[3][0]), (4, out[4][0]), (7, out[5][0])):
            up, down = list(args), list(args)
            up[index] = up[index] + h
            down[index] = down[index] - h
            fd = (censored_marginal_kernel(*up)[0][0]
                  - censored_marginal_kernel(*down)[0][0]) / (2 * h)
            assert abs(fd - grad) < 1e-5 * max(1.0, abs(fd))
        col = int(np.argmax(mask[0]))
        up = eta0.copy()
        up[0, col] += h
        down = eta0.copy()
        down[0, col] -= h
        fd = (censored_marginal_kernel(y, up, *args[2:])[0][0]
              - censored_marginal_kernel(y, down, *args[2:])[0][0]) / (2 * h)
        assert abs(fd - out[1][0, col]) < 1e-5 * max(1.0, abs(fd))


def _censored_cohort(fraction_above: float, fraction_below: float, seed: int):
    """A simulated cohort with the top and bottom TLs reported beyond limits."""
    cohort = simulate_cohort(48, 2, upper_limit_ug_ml=None, random_seed=seed)
    frame = cohort.data.copy()
    tl = frame.drop_duplicates("patient_id").set_index("patient_id")["baseline_tl"]
    if fraction_above:
        high = float(np.quantile(tl, 1 - fraction_above))
        above = frame["baseline_tl"] >= high
        frame.loc[above, ["baseline_tl", "tl_cens"]] = [high, -1]
    if fraction_below:
        low = float(np.quantile(tl, fraction_below))
        below = frame["baseline_tl"] <= low
        frame.loc[below, ["baseline_tl", "tl_cens"]] = [low, 1]
    return pkmodel.read_cohort(frame, min_tl_ug_ml=None)


@pytest.mark.parametrize(("above", "below"), [(0.0, 0.0), (0.15, 0.10), (0.35, 0.25)])
def test_integrated_log_density_equals_latent_with_tl_integrated(above, below):
    from pymc.model.transform.conditioning import remove_value_transforms

    from pkmodel.response.build import build_pymc_model
    from pkmodel.response.integrated import build_integrated_model, model_inputs, model_shape

    spec = pkmodel.RemissionModel()
    design, options = spec._design(_censored_cohort(above, below, seed=3))
    n_cens = int(np.sum(design.tl_cens != 0))
    assert abs(n_cens / design.n_patients - (above + below)) < 0.05
    structure = options["structure"]
    shape = model_shape(design, patient_effect=options["patient_effect"], structure=structure)
    integrated = remove_value_transforms(build_integrated_model(
        shape, model_inputs(design, shape, structure), spec.priors, structure=structure))
    latent = build_pymc_model(design, spec.priors, for_sampler=True, **options)
    for rv in latent.rvs_to_initial_values:  # (remove_value_transforms refuses initial values)
        latent.rvs_to_initial_values[rv] = None
    latent = remove_value_transforms(latent)
    shared = [v.name for v in integrated.value_vars]
    latent_names = {"log_tl_above_limit": -1, "log_tl_below_limit": 1}
    present = [n for n in latent_names if n in latent.named_vars]
    value_of = {n: latent.rvs_to_values[latent[n]].name for n in present}
    assert sorted(shared + [value_of[n] for n in present]) == sorted(
        v.name for v in latent.value_vars)
    logp_integrated = integrated.compile_logp(mode="FAST_COMPILE")
    # per-term log densities of the latent model: the latent TLs' and each patient's outcomes'
    terms = latent.logp(vars=[latent[n] for n in present] + [latent["remission"]], sum=False)
    per_term = latent.compile_fn(terms, mode="FAST_COMPILE", point_fn=True)
    logp_latent = latent.compile_logp(mode="FAST_COMPILE")

    rng = np.random.default_rng(int(100 * above))
    start = integrated.initial_point()
    for _ in range(2):
        point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in start.items()}
        for name in ("sigma_tl", "sigma_group", "sigma_patient"):
            point[name] = np.abs(point[name]) + 0.2
        for name in ("z_group", "b_slope_strategy"):  # zero-sum
            point[name] = point[name] - point[name].mean()
        # the latent model at the limits, and each censored patient's terms as a function of
        # the distance t >= 0 beyond the limit (the patients are independent given the rest)
        limits, sides, where = [], [], []
        for name in present:
            idx = np.flatnonzero(design.tl_cens == latent_names[name])
            limits.append(design.log_tl[idx])
            sides.append(np.full(idx.size, -float(latent_names[name])))
            where.append(idx)

        def at(t, point=point, limits=limits, sides=sides):
            p = dict(point)
            offset = 0
            for name, lim, side in zip(present, limits, sides, strict=True):
                p[value_of[name]] = lim + side * t[offset:offset + lim.size]
                offset += lim.size
            return p

        total = 0.0
        if present:
            limit_all, patient_all = np.concatenate(limits), np.concatenate(where)

            def patient_terms(t, patient_all=patient_all, limit_all=limit_all):
                out = per_term(at(np.full(limit_all.size, t)))
                latent_terms = np.concatenate(out[:-1])
                return latent_terms + out[-1][patient_all]

            base = patient_terms(0.0)
            value, _ = integrate.quad_vec(lambda t, b=base: np.exp(patient_terms(t) - b),
                                          0.0, np.inf, epsabs=0.0, epsrel=1e-10)
            total = float(np.sum(np.log(value) + base))
            rest = logp_latent(at(np.zeros(limit_all.size))) - float(np.sum(base))
        else:
            rest = logp_latent(point)
        shared_point = {k: point[k] for k in shared}
        assert np.isfinite(rest + total)
        np.testing.assert_allclose(logp_integrated(shared_point), rest + total, rtol=0,
                                   atol=2e-5 * max(n_cens, 1))


def test_integrated_key_is_the_shape_never_the_data():
    from pkmodel.response.compiled import integrated_model_key
    from pkmodel.response.integrated import model_shape

    spec = pkmodel.RemissionModel(integrate_tl=True)

    def key_and_centring(cohort):
        design, options = spec._design(cohort)
        shape = model_shape(design, patient_effect=options["patient_effect"],
                            structure=options["structure"])
        return (integrated_model_key(shape, spec.priors, machine="cpu"),
                options["structure"].group_centring, int(np.sum(design.tl_cens != 0)))

    a = key_and_centring(_censored_cohort(0.15, 0.10, seed=3))
    b = key_and_centring(_censored_cohort(0.35, 0.25, seed=4))  # other data, other censoring
    assert a[1:] != b[1:] and a[0] == b[0]
    fewer = key_and_centring(pkmodel.read_cohort(  # fewer patient slots
        simulate_cohort(30, 2, random_seed=3).data, min_tl_ug_ml=None))
    more_centres = key_and_centring(pkmodel.read_cohort(
        simulate_cohort(48, 3, random_seed=3).data, min_tl_ug_ml=None))
    assert len({a[0], fewer[0], more_centres[0]}) == 3
