"""The self-contained HTML report of a fit (``pkmodel report FIT.nc -o report.html``).

One file, every image inlined: the data summary and the source study's classical analysis, the
model and its priors, convergence diagnostics with a clear pass or fail, the remission curves,
the futility thresholds, predictive checks, and the research-use disclaimer (with a warning when
the cohort is reconstructed rather than patient data). A population PK fit has its own run
report (``pkmodel pk report POPFIT.nc -o report.html``, :func:`write_population_report`): data,
specification and priors, convergence gate, parameter table with shrinkage, goodness-of-fit plots
and the pcVPC, on the same page design.
"""

from pkmodel.report.document import render_report, write_report
from pkmodel.report.figures import figure_to_data_uri
from pkmodel.report.population import render_population_report, write_population_report
from pkmodel.report.sections import RESEARCH_DISCLAIMER, ReportStatus, report_status

__all__ = ["RESEARCH_DISCLAIMER", "ReportStatus", "figure_to_data_uri",
           "render_population_report", "render_report", "report_status",
           "write_population_report", "write_report"]
