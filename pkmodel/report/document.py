"""The self-contained HTML report of a fit: assembled from its sections and written atomically."""

from __future__ import annotations

import datetime as _dt
import html
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pkmodel.disclaimer import DISCLAIMER
from pkmodel.files import atomic_path, check_writable
from pkmodel.report.figures import figure_html
from pkmodel.report.sections import (
    cohort_of,
    curves_section,
    data_section,
    diagnostics_section,
    disclaimer_section,
    is_reconstructed,
    model_section,
    report_status,
    threshold_section,
)

__all__ = ["footer", "html_document", "render_report", "write_html", "write_report"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #fff; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 0.2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.4rem; font-size: 1.05rem; }
.meta { color: #57606a; font-size: 0.9rem; }
.notice { border-left: 5px solid #0969da; background: #ddf4ff; padding: 0.7rem 1rem;
          margin: 1rem 0; }
.notice.warn { border-left-color: #bf8700; background: #fff8c5; }
.notice ul { margin: 0.4rem 0 0; }
table.data { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
table.data th, table.data td { border-bottom: 1px solid #d0d7de; padding: 0.25rem 0.6rem;
                               text-align: left; vertical-align: top; }
table.data th { background: #f6f8fa; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
.badge { display: inline-block; font-weight: 700; padding: 0.15rem 0.6rem; border-radius: 4px;
         color: #fff; }
.badge.pass { background: #1a7f37; }
.badge.fail { background: #cf222e; }
.badge.check { background: #9a6700; }
.formula { font-family: "Cambria Math", Georgia, serif; font-size: 1.05rem; background: #f6f8fa;
           padding: 0.6rem 1rem; }
figure { margin: 1rem 0; }
img.plot { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: 0.85rem; }
nav a { margin-right: 1rem; }
footer { color: #57606a; font-size: 0.8rem; margin-top: 3rem; border-top: 1px solid #d0d7de;
         padding-top: 0.6rem; }
"""


def _versions() -> str:
    out = []
    for name in ("pkmodel", "pymc", "arviz", "numpy", "pandas", "matplotlib"):
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(out)


def footer() -> str:
    """The footer of every report: the versions that made it and the disclaimer."""
    return (f"<footer>Made by pkmodel ({html.escape(_versions())}). "
            f"{html.escape(DISCLAIMER)}</footer>")


def html_document(title: str, body: list[str]) -> str:
    """One self-contained HTML page (the report's style) of ``title`` and ``body`` fragments."""
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head>",
        "<body><main>", *body, "</main></body></html>", "",
    ])


def written_at() -> str:
    """The time a report is written, for its header."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_html(text: str, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a rendered report to ``path`` atomically (an existing file only with ``force``)."""
    target = check_writable(path, force=force)
    with atomic_path(target, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target


def _checks_section(fit, random_seed: int | None) -> str:
    from pkmodel.plots import plot_calibration, plot_posterior_predictive, replicated_outcomes

    replicated = replicated_outcomes(fit, random_seed=random_seed)
    return "\n".join([
        '<section id="checks"><h2>6. Model checks</h2>',
        "<p>Outcomes replicated from the fitted model compared with the observed ones: the "
        "remission rate per strategy and month, the drop in remission from low to high TL, and "
        "calibration (observed remission rate among assessments of similar predicted "
        "probability).</p>",
        figure_html(plot_posterior_predictive(fit, replicated),
                    "posterior predictive check of remission rates"),
        figure_html(plot_calibration(fit, replicated, random_seed=random_seed),
                    "calibration plot of predicted against observed remission"),
        "</section>",
    ])


def render_report(fit, *, p_min: float = 0.2, credibility: float = 0.9, ci_prob: float = 0.9,
                  random_seed: int | None = 0, source: str = "") -> str:
    """The report of ``fit`` as one self-contained HTML document.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    p_min : float, default 0.2
        Remission probability below which intensification is called futile.
    credibility : float, default 0.9
        Posterior probability required for P(remission) < p_min.
    ci_prob : float, default 0.9
        Width of the credible bands and intervals.
    random_seed : int, optional
        Seed of the posterior predictive draws (the same seed gives the same report).
    source : str, optional
        Where the fit came from (shown in the header), e.g. its file name.

    Returns
    -------
    str
        HTML with every image inlined as a base64 data URI: it needs no network and no other
        file to open.
    """
    cohort = cohort_of(fit)
    curve = fit.remission_curve()
    thresholds = fit.futility_threshold(p_min=p_min, credibility=credibility, ci_prob=ci_prob)
    status = report_status(fit).label
    title = f"pkmodel report: {fit.cohort_name or 'cohort'}"
    if is_reconstructed(fit) and "reconstructed" not in title.lower():
        title += " (RECONSTRUCTED cohort)"
    now = written_at()
    header = (f'<p class="meta">Fit {html.escape(source) + ", " if source else ""}'
              f"cohort {html.escape(fit.cohort_name or '-')}, seed {fit.random_seed}; "
              f"diagnostics <strong>{status}</strong>; written {now}.</p>")
    nav = ('<nav><a href="#data">Data</a><a href="#model">Model</a>'
           '<a href="#diagnostics">Diagnostics</a><a href="#curves">Curves</a>'
           '<a href="#thresholds">Thresholds</a><a href="#checks">Checks</a></nav>')
    body = [
        f"<h1>{html.escape(title)}</h1>", header, disclaimer_section(fit), nav,
        data_section(cohort, fit),
        model_section(fit),
        diagnostics_section(fit),
        curves_section(fit, curve, thresholds, ci_prob),
        threshold_section(fit, curve, thresholds, p_min, credibility, ci_prob),
        _checks_section(fit, random_seed),
        footer(),
    ]
    return html_document(title, body)


def write_report(fit, path: str | os.PathLike, *, force: bool = False,
                 p_min: float = 0.2, credibility: float = 0.9, ci_prob: float = 0.9,
                 random_seed: int | None = 0, source: str = "") -> Path:
    """Write the HTML report of ``fit`` to ``path``, atomically.

    Parameters
    ----------
    fit : RemissionFit
        The fit.
    path : str or path
        The ``.html`` file to write.
    force : bool, default False
        Replace an existing file; without it an existing file is an error (checked before any
        work is done).
    p_min, credibility, ci_prob, random_seed, source
        As for :func:`render_report`.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import pkmodel
    >>> from pkmodel.report import write_report
    >>> fit = pkmodel.load_fit("out/fit.nc")  # doctest: +SKIP
    >>> write_report(fit, "out/report.html", force=True)  # doctest: +SKIP
    """
    check_writable(path, force=force)  # before any work is done
    text = render_report(fit, p_min=p_min, credibility=credibility, ci_prob=ci_prob,
                         random_seed=random_seed, source=source)
    return write_html(text, path, force=force)
