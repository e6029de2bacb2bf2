"""The HTML run report of a population PK fit (``pkmodel pk report POPFIT.nc -o report.html``).

What a pharmacometrician reads of a run: the data (subjects, observations, values below the
LLOQ, what was changed while reading them), the specification (structure, priors of the typical
values, BSV, covariate effects, residual error, a published prior), the convergence gate's
verdict, the parameter table (median, credible interval, R-hat, ESS, eta shrinkage), the
goodness-of-fit plots and the pcVPC, the subjects (subject-level LOO, the random effects, every
subject's fit), and the research-use disclaimer. Same page, style and
figure machinery as the remission fit's report (:mod:`pkmodel.report.document`).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from pkmodel.files import check_writable
from pkmodel.pk.units import concentration_from_internal, days_per, from_internal
from pkmodel.report.document import footer, html_document, write_html, written_at
from pkmodel.report.figures import figure_html
from pkmodel.report.sections import _esc, _table, checks_table, disclaimer_notice

__all__ = ["render_population_report", "write_population_report"]

def _data_section(fit) -> str:
    data = fit.data
    n_blq = int(np.sum(data.obs_cens == 1))
    n_above = int(np.sum(data.obs_cens == -1))
    spec = fit.spec
    per = np.bincount(data.obs_subject, minlength=data.n_subjects)
    rows = pd.DataFrame([
        {"quantity": "subjects", "value": data.n_subjects},
        {"quantity": "observations", "value": data.n_observations},
        {"quantity": "below the LLOQ",
         "value": f"{n_blq} ({n_blq / max(data.n_observations, 1):.0%}), "
                  + ("M3 likelihood" if spec.blq == "m3" else "left out")},
        *([{"quantity": "above an upper limit", "value": n_above}] if n_above else []),
        {"quantity": "doses", "value": len(data.dose_time_days)},
        {"quantity": "observations per subject", "value": (
            f"{per.min()}" if per.min() == per.max() else f"{per.min()}-{per.max()}")},
        {"quantity": "time span", "value": (
            f"{data.obs_time_days.min() / days_per(spec.time_unit):.3g}-"
            f"{data.obs_time_days.max() / days_per(spec.time_unit):.3g} {spec.time_unit}s")},
    ])
    notes = "".join(f"<li>{_esc(n)}</li>" for n in data.notes)
    return "\n".join([
        '<section id="data"><h2>1. Data</h2>',
        f"<p>Dataset <code>{_esc(data.source or '-')}</code> (NONMEM format, read by "
        "<code>read_nonmem</code>).</p>",
        _table(rows.astype({"value": str})),
        f'<div class="notice">What was changed or left out while reading the data:<ul>{notes}'
        "</ul></div>" if notes else "<p>Nothing was changed or left out while reading it.</p>",
        "</section>",
    ])


def _typical(spec, name: str) -> float:
    """Parameter ``name``'s prior median in the unit the report gives it (the dataset's)."""
    return float(from_internal(spec.typical_per_day(name), spec.structure.kind(name),
                               spec.time_unit))


def _typical_prior(spec, name: str, prior) -> str:
    """The built prior of ``log TV`` (``spec.priors()``, in the model's units) stated in the
    unit the report gives the parameter."""
    median = float(from_internal(np.exp(prior["mu"]), spec.structure.kind(name), spec.time_unit))
    return f"log TV ~ Normal(log {median:.4g}, {prior['sigma']:g})"


def _concentration(spec, value_ug_ml: float) -> str:
    """A concentration given in µg/mL, written in the dataset's unit."""
    value = float(concentration_from_internal(value_ug_ml, spec.concentration_unit))
    return f"{value:.4g} {spec.concentration_unit}"


def _model_section(fit) -> str:
    spec = fit.spec
    priors = spec.priors()  # what the model was built from (build.build_model)
    params = pd.DataFrame([
        {"parameter": name, "unit": fit.reported_variables()[f"tv_{name}"],
         "prior of the typical value": f"fixed at {_typical(spec, name):.4g}" if p.fixed else
         _typical_prior(spec, name, priors[f"log_tv_{name}"]),
         "BSV": (f"log-normal, omega ~ {priors[f'omega_{name}']}" if p.bsv else "none")}
        | ({"IOV": f"log-normal, omega_iov ~ {priors[f'omega_iov_{name}']}" if p.iov else "none"}
           if spec.iov_parameters else {})
        for name, p in spec.parameters.items()])
    kappa = (" + κ<sub>ikP</sub> in occasion k,&nbsp; κ<sub>ikP</sub> ~ Normal(0, "
             f"ω<sub>IOV,P</sub>) (occasions: {_esc(_occasions(spec))})"
             if spec.iov_parameters else "")
    parts = [
        '<section id="model"><h2>2. Model</h2>',
        f"<p><strong>{_esc(spec.structure_label())}</strong>; closed-form linear solution "
        "summed over the doses (superposition); TIME in "
        f"{_esc(spec.time_unit)}s. Individual parameters:</p>",
        '<p class="formula">log P<sub>i</sub> = log TV<sub>P</sub> + Σ covariate effects + '
        f"η<sub>iP</sub>,&nbsp; η<sub>iP</sub> ~ Normal(0, ω<sub>P</sub>){kappa}</p>",
        "<p>The random effects are sampled partially centred, each subject's with a weight "
        "from how much its data say about them (the model is the same whatever the "
        "weights).</p>",
        "<h3>Structural parameters and their priors</h3>", _table(params),
    ]
    if spec.covariates:
        terms = pd.DataFrame([{
            "parameter": t.parameter, "covariate": t.covariate, "effect": t.effect,
            "reference": "–" if t.reference is None else f"{t.reference:g}",
            "coefficient": (f"fixed {t.exponent:g}" if not t.estimated else
                            "; ".join(f"{n} ~ {priors[n]}" for n in t.names))}
            for t in spec.covariates])
        parts += ["<h3>Covariate effects</h3>", _table(terms)]
    r = spec.residual
    used = [f"{n} ~ {priors[n]}" + (" µg/mL" if n == "sigma_add_ug_ml" else "")
            for n in r.names]
    parts.append(f"<h3>Residual error</h3><p>{_esc(r.error)}, normal on the concentration "
                 f"scale: {_esc('; '.join(used))}. "
                 + (f"LLOQ {_concentration(spec, spec.lloq_ug_ml)}; "
                    if spec.lloq_ug_ml is not None else "")
                 + ("values below it enter by Beal's M3 likelihood."
                    if spec.blq == "m3" else "values below it are left out.") + "</p>")
    if spec.prior is not None:
        p = spec.prior
        terms = pd.DataFrame([{"quantity": k, "prior mean": m, "SD at weight 1": sd}
                              for k, (m, sd) in p.terms.items()])
        notes = "".join(f"<li>{_esc(n)}</li>" for n in p.notes)
        parts += [f"<h3>Published prior: {_esc(p.model)}, weight {p.weight:g}</h3>",
                  "<p>Enters the log density as weight × log Normal(x; mean, SD) on top of "
                  "the specification's own priors (effective SD = SD / √weight).</p>",
                  _table(terms, digits=4), f"<ul>{notes}</ul>" if notes else ""]
    parts.append("</section>")
    return "\n".join(parts)


def _diagnostics_section(fit) -> str:
    d = fit.diagnostics
    status = "PASS" if d.converged else "FAIL"
    verdict = ("All checks of the convergence gate pass (R-hat, ESS, divergences, E-BFMI, tree "
               "depth), on every population parameter and every eta." if d.converged else
               "The fit FAILS its convergence checks: do not use its estimates before fixing "
               "this (more tuning and draws, a higher target_accept, or a simpler model).")
    problems = "".join(f"<li>{_esc(p)}</li>" for p in d.problems())
    found = [*fit.design_notes, *fit.sampling_findings()]
    findings = "".join(f"<li>{_esc(n)}</li>" for n in found)
    return "\n".join([
        '<section id="diagnostics"><h2>3. Convergence</h2>',
        f'<p><span class="badge {status.lower()}" id="diagnostics-status">{status}</span> '
        f"{_esc(verdict)} {d.n_draws} posterior draws; worst R-hat in "
        f"<code>{_esc(d.worst_parameter)}</code>.</p>",
        f"<ul>{problems}</ul>" if problems else "",
        _table(checks_table(d)),
        f'<div class="notice" id="identification">What the checks of the design (before '
        f"sampling) and of the posterior against the priors (after) found:<ul>{findings}</ul>"
        "</div>" if findings else "<p>The design informs every estimated typical value, and "
        "no estimate says a unit slipped.</p>",
        "</section>",
    ])


def _occasions(spec) -> str:
    """Where the occasions come from, in words."""
    return ("each dosing interval" if spec.occasions_from_doses
            else f"the dataset's {spec.occasion} column")


def _parameter_section(fit, ci_prob: float) -> str:
    table = fit.summary(ci_prob)
    width = round(100 * ci_prob)
    omega = {name: float(np.median(fit.posterior[name].values))
             for name in (*(f"omega_{p}" for p in fit.spec.bsv_parameters),
                          *(f"omega_iov_{p}" for p in fit.spec.iov_parameters))}
    shrinkage = {f"omega_{p}": value for p, value in fit.shrinkage().items()}
    table = pd.DataFrame({
        "parameter": table["parameter"], "unit": table["unit"],
        "median": [f"{v:.3g}" for v in table["median"]],
        f"{width}% CrI": ["fixed" if not np.isfinite(r) else f"{lo:.3g} – {hi:.3g}"
                          for lo, hi, r in zip(table["lower"], table["upper"], table["r_hat"],
                                               strict=True)],
        "BSV CV%": [f"{100 * np.sqrt(np.expm1(omega[n] ** 2)):.0f}%" if n in omega else "–"
                    for n in table["parameter"]],
        "eta shrinkage": [f"{shrinkage[n]:.0%}" if np.isfinite(shrinkage.get(n, np.nan))
                          else "–" for n in table["parameter"]],
        "R-hat": table["r_hat"], "bulk ESS": table["ess_bulk"], "tail ESS": table["ess_tail"]})
    return "\n".join([
        '<section id="parameters"><h2>4. Parameter estimates</h2>',
        f"<p>Posterior medians and equal-tailed {width}% credible intervals; typical values at "
        "the covariates' references; <code>omega_</code> rows are the SDs of the log-scale "
        "random effects, <code>omega_iov_</code> those between occasions (CV% = √(exp(ω²) − "
        "1) at the median ω); eta shrinkage is "
        "1 − SD<sub>i</sub>(E[η<sub>i</sub> | y]) / ω.</p>",
        _table(table, formats={"bulk ESS": ".0f", "tail ESS": ".0f", "R-hat": ".3f"}),
        "</section>",
    ])


def _checks_section(fit, n_replicates: int, random_seed: int | None) -> str:
    from pkmodel.plots.population import plot_goodness_of_fit, plot_pc_vpc

    vpc = fit.pc_vpc(n_replicates=n_replicates, random_seed=random_seed)
    width = round(100 * vpc.ci_prob)
    return "\n".join([
        '<section id="checks"><h2>5. Model checks</h2>',
        "<h3>Goodness of fit</h3>",
        figure_html(plot_goodness_of_fit(fit), "goodness-of-fit plots",
                    "Observed against PRED (typical subject of those covariates, posterior "
                    "medians) and IPRED (posterior median of the individual prediction), log "
                    "scales; CWRES (FOCE-I linearisation at the posterior-mean etas) and IWRES "
                    "against time and prediction; the LOO-PIT (each observation's predictive "
                    "probability with it left out, by PSIS) as a normal quantile, and its "
                    "histogram, uniform under the model; LOESS smooths (red). Values below the "
                    "LLOQ are left out of these panels."),
        "<h3>Prediction-corrected visual predictive check</h3>",
        f'<p id="vpc-inside">{100 * vpc.fraction_inside:.0f}% of the observed 5th, 50th and '
        f"95th percentile points lie inside the {width}% intervals of the same percentiles "
        f"over {vpc.n_replicates} replicates of the dataset from the posterior.</p>",
        figure_html(plot_pc_vpc(vpc, spec=fit.spec), "prediction-corrected visual predictive check",
                    "pcVPC (Bergstrand et al. 2011): every value multiplied by PRED of its bin "
                    "over its own PRED; the 5th, 50th and 95th percentiles, each over its own "
                    "simulated interval. Values below the LLOQ stay in the ranks on both sides "
                    "(a percentile among them is not drawn) and their fraction per bin is the "
                    "lower panel; pre-dose samples (PRED 0) are left out."),
        "</section>",
    ])


def _subjects_section(fit) -> str:
    """Per-subject fits (every subject, paged), the random effects and subject-level LOO."""
    from pkmodel.plots.subjects import plot_etas, plot_individuals

    parts = ['<section id="subjects"><h2>6. Subjects and random effects</h2>']
    if "log_likelihood" in fit.tree.children:
        from pkmodel.pk.population.comparison import loo

        result = loo(fit, "subject")
        k = np.asarray(result.pareto_k).ravel()
        ids = np.asarray(fit.data.subject_ids)
        high = ids[~(k <= result.good_k)]
        parts.append(
            f'<p id="loo">Leaving out one subject at a time (PSIS-LOO, its random effects '
            f"integrated out): ELPD {float(result.elpd):.1f} (SE {float(result.se):.1f}), "
            f"effective number of parameters {float(result.p):.1f}; "
            + (f"Pareto k-hat above {result.good_k:.2f} for ID "
               f"{_esc(', '.join(map(str, high)))}: those subjects are influential (check "
               "their data) and the ELPD is unreliable." if high.size else
               f"every Pareto k-hat below {result.good_k:.2f}.")
            + " Compare models with <code>pkmodel pk compare A.nc B.nc</code>.</p>")
    else:
        parts.append("<p>This fit was saved without its log likelihood (pkmodel 0.4 or "
                     "earlier): fit it again to get LOO.</p>")
    if fit.spec.bsv_parameters:
        parts.append(figure_html(plot_etas(fit), "random effects",
                                 "Posterior-mean etas: their distribution against Normal(0, "
                                 "ω) with the eta shrinkage, and against each covariate with "
                                 "a LOESS smooth (red)."))
    pages = plot_individuals(fit)
    for number, fig in enumerate(pages, start=1):
        parts.append(figure_html(fig, f"individual fits, page {number}",
                                 "Observed values (dots; censored ones as open triangles at "
                                 "their limit), IPRED (median and 90% band of the subject's "
                                 "prediction) and PRED (typical subject of its covariates)."
                                 if number == 1 else "", dpi=80))
    parts.append("</section>")
    return "\n".join(parts)


def render_population_report(fit, *, ci_prob: float = 0.9, n_replicates: int = 200,
                             random_seed: int | None = None, source: str = "") -> str:
    """The run report of a population PK fit as one self-contained HTML document.

    Parameters
    ----------
    fit : PopulationFit
        The fit (:func:`pkmodel.pk.population.load_population_fit`).
    ci_prob : float, default 0.9
        Width of the parameters' credible intervals.
    n_replicates : int, default 200
        Replicates of the pcVPC.
    random_seed : int, optional
        Seed of the pcVPC's replicates (default: the fit's own seed).
    source : str, optional
        Where the fit came from (shown in the header), e.g. its file name.

    Returns
    -------
    str
        HTML with every image inlined: it needs no network and no other file to open.
    """
    d = fit.diagnostics
    status = "PASS" if d.converged else "FAIL"
    title = f"pkmodel population PK report: {fit.data.source or 'dataset'}"
    header = (f'<p class="meta">Fit {html.escape(source) + ", " if source else ""}'
              f"{html.escape(fit.spec.structure_label())}, {fit.data.n_subjects} subjects, "
              f"{fit.data.n_observations} observations; seed {fit.random_seed}; diagnostics "
              f"<strong>{status}</strong>; written {written_at()}.</p>")
    nav = ('<nav><a href="#data">Data</a><a href="#model">Model</a>'
           '<a href="#diagnostics">Convergence</a><a href="#parameters">Parameters</a>'
           '<a href="#checks">Checks</a><a href="#subjects">Subjects</a></nav>')
    body = [f"<h1>{html.escape(title)}</h1>", header, disclaimer_notice(), nav,
            _data_section(fit), _model_section(fit), _diagnostics_section(fit),
            _parameter_section(fit, ci_prob),
            _checks_section(fit, n_replicates, random_seed), _subjects_section(fit), footer()]
    return html_document(title, body)


def write_population_report(fit, path: str | os.PathLike, *, force: bool = False,
                            ci_prob: float = 0.9, n_replicates: int = 200,
                            random_seed: int | None = None, source: str = "") -> Path:
    """Write :func:`render_population_report` of ``fit`` to ``path``, atomically (an existing
    file only with ``force``, checked before any work is done)."""
    check_writable(path, force=force)
    text = render_population_report(fit, ci_prob=ci_prob, n_replicates=n_replicates,
                                    random_seed=random_seed, source=source)
    return write_html(text, path, force=force)
