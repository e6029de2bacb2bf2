"""The sections of the HTML report, each rendered from a fit to an HTML fragment.

Every piece of text that comes from data (cohort names, notes, column values) is escaped.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np
import pandas as pd

from pkmodel.report.figures import figure_html

__all__ = [
    "RESEARCH_DISCLAIMER",
    "cohort_of",
    "curves_section",
    "data_section",
    "diagnostics_section",
    "disclaimer_section",
    "is_reconstructed",
    "model_section",
    "prior_table",
    "threshold_section",
]

RESEARCH_DISCLAIMER = (
    "pkmodel is research software, not for bedside decisions: it supports research on "
    "infliximab therapeutic drug monitoring; it is not a medical device, and its curves and "
    "thresholds are not a basis for treating a patient.")


def _esc(value: object) -> str:
    return html.escape(str(value))


def _cell(value: object, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return "–" if not np.isfinite(value) else f"{value:.{digits}g}"
    return _esc(value)


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an escaped HTML table; numeric columns right-aligned, ``digits`` digits."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    head = "".join(f'<th{" class=num" if n else ""}>{_esc(c)}</th>'
                   for c, n in zip(frame.columns, numeric, strict=True))
    rows = []
    for values in frame.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if n else ""}>{_cell(v, digits)}</td>'
                        for v, n in zip(values, numeric, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def is_reconstructed(fit) -> bool:
    """Whether the fit's cohort notes say that the cohort is reconstructed (not patient data)."""
    return any("reconstructed" in str(n).lower() for n in fit.cohort_notes)


def cohort_of(fit):
    """The fit's cohort as a :class:`pkmodel.Cohort` (re-validated, with the fit's notes)."""
    from pkmodel.data import read_cohort

    cohort = read_cohort(fit.cohort_data, exclude_ati_positive=False, min_tl_ug_ml=None,
                         name=fit.cohort_name or "cohort")
    return dataclasses.replace(cohort, notes=tuple(fit.cohort_notes))


def disclaimer_section(fit) -> str:
    """The research-use disclaimer, and the reconstructed-cohort warning when it applies."""
    parts = [f'<div class="notice" id="disclaimer"><strong>Research use only.</strong> '
             f"{_esc(RESEARCH_DISCLAIMER)}</div>"]
    if is_reconstructed(fit):
        notes = "".join(f"<li>{_esc(n)}</li>" for n in fit.cohort_notes)
        parts.append('<div class="notice warn" id="reconstructed"><strong>The cohort is '
                     "RECONSTRUCTED: synthetic patients generated to match published summary "
                     "statistics, not patient data.</strong> Use these results to learn and "
                     f"test the method, never to draw clinical conclusions.<ul>{notes}</ul></div>")
    elif fit.cohort_notes:
        notes = "".join(f"<li>{_esc(n)}</li>" for n in fit.cohort_notes)
        parts.append(f'<div class="notice">Notes on the cohort:<ul>{notes}</ul></div>')
    return "\n".join(parts)


def data_section(cohort) -> str:
    """Counts, remission by month, TL by outcome and the source study's classical analysis."""
    from pkmodel.data import classical_analysis

    summary = cohort.describe()
    table = classical_analysis(cohort).table
    classical = table.drop(columns="month").T.reset_index()
    classical.columns = ["statistic", *(f"month {m}" for m in table["month"])]
    return "\n".join([
        '<section id="data"><h2>1. Data</h2>',
        f"<p>Cohort <strong>{_esc(summary.name)}</strong>: {summary.n_patients} patients, "
        f"{len(cohort.data)} assessments (months {', '.join(map(str, cohort.months))}), "
        f"centres {_esc(', '.join(cohort.centers))}, strategies "
        f"{_esc(', '.join(cohort.strategies))}: the rows the model was fitted on.</p>",
        "<h3>Remission by month</h3>", _table(summary.remission),
        "<h3>Baseline trough level (µg/mL) by month and outcome</h3>",
        "<p>Values reported above the assay limit are counted at the limit here; the Bayesian "
        "model treats them as censored.</p>", _table(summary.tl_by_outcome),
        "<h3>Patients per centre, strategy and month</h3>", _table(summary.counts),
        "<h3>The source study's classical analysis</h3>",
        "<p>Mann-Whitney U test of TL between remitters and active patients, ROC AUC for "
        "predicting non-remission from a higher TL (Hanley-McNeil 95% interval) and the "
        "Youden-optimal cut-off.</p>", _table(classical),
        "</section>",
    ])


def prior_table(fit) -> pd.DataFrame:
    """The priors of the fitted specification (actual scales) with the reason for each.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter``, ``prior``, ``reason``; only parameters present in the fit.
    """
    from pkmodel.response.priors import PRIOR_REASONS
    from pkmodel.response.structure import GROUP_PARAMETRISATION, group_sd_prior

    p = fit.spec.priors
    alpha = f"Normal({p.intercept_mu:g}, {p.intercept_sd:g})"
    if fit.structure.get("group_effects") == GROUP_PARAMETRISATION:  # mean of fitted centres
        alpha = (f"Normal({p.intercept_mu:g}, sqrt({p.intercept_sd:g}^2 + sigma_group^2 / "
                 f"{fit.structure['n_groups']}))")
    rows = [
        ("alpha", alpha),
        ("beta", f"Normal({p.slope_mu:g}, {p.slope_sd:g})"),
        ("b_slope_strategy", f"ZeroSumNormal({p.slope_group_sd:g})"),
        ("b_slope_disease", f"ZeroSumNormal({p.slope_group_sd:g})"),
        ("b_slope_strategy_contrast", f"Normal(0, {p.slope_sd:g})"),
        ("b_slope_disease_contrast", f"Normal(0, {p.slope_sd:g})"),
        ("delta_strategy", f"Normal(0, {p.strategy_sd:g})"),
        ("tau_month", f"Normal(0, {p.month_sd:g})"),
        ("gamma", f"Normal(0, {p.covariate_sd:g})"),
        ("sigma_group", group_sd_prior(p)[0]),
        ("a_group", "ZeroSumNormal(sigma_group)"),
        ("sigma_patient", f"HalfNormal({p.patient_sd:g})"),
        ("mu_tl", f"Normal({p.log_tl_mu:g}, {p.log_tl_sd:g})"),
        ("sigma_tl", f"HalfNormal({p.log_tl_spread_sd:g})"),
    ]
    reasons = {key.split("~")[0].strip(): text for key, text in PRIOR_REASONS.items()}
    # the disease offsets share the strategy offsets' prior and reason
    reasons["b_slope_disease"] = reasons["b_slope_strategy"]
    reasons["b_slope_disease_contrast"] = reasons["b_slope_strategy_contrast"]
    present = set(fit.tree["posterior"].data_vars)
    return pd.DataFrame([{"parameter": name, "prior": prior, "reason": reasons.get(name, "")}
                         for name, prior in rows if name in present],
                        columns=["parameter", "prior", "reason"])


def _structure_notes(fit) -> str:
    """What the data could identify (:meth:`RemissionFit.notes`), as a list for the report."""
    notes = fit.notes()
    if not notes:
        return ""
    items = "".join(f"<li>{_esc(n)}</li>" for n in notes)
    return f'<h3>What the data identify</h3><ul class="notes" id="structure-notes">{items}</ul>'


def model_section(fit) -> str:
    """The model written out, its specification and priors, and the posterior summary."""
    spec = fit.spec
    patient = fit.meta.get("patient_effect", spec.patient_effect)
    items = {
        "covariates": ", ".join(spec.covariates) or "none",
        "partially pooled grouping": spec.group,
        "TL slope also by": spec.slope_by or "strategy only",
        "patient effect": "yes (integrated out by Gauss-Hermite quadrature)" if patient else "no",
        "TL assay CV": "exact TL" if spec.assay_cv is None else f"{spec.assay_cv:g}",
        "NUTS target acceptance": f"{spec.target_accept:g}",
        "random seed": str(fit.random_seed),
        "data hash (SHA-256)": fit.data_hash[:16] + "…",
    }
    spec_rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items.items())
    formula = ("logit P(remission<sub>ij</sub>) = α + a<sub>centre[i]</sub> + τ<sub>month[j]</sub>"
               " + β<sub>i</sub> (log TL<sub>i</sub> − log 5) + δ<sub>strategy[i]</sub>"
               " + γ·z<sub>i</sub> + u<sub>i</sub>")
    return "\n".join([
        '<section id="model"><h2>2. Model and priors</h2>',
        f'<p class="formula">{formula}</p>',
        "<p>for patient <em>i</em> at assessment month <em>j</em>, with β<sub>i</sub> = β + "
        "b<sub>strategy[i]</sub> (+ b<sub>disease[i]</sub>), centre effects partially pooled, "
        "slope offsets regularised towards the common slope, a patient effect u<sub>i</sub> "
        "linking a patient's assessments, and a TL reported above the assay limit treated as a "
        "latent value beyond the limit. Priors are on the logit scale; TL in µg/mL.</p>",
        _structure_notes(fit),
        f'<table class="data spec"><tbody>{spec_rows}</tbody></table>',
        "<h3>Priors</h3>", _table(prior_table(fit)),
        "<h3>Posterior summary of the population parameters</h3>",
        "<p>Mean, SD and 90% equal-tailed interval; <code>or_per_doubling</code> is the odds "
        "ratio of remission for a doubling of baseline TL.</p>",
        _table(fit.summary()),
        "</section>",
    ])


def diagnostics_section(fit) -> str:
    """Convergence diagnostics with a clear pass or fail, and rank and trace plots."""
    from pkmodel.plots import plot_rank, plot_trace
    from pkmodel.response.diagnostics import ESS_MIN, RHAT_MAX

    d = fit.diagnostics()
    status = "PASS" if d.converged else "FAIL"
    problems = "".join(f"<li>{_esc(p)}</li>" for p in d.problems())
    checks = pd.DataFrame([
        {"check": "max R-hat", "value": d.max_rhat, "required": f"<= {RHAT_MAX}",
         "ok": "yes" if d.max_rhat <= RHAT_MAX else "NO"},
        {"check": "min bulk ESS", "value": d.min_ess_bulk, "required": f">= {ESS_MIN}",
         "ok": "yes" if d.min_ess_bulk >= ESS_MIN else "NO"},
        {"check": "min tail ESS", "value": d.min_ess_tail, "required": f">= {ESS_MIN}",
         "ok": "yes" if d.min_ess_tail >= ESS_MIN else "NO"},
        {"check": "divergences", "value": d.divergences, "required": "0",
         "ok": "yes" if d.divergences == 0 else "NO"},
    ])
    verdict = ("All convergence checks pass." if d.converged else
               "The fit FAILS its convergence checks: do not use its curves or thresholds "
               "before fixing this.")
    return "\n".join([
        '<section id="diagnostics"><h2>3. Diagnostics</h2>',
        f'<p><span class="badge {status.lower()}" id="diagnostics-status">{status}</span> '
        f"{_esc(verdict)} {d.n_draws} posterior draws; worst R-hat in "
        f"<code>{_esc(d.worst_parameter)}</code>.</p>",
        f"<ul>{problems}</ul>" if problems else "",
        _table(checks, digits=4),
        figure_html(plot_rank(fit), "rank plots of the population parameters",
                    "Rank plots: each chain's fractional-rank Δ-ECDF stays near zero when the "
                    "chains agree."),
        figure_html(plot_trace(fit), "trace plots of the population parameters",
                    "Trace plots: per-chain densities and draws."),
        "</section>",
    ])


def curves_section(fit, curve, thresholds, ci_prob: float) -> str:
    """Posterior remission curves with observed outcomes and the crossing TL marked."""
    from pkmodel.plots import plot_remission_curves

    fig = plot_remission_curves(fit, curve, thresholds, ci_prob=ci_prob, observed="both")
    return "\n".join([
        '<section id="curves"><h2>4. Remission curves</h2>',
        "<p>Posterior probability of remission against baseline trough level, per strategy "
        "and assessment month, for a new patient at a new centre (population level: "
        "integrating over the between-centre and between-patient spread). Band: "
        f"{round(ci_prob * 100)}% credible interval. Rug: observed outcomes (remitters at the "
        "top); squares: observed remission rate in TL bins with Jeffreys intervals.</p>",
        figure_html(fig, "posterior remission curves per strategy and month"),
        "</section>",
    ])


def threshold_section(fit, curve, thresholds, p_min: float, credibility: float,
                      ci_prob: float) -> str:
    """The futility threshold table and the posterior of the crossing TL."""
    from pkmodel.plots import plot_crossing_tl

    shown = thresholds[["strategy", "month", "tl_futile", "tl_cross_median", "tl_cross_lower",
                        "tl_cross_upper", "p_cross_in_grid"]].rename(columns={
                            "tl_futile": "futile from TL (µg/mL)",
                            "tl_cross_median": "crossing TL median",
                            "tl_cross_lower": "crossing TL lower",
                            "tl_cross_upper": "crossing TL upper",
                            "p_cross_in_grid": "share of draws crossing in grid"})
    lo, hi = float(thresholds["grid_min"].iloc[0]), float(thresholds["grid_max"].iloc[0])
    grid = f"{lo:.3g}-{hi:.3g}"
    fig = plot_crossing_tl(fit, curve, p_min=p_min, credibility=credibility, ci_prob=ci_prob)
    return "\n".join([
        '<section id="thresholds"><h2>5. Futility thresholds</h2>',
        f"<p>Intensification is called futile at a TL where P(remission) &lt; {p_min:g} with "
        f"posterior probability at least {credibility:g}: <em>futile from TL</em> is the lowest "
        "TL from which that holds at every higher TL of the grid. The <em>crossing TL</em> is, "
        f"per posterior draw, the TL where the curve falls below {p_min:g} for good; its median "
        f"and {round(ci_prob * 100)}% interval are shown. A dash: not reached within the TL "
        f"grid ({_esc(grid)} µg/mL).</p>",
        _table(shown),
        figure_html(fig, "posterior distribution of the crossing TL"),
        "</section>",
    ])
