"""The sections of the HTML report, each rendered from a fit to an HTML fragment.

Every piece of text that comes from data (cohort names, notes, column values) is escaped.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np
import pandas as pd

from pkmodel.disclaimer import DISCLAIMER
from pkmodel.report.figures import figure_html

__all__ = [
    "RESEARCH_DISCLAIMER",
    "ReportStatus",
    "checks_table",
    "cohort_of",
    "curves_section",
    "data_section",
    "diagnostics_section",
    "disclaimer_notice",
    "disclaimer_section",
    "is_reconstructed",
    "model_section",
    "population_section",
    "prior_table",
    "report_status",
    "threshold_section",
]

#: The disclaimer of the report: :data:`pkmodel.disclaimer.DISCLAIMER`, under its older name.
RESEARCH_DISCLAIMER = DISCLAIMER


def _esc(value: object) -> str:
    return html.escape(str(value))


def _cell(value: object, digits: int, fmt: str | None = None) -> str:
    if isinstance(value, float | np.floating | int | np.integer) and not isinstance(value, bool):
        if not np.isfinite(value):
            return "–"
        if fmt is not None:
            return f"{value:{fmt}}"
        if isinstance(value, int | np.integer) or abs(value) >= 10 ** digits:
            return f"{value:.0f}"  # never 2.84e+03
        return f"{value:.{digits}g}"
    return _esc(value)


def _table(frame: pd.DataFrame, digits: int = 3, formats: dict[str, str] | None = None) -> str:
    """A DataFrame as an escaped HTML table; numeric columns right-aligned.

    Numbers get ``digits`` significant digits (whole numbers from ``10**digits`` up), or the
    format spec ``formats[column]`` (e.g. ``".0f"`` for an effective sample size).
    """
    formats = formats or {}
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    head = "".join(f'<th{" class=num" if n else ""}>{_esc(c)}</th>'
                   for c, n in zip(frame.columns, numeric, strict=True))
    rows = []
    for values in frame.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if n else ""}>{_cell(v, digits, formats.get(c))}</td>'
                        for v, n, c in zip(values, numeric, frame.columns, strict=True))
        rows.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def is_reconstructed(fit) -> bool:
    """Whether the fit's cohort is reconstructed (not patient data).

    Said by the cohort's ``data_origin`` column (kept in a saved fit) or by its notes; see
    :func:`pkmodel.response.provenance.data_origin`.
    """
    from pkmodel.response.provenance import data_origin

    return data_origin(fit)["reconstructed"]


def cohort_of(fit):
    """The fit's cohort as a :class:`pkmodel.Cohort` (re-validated, with the fit's notes)."""
    from pkmodel.data import read_cohort

    cohort = read_cohort(fit.cohort_data, exclude_ati_positive=False, min_tl_ug_ml=None,
                         name=fit.cohort_name or "cohort")
    return dataclasses.replace(cohort, notes=tuple(fit.cohort_notes))


def disclaimer_notice() -> str:
    """The research-use disclaimer of every report."""
    return (f'<div class="notice" id="disclaimer"><strong>Research use only.</strong> '
            f"{_esc(RESEARCH_DISCLAIMER)}</div>")


def disclaimer_section(fit) -> str:
    """The research-use disclaimer, and the reconstructed-cohort warning when it applies."""
    parts = [disclaimer_notice()]
    from pkmodel.response.provenance import data_origin

    origin = data_origin(fit)
    if origin["reconstructed"]:
        said = [f"data_origin = {o}" for o in origin["data_origin"]]
        if said:
            said = [f"every fitted row carries {', '.join(said)}"
                    if len(said) == 1 else f"the fitted rows carry {', '.join(said)}"]
        notes = "".join(f"<li>{_esc(n)}</li>" for n in (*fit.cohort_notes, *said))
        parts.append('<div class="notice warn" id="reconstructed"><strong>The cohort is '
                     "RECONSTRUCTED: synthetic patients generated to match published summary "
                     "statistics, not patient data.</strong> Use these results to learn and "
                     f"test the method, never to draw clinical conclusions.<ul>{notes}</ul></div>")
    elif fit.cohort_notes:
        notes = "".join(f"<li>{_esc(n)}</li>" for n in fit.cohort_notes)
        parts.append(f'<div class="notice">Notes on the cohort:<ul>{notes}</ul></div>')
    return "\n".join(parts)


# Readable column labels (with units) of the tables the report shows.
_DATA_LABELS = {
    "center": "centre", "strategy": "strategy", "month": "month", "patients": "patients",
    "assessed": "assessed", "remitters": "remitters", "remission_rate": "remission rate",
    "outcome": "outcome", "n": "n", "tl_median_ug_ml": "median TL (µg/mL)",
    "tl_q1_ug_ml": "TL 1st quartile (µg/mL)", "tl_q3_ug_ml": "TL 3rd quartile (µg/mL)",
    "n_above_limit": "n above the assay limit", "n_below_limit": "n below the assay limit",
}
_CLASSICAL_LABELS = {
    "n_remission": "patients in remission", "n_active": "patients not in remission (active)",
    "tl_median_remission": "median TL, remission (µg/mL)",
    "tl_median_active": "median TL, active (µg/mL)", "mannwhitney_u": "Mann-Whitney U",
    "p_value": "Mann-Whitney p-value (two-sided)",
    "auc_nonremission": "ROC AUC for non-remission from a higher TL",
    "auc_ci_lower": "AUC 95% interval, lower", "auc_ci_upper": "AUC 95% interval, upper",
    "youden_cutoff_ug_ml": "Youden-optimal cut-off (µg/mL)",
    "sensitivity": "sensitivity at the cut-off", "specificity": "specificity at the cut-off",
}
_SUMMARY_LABELS = {"parameter": "parameter", "unit": "unit", "mean": "mean", "sd": "SD",
                   "median": "median", "lower": "lower", "upper": "upper",
                   "ess_bulk": "bulk ESS", "ess_tail": "tail ESS", "r_hat": "R-hat"}


def _readable(frame: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    out = frame.rename(columns=labels)
    for col in ("strategy", "outcome"):
        if col in out and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: str(v).replace("_", " "))
    return out


def _count(value: int | None, one: str, many: str) -> str:
    if value is None:
        return "not recorded"
    return f"{value} {one if value == 1 else many}"


def population_section(fit) -> str:
    """Which patients the curves describe: exclusions with counts, what remission means."""
    from pkmodel.response.provenance import data_origin, population_facts

    f = population_facts(fit)
    items = []
    if f["recorded"]:
        items.append(f"Read: {f['n_patients_read']} patients, {f['n_rows_read']} assessment "
                     "rows.")
        items.append("Patients with antibodies to infliximab (ATI-positive): "
                     + (f"excluded, {_count(f['ati_positive_excluded'], 'patient', 'patients')}"
                        if f["exclude_ati_positive"] else
                        f"kept ({f['n_ati_positive_fitted']} in the fit)") + ".")
        min_tl = f["min_tl_ug_ml"]
        items.append(f"Patients with baseline TL below {min_tl:g} µg/mL: excluded, "
                     + _count(f["tl_below_min_excluded"], "patient", "patients") + "."
                     if min_tl is not None else
                     "No minimum baseline TL: patients at every TL were kept.")
    else:
        items.append("This fit was saved before pkmodel recorded the exclusions applied on "
                     "reading: which patients were excluded (ATI-positive, low TL) is not known "
                     "from the fit; the fitted rows are described below.")
    items.append("Assessments without a recorded remission: "
                 + ("dropped, " + _count(f["missing_remission_rows"], "row", "rows")
                    if f["missing_remission_rows"] is not None else "dropped (count not "
                    "recorded)") + "; nothing is imputed.")
    rem = "; ".join(f"month {r['month']}: {r['remitters']} of {r['assessed']} in remission"
                    for r in f["remission_by_month"])
    censored = []
    if f["n_tl_above_limit"]:
        censored.append(f"{f['n_tl_above_limit']} above the assay's upper limit, counted at "
                        "the limit here and modelled as censored")
    if f["n_tl_below_limit"]:
        censored.append(f"{f['n_tl_below_limit']} below a lower limit")
    items.append(f"Fitted: {f['n_patients']} patients, {f['n_rows']} assessments ({rem}); "
                 f"centres {', '.join(f['centres'])}; strategies "
                 f"{', '.join(x.replace('_', ' ') for x in f['strategies'])}; baseline TL "
                 f"{f['tl_min_ug_ml']:.3g}-{f['tl_max_ug_ml']:.3g} µg/mL"
                 + (f" ({'; '.join(censored)})" if censored else "") + ".")
    meaning = f["remission_meaning"]
    if data_origin(fit)["reconstructed"]:
        meaning += (" In this RECONSTRUCTED cohort the outcomes are synthetic: they reproduce "
                    "published counts, not any patient's remission, and the clinical criterion "
                    "is that of the publication.")
    lis = "".join(f"<li>{_esc(i)}</li>" for i in items)
    return "\n".join([
        '<div id="population"><h3>The population the curves describe</h3>',
        "<p>The curves and thresholds apply to patients like the fitted ones: the exclusions "
        "below define who they are, and predictions outside the fitted TL range are "
        "extrapolations.</p>",
        f"<ul>{lis}</ul>", f'<p id="remission-meaning">{_esc(meaning)}</p>', "</div>",
    ])


def data_section(cohort, fit=None) -> str:
    """The population, counts, remission by month, TL by outcome, the classical analysis."""
    from pkmodel.data import classical_analysis

    summary = cohort.describe()
    table = classical_analysis(cohort).table
    classical = table.drop(columns="month").rename(columns=_CLASSICAL_LABELS).T.reset_index()
    classical.columns = ["statistic", *(f"month {m}" for m in table["month"])]
    return "\n".join([
        '<section id="data"><h2>1. Data</h2>',
        population_section(fit) if fit is not None else "",
        "<h3>Remission by month</h3>", _table(_readable(summary.remission, _DATA_LABELS)),
        "<h3>Baseline trough level (µg/mL) by month and outcome</h3>",
        "<p>Values reported above the assay limit are counted at the limit here; the Bayesian "
        "model treats them as censored.</p>",
        _table(_readable(summary.tl_by_outcome, _DATA_LABELS)),
        "<h3>Patients per centre, strategy and month</h3>",
        _table(_readable(summary.counts, _DATA_LABELS)),
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
        Columns ``parameter``, ``prior``, ``reason``; only parameters present in the fit
        (from the model's terms, :func:`pkmodel.response.terms.prior_rows`).
    """
    from pkmodel.response.terms import prior_rows

    rows = prior_rows(fit.spec.priors, fit.structure, set(fit.tree["posterior"].data_vars))
    return pd.DataFrame(rows, columns=["parameter", "prior", "reason"])


def _structure_notes(fit) -> str:
    """What the data could identify (:attr:`RemissionFit.notes`), as a list for the report."""
    notes = fit.notes
    if not notes:
        return ""
    items = "".join(f"<li>{_esc(n)}</li>" for n in notes)
    return f'<h3>What the data identify</h3><ul class="notes" id="structure-notes">{items}</ul>'


def model_section(fit) -> str:
    """The model written out (either kind), its specification and priors, and the posterior
    summary."""
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
    exposure = fit.meta.get("exposure") or {}
    if exposure:  # the exposure-driven model: which PK model made the gains
        from pkmodel.response.exposure import fitted_pk_model

        pk = fitted_pk_model(exposure)
        local = "pk_model_definition" in exposure
        items["PK model of the exposure gains"] = (
            f"{pk.name}: {pk.title}" + (" (its numbers recorded in the fit)" if local else ""))
        items["baseline regimen"] = exposure["baseline_regimen"]
    spec_rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items.items())
    if exposure:
        formula = ("logit P(remission<sub>ij</sub>) = α + a<sub>centre[i]</sub> + "
                   "τ<sub>month[j]</sub> + b<sub>base</sub> (log TL<sub>i</sub> − log 5) + "
                   "b<sub>gain</sub> log gain<sub>i</sub> + γ·z<sub>i</sub> + u<sub>i</sub>")
        where = ("<p>for patient <em>i</em> at assessment month <em>j</em>: the exposure-driven "
                 "model. gain<sub>i</sub> is the ratio of the patient's steady-state trough "
                 "under the regimen given to that under the baseline regimen, from their "
                 "individual PK posterior (the PK model below, given their covariates and "
                 "baseline trough); its uncertainty is integrated with the patient effect "
                 "u<sub>i</sub>. No strategy terms: a regimen acts through its gain. Centre "
                 "effects partially pooled; a TL reported above the assay limit is a latent "
                 "value beyond the limit. Priors on the logit scale; TL in µg/mL.</p>")
        summary_note = ("<p>Mean, SD, median and 90% equal-tailed interval; <code>b_base</code> "
                        "is per unit of log baseline TL, <code>b_gain</code> per unit of log "
                        "exposure gain.</p>")
    else:
        formula = ("logit P(remission<sub>ij</sub>) = α + a<sub>centre[i]</sub> + "
                   "τ<sub>month[j]</sub> + β<sub>i</sub> (log TL<sub>i</sub> − log 5) + "
                   "δ<sub>strategy[i]</sub> + γ·z<sub>i</sub> + u<sub>i</sub>")
        where = ("<p>for patient <em>i</em> at assessment month <em>j</em>, with β<sub>i</sub> = "
                 "β + b<sub>strategy[i]</sub> (+ b<sub>disease[i]</sub>), centre effects "
                 "partially pooled, slope offsets regularised towards the common slope, a "
                 "patient effect u<sub>i</sub> linking a patient's assessments, and a TL "
                 "reported above the assay limit treated as a latent value beyond the limit. "
                 "Priors are on the logit scale; TL in µg/mL.</p>")
        summary_note = ("<p>Mean, SD, median and 90% equal-tailed interval; "
                        "<code>or_per_doubling</code> "
                        "is the odds ratio of remission for a doubling of baseline TL.</p>")
    return "\n".join([
        '<section id="model"><h2>2. Model and priors</h2>',
        f'<p class="formula">{formula}</p>', where,
        _structure_notes(fit),
        f'<table class="data spec"><tbody>{spec_rows}</tbody></table>',
        "<h3>Priors</h3>", _table(prior_table(fit)),
        "<h3>Posterior summary of the population parameters</h3>", summary_note,
        _table(fit.summary().rename(columns=_SUMMARY_LABELS),
               formats={"bulk ESS": ".0f", "tail ESS": ".0f", "R-hat": ".3f"}),
        "</section>",
    ])


def checks_table(d) -> pd.DataFrame:
    """The convergence gate, one row per check, values formatted for reading."""
    from pkmodel.response.diagnostics import (
        BFMI_MIN,
        ESS_MIN,
        RHAT_MAX,
        TREEDEPTH_MAX_FRACTION,
    )

    def ok(passed: bool) -> str:
        return "yes" if passed else "NO"

    def whole(v: float) -> str:
        return "–" if not np.isfinite(v) else f"{v:.0f}"

    return pd.DataFrame([
        {"check": "max R-hat", "value": d.rhat_text(), "required": f"<= {RHAT_MAX}",
         "ok": ok(d.max_rhat <= RHAT_MAX)},
        {"check": "min bulk ESS", "value": whole(d.min_ess_bulk), "required": f">= {ESS_MIN}",
         "ok": ok(d.min_ess_bulk >= ESS_MIN)},
        {"check": "min tail ESS", "value": whole(d.min_ess_tail), "required": f">= {ESS_MIN}",
         "ok": ok(d.min_ess_tail >= ESS_MIN)},
        {"check": "divergent transitions", "value": str(d.divergences), "required": "0",
         "ok": ok(d.divergences == 0)},
        {"check": "min E-BFMI", "value": "–" if not np.isfinite(d.min_bfmi)
         else f"{d.min_bfmi:.2f}", "required": f">= {BFMI_MIN}",
         "ok": ok(not d.min_bfmi < BFMI_MIN)},
        {"check": "draws at the maximum tree depth", "value": f"{d.treedepth_fraction:.1%}",
         "required": f"<= {TREEDEPTH_MAX_FRACTION:.0%}",
         "ok": ok(d.treedepth_fraction <= TREEDEPTH_MAX_FRACTION)},
    ])


@dataclasses.dataclass(frozen=True)
class ReportStatus:
    """The report's one verdict on convergence.

    Attributes
    ----------
    label : {"PASS", "CHECK", "FAIL"}
        ``FAIL``: the convergence gate fails. ``CHECK``: the gate passes but the rank plots'
        multi-chain test flags a parameter (the chains disagree about it in a way R-hat and ESS
        did not show). ``PASS``: the gate passes and the test flags nothing.
    flagged : tuple of str
        The parameters the rank test flags.
    p_values : tuple of float
        Their p-values.
    alpha : float
        The test's level.
    n_tested : int
        The parameter elements tested.
    """

    label: str
    flagged: tuple[str, ...]
    p_values: tuple[float, ...]
    alpha: float
    n_tested: int


def report_status(fit) -> ReportStatus:
    """The verdict the report shows: the convergence gate and the rank test, reconciled."""
    from pkmodel.plots import rank_test

    ranks = rank_test(fit)
    flagged = ranks[ranks.flagged]
    alpha = float(ranks.alpha.iloc[0]) if len(ranks) else 0.01
    label = ("FAIL" if not fit.diagnostics.converged else "CHECK" if len(flagged)
             else "PASS")
    return ReportStatus(label, tuple(flagged.parameter), tuple(float(p) for p in
                                                               flagged.p_value),
                        alpha, len(ranks))


def diagnostics_section(fit) -> str:
    """Convergence diagnostics with one verdict (:func:`report_status`), and rank and trace
    plots.

    ``FAIL`` is the convergence gate (R-hat, ESS, divergences, E-BFMI, tree depth) failing. The
    rank plots carry a separate multi-chain uniformity test of the ranks; when it flags a
    parameter of a fit that passes the gate, the verdict is ``CHECK``, not ``PASS``, and says
    which parameter and what to do, so that a flagged panel never sits beside a plain pass.
    """
    from pkmodel.plots import plot_rank, plot_trace

    d = fit.diagnostics
    st = report_status(fit)
    status = st.label
    problems = "".join(f"<li>{_esc(p)}</li>" for p in d.problems())
    alpha = f"{st.alpha:g}"
    names = ", ".join(f"{n} (p = {p:.2g})" for n, p in zip(st.flagged, st.p_values,
                                                              strict=True))
    if status == "FAIL":
        verdict = ("The fit FAILS its convergence checks: do not use its curves or thresholds "
                   "before fixing this.")
    elif status == "CHECK":
        verdict = (f"The convergence gate passes (R-hat, ESS, divergences, E-BFMI, tree depth), "
                   f"but the rank plots' multi-chain test finds that the chains disagree about "
                   f"{names}: the gate did not detect it. Fit again with more draws (and "
                   "tuning) or another seed, and compare that parameter's summary, before "
                   "relying on it.")
    else:
        verdict = ("All checks of the convergence gate pass (R-hat, ESS, divergences, E-BFMI, "
                   "tree depth), and the rank plots' test flags no parameter.")
    if st.flagged:
        rank_text = (
            f"The rank plots' multi-chain test flags {names}: the chains' ranks are not "
            f"uniform at level {alpha} (black points: the draws that contribute most). It "
            f"tests {st.n_tested} parameter elements, so about {st.n_tested * st.alpha:.0%} of "
            "well-mixed fits flag one by chance; a flag with chains visibly apart in the rank "
            "or trace plot is not chance.")
    elif st.n_tested:
        rank_text = (f"The rank plots' multi-chain test flags no parameter at level {alpha} "
                     f"({st.n_tested} parameter elements tested).")
    else:
        rank_text = "The rank plots' multi-chain test needs two or more chains."
    return "\n".join([
        '<section id="diagnostics"><h2>3. Diagnostics</h2>',
        f'<p><span class="badge {status.lower()}" id="diagnostics-status">{status}</span> '
        f"{_esc(verdict)} {d.n_draws} posterior draws; worst R-hat in "
        f"<code>{_esc(d.worst_parameter)}</code>.</p>",
        f"<ul>{problems}</ul>" if problems else "",
        _table(checks_table(d)),
        f'<p id="rank-test">{_esc(rank_text)}</p>',
        figure_html(plot_rank(fit), "rank plots of the population parameters",
                    "Rank plots: each chain's fractional-rank Δ-ECDF stays near zero when the "
                    f"chains agree; p: the multi-chain uniformity test (flagged below {alpha}), "
                    "a check separate from the convergence gate."),
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
        "top; open circles: TL above the assay limit, drawn at the limit); squares: observed "
        "remission rate in TL bins with Jeffreys intervals. On the p_min line: the TL where "
        "the curve crosses p_min (dot: median; bar: interval) and, as a downward triangle, the "
        "TL from which intensification is futile with the required credibility.</p>",
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
                            "tl_cross_median": "crossing TL, median (µg/mL)",
                            "tl_cross_lower": f"crossing TL, {round(ci_prob * 100)}% lower "
                                              "(µg/mL)",
                            "tl_cross_upper": f"crossing TL, {round(ci_prob * 100)}% upper "
                                              "(µg/mL)",
                            "p_cross_in_grid": "share of draws crossing in the grid"})
    shown = _readable(shown, {})
    lo, hi = float(thresholds["grid_min"].iloc[0]), float(thresholds["grid_max"].iloc[0])
    grid = f"{lo:.3g}-{hi:.3g}"
    extrapolation = ""
    if "extrapolated" in thresholds:
        f_lo, f_hi = (float(thresholds[c].iloc[0]) for c in ("fitted_tl_min", "fitted_tl_max"))
        beyond = thresholds["extrapolated"].to_numpy(dtype=bool)
        shown.insert(3, "within the fitted TLs",
                     np.where(beyond, "NO: extrapolation", "yes"))
        none = (thresholds["tl_futile"].isna() & thresholds["tl_cross_median"].isna())
        shown.loc[none.to_numpy(), "within the fitted TLs"] = "–"
        if beyond.any():
            rows = "; ".join(
                f"{str(r.strategy).replace('_', ' ')}, month {r.month}: "
                + ", ".join(f"{what} {v:.3g} µg/mL" for what, v in
                            (("futile from", r.tl_futile), ("crossing median",
                                                            r.tl_cross_median))
                            if v == v and not f_lo <= v <= f_hi)
                for r in thresholds[beyond].itertuples())
            extrapolation = (
                f'<div class="notice warn" id="extrapolation"><strong>Extrapolation.</strong> '
                f"The fitted baseline TLs span {f_lo:.3g}-{f_hi:.3g} µg/mL; the threshold lies "
                f"beyond them ({_esc(rows)}): the model was not fitted on such troughs, and the "
                "threshold rests on its extrapolation.</div>")
    fig = plot_crossing_tl(fit, curve, p_min=p_min, credibility=credibility, ci_prob=ci_prob)
    return "\n".join([
        '<section id="thresholds"><h2>5. Futility thresholds</h2>',
        f"<p>Intensification is called futile at a TL where P(remission) &lt; {p_min:g} with "
        f"posterior probability at least {credibility:g}: <em>futile from TL</em> is the lowest "
        "TL from which that holds at every higher TL of the grid. The <em>crossing TL</em> is, "
        f"per posterior draw, the TL where the curve falls below {p_min:g} for good; its median "
        f"and {round(ci_prob * 100)}% interval are shown. A dash: not reached within the TL "
        f"grid ({_esc(grid)} µg/mL).</p>",
        extrapolation,
        _table(shown),
        figure_html(fig, "posterior distribution of the crossing TL"),
        "</section>",
    ])
