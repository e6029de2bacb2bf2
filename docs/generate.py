"""Tables and numbers of the docs, computed from the code so that they cannot go stale.

A generated block in a Markdown page sits between ``<!-- generated: NAME -->`` and
``<!-- end generated -->``; :data:`BLOCKS` maps each NAME to the function that writes it.

    .venv/bin/python docs/generate.py          # rewrite every block in docs/*.md
    .venv/bin/python docs/generate.py --check  # exit 1 if a block differs (tests do this)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parent
PATTERN = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL)

# Frymoyer et al. 2017 (J Pediatr Gastroenterol Nutr 65:639-645) Table 3: predicted steady-state
# trough (median, IQR, µg/mL) and percent of patients above 3 µg/mL in 34 children with Crohn's
# disease under the Fasanmade 2011 model (as transcribed in the nlmixr2lib vignette).
FRYMOYER_TABLE_3 = {
    (5, 8): (2.2, 1.2, 3.4, 32), (5, 6): (4.8, 3.0, 7.1, 74), (5, 4): (11.5, 8.4, 15.6, 94),
    (7.5, 8): (3.3, 1.8, 5.1, 62), (7.5, 6): (7.2, 4.5, 10.6, 79),
    (7.5, 4): (17.3, 12.7, 23.4, 94), (10, 8): (4.4, 2.4, 6.8, 71),
    (10, 6): (9.5, 6.0, 14.2, 82), (10, 4): (23.0, 16.9, 31.2, 94),
}


def frymoyer_cohort(n: int = 4000):
    """Steady-state troughs (regimen, patient, draw) of a virtual cohort like Frymoyer 2017
    Table 1 (median 53 kg, albumin 4.3 g/dL, 3.4-4.8; 12 % ATI; 44 % on an immunomodulator)
    under Fasanmade 2011, for the nine regimens of its Table 3."""
    from pkmodel.pk import FASANMADE_2011_CD, Regimen, steady_state_troughs

    rng = np.random.default_rng(2017)
    cov = {"weight_kg": np.clip(rng.lognormal(np.log(53), 0.3, n), 22, 120),
           "albumin_g_dl": np.clip(rng.normal(4.3, 0.35, n), 3.4, 4.8),
           "ati": (rng.random(n) < 0.12).astype(float),
           "immunomodulator": (rng.random(n) < 0.44).astype(float)}
    regimens = [Regimen(d, w) for d, w in FRYMOYER_TABLE_3]
    return regimens, steady_state_troughs(FASANMADE_2011_CD, regimens, cov, n_draws=1,
                                          random_seed=3)


def pk_models() -> str:
    """The model library: population, covariates, variability, residual error."""
    from pkmodel.pk import MODELS
    from pkmodel.pk.models import COVARIATES

    lines = ["| name | population | covariates | BSV (omega², CV % as printed) | IOV (omega²) | "
             "residual error |", "| --- | --- | --- | --- | --- | --- |"]
    for m in MODELS.values():
        cov = ", ".join(f"{c} ({COVARIATES[c]['unit']})" for c in m.covariates_used)
        bsv = ", ".join(f"{p.upper()} {m.omega2[p]:.4g} ({m.reported_cv_percent[p]:g})"
                        for p in m.random_effects)
        convention = "CV = sqrt(omega²)" if m.cv_convention == "sqrt" else "log-normal CV"
        resid = f"{100 * m.proportional_sd:.1f} %"
        if m.additive_sd_ug_ml:
            resid += f" + {m.additive_sd_ug_ml:g} µg/mL"
        iov = ", ".join(f"{p.upper()} {m.omega2_iov[p]:.4g}" for p in m.occasion_effects)
        lines.append(f"| `{m.name}` | {m.population} | {cov} | {bsv}; {convention} | "
                     f"{iov or 'none'} | {resid} |")
    return "\n".join(lines) + "\n"


def pk_typical_troughs() -> str:
    """Steady-state troughs of each model's typical 70 kg patient (reference covariates)."""
    from pkmodel.pk import MODELS, NAMED_REGIMENS, steady_state_troughs

    regs = list(NAMED_REGIMENS.values())
    lines = ["| model | CL, L/day | V1, L | Q, L/day | V2, L | terminal t½, days | "
             + " | ".join(r.label for r in regs) + " |",
             "| --- " + "| ---: " * (5 + len(regs)) + "|"]
    for m in MODELS.values():
        p = m.individual_parameters({"weight_kg": 70.0})
        ss = steady_state_troughs(m, regs, {"weight_kg": 70.0}).values.ravel()
        lines.append(f"| `{m.name}` | {float(p.cl):.3f} | {float(p.v1):.2f} | {float(p.q):.3f} "
                     f"| {float(p.v2):.2f} | {float(p.half_life_days()):.1f} | "
                     + " | ".join(f"{v:.2f}" for v in ss) + " |")
    return "\n".join(lines) + "\n"


def pk_frymoyer() -> str:
    """Fasanmade 2011 in a Frymoyer-like cohort against Frymoyer 2017 Table 3."""
    regimens, da = frymoyer_cohort()
    lines = ["| regimen | median, pkmodel | median, Frymoyer | IQR, pkmodel | IQR, Frymoyer | "
             "% > 3 µg/mL, pkmodel | % > 3 µg/mL, Frymoyer |",
             "| --- | ---: | ---: | --- | --- | ---: | ---: |"]
    for reg, (median, q25, q75, pct) in zip(regimens, FRYMOYER_TABLE_3.values(), strict=True):
        v = da.sel(regimen=reg.label).values.ravel()
        lo, mid, hi = np.quantile(v, [0.25, 0.5, 0.75])
        lines.append(f"| {reg.label} | {mid:.2f} | {median:g} | {lo:.2f}-{hi:.2f} | "
                     f"{q25:g}-{q75:g} | {100 * np.mean(v > 3):.0f} | {pct} |")
    return "\n".join(lines) + "\n"


def pk_weight_direction() -> str:
    """Fasanmade 2011 typical troughs at 30, 65 and 90 kg under the two signs."""
    import dataclasses

    from pkmodel.pk import FASANMADE_2011_CD, steady_state_troughs

    flipped = dataclasses.replace(FASANMADE_2011_CD, effects=tuple(
        dataclasses.replace(e, coefficient=2.0 - e.coefficient)
        if e.covariate == "weight_kg" and e.parameter != "q" else e
        for e in FASANMADE_2011_CD.effects))
    lines = ["| weight | negative per-kg exponents (control stream; pkmodel) | "
             "positive per-kg exponents (Frymoyer 2017 as extracted) |", "| ---: | ---: | ---: |"]
    for w in (30.0, 45.0, 65.0, 90.0):
        ours, theirs = (float(steady_state_troughs(m, ["5mg/kg q4w"], {"weight_kg": w})
                              .values.ravel()[0]) for m in (FASANMADE_2011_CD, flipped))
        lines.append(f"| {w:g} kg | {ours:.2f} | {theirs:.2f} |")
    return "\n".join(lines) + "\n"


def model_priors() -> str:
    """The remission model's prior table, from its terms (pkmodel.response.terms)."""
    from pkmodel.response.priors import Priors
    from pkmodel.response.structure import GROUP_PARAMETRISATION
    from pkmodel.response.terms import TERMS

    p = Priors()
    centred = {"group_effects": GROUP_PARAMETRISATION, "n_groups": "J"}
    lines = ["| parameter | prior | field(s) | reason |", "|---|---|---|---|"]
    for t in TERMS:
        prior = str(t.prior(p, {}))
        if str(t.prior(p, centred)) != prior:
            prior += f"; with centres {t.prior(p, centred)}"
        fields = ", ".join(f"`{f}`" for f in t.fields)
        lines.append(f"| `{t.name}` | {prior} | {fields} | {t.reason} |")
    return "\n".join(lines) + "\n"


def population_theophylline() -> str:
    """pkmodel against NONMEM on the theophylline data: the figures that
    tests/pk/population/test_pk_population_theoph.py writes to docs/theophylline_nonmem.json."""
    import json

    figures = json.loads((DOCS / "theophylline_nonmem.json").read_text(encoding="utf-8"))
    labels = {"cl": ("CL", "L/h"), "v": ("V", "L"), "ka": ("ka", "1/h"),
              "omega2_cl": ("omega² CL", ""), "omega2_v": ("omega² V", ""),
              "omega2_ka": ("omega² ka", ""), "sigma2": ("sigma² (additive)", "(mg/L)²")}
    lines = ["| quantity | unit | pkmodel (posterior median) | NONMEM FOCE-I | NONMEM SE | "
             "ratio | difference / SE | target | met |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for name, row in figures["rows"].items():
        label, unit = labels[name]
        target = "within 2 SE" if name in ("cl", "v", "ka") else "ratio 0.67-1.5"
        lines.append(f"| {label} | {unit} | {row['pkmodel']:.4g} | {row['nonmem']:.4g} | "
                     f"{row['nonmem_se']:.3g} | {row['ratio']:.3f} | {row['z']:+.2f} | "
                     f"{target} | {'yes' if row['met'] else 'NO'} |")
    lines += ["", f"NONMEM's objective function at its estimates: {figures['nonmem_ofv']:.3f};",
              "the same FOCE objective from pkmodel's predictions at those estimates: "
              f"{figures['ofv_at_nonmem_estimates']:.3f}.", f"Fit: {figures['chains']} chains x "
              f"{figures['draws']} draws after {figures['tune']} tuning steps, target_accept "
              f"{figures['target_accept']}, seed {figures['random_seed']};", "convergence gate "
              f"{'passed' if figures['converged'] else 'FAILED'}."]
    return "\n".join(lines) + "\n"


def population_pheno() -> str:
    """pkmodel against NONMEM on the public phenobarbital data: the figures that
    benchmarks/public_pheno.py writes to docs/pheno_nonmem.json."""
    import json

    figures = json.loads((DOCS / "pheno_nonmem.json").read_text(encoding="utf-8"))
    lines = ["| quantity | NONMEM FOCE-I | NONMEM SE | pkmodel (posterior median) | "
             "agreement | target | met |", "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in figures["rows"]:
        variance = row["quantity"].startswith(("sigma", "omega"))
        lines.append(f"| {row['quantity']} | {row['nonmem']:.4g} | {row['nonmem_se']:.3g} | "
                     f"{row['pkmodel']:.4g} | {row['agreement']} | "
                     f"{'ratio 0.67-1.5' if variance else 'within 2 SE'} | "
                     f"{'yes' if row['within'] else 'NO'} |")
    lines += ["", f"{figures['n_subjects']} subjects, {figures['n_observations']} observations. "
              f"Fit: {figures['chains']} chains x {figures['draws']} draws after "
              f"{figures['tune']} tuning steps, seed {figures['random_seed']}; convergence gate "
              f"{'passed' if figures['converged'] else 'FAILED'}."]
    return "\n".join(lines) + "\n"


def exposure_iov_gain() -> str:
    """Posterior of log gain (5 mg/kg q8w to q4w) of a 70 kg patient, with and without the
    default model's inter-occasion variability."""
    import dataclasses

    from pkmodel.pk import get_model
    from pkmodel.pk.gain import log_gain_posterior
    from pkmodel.pk.regimens import Regimen

    model = get_model("fasanmade2011")
    tl = np.array([2.0, 5.0, 12.0])
    cov = {"weight_kg": 70.0, "albumin_g_dl": 4.0, "ati": 0.0, "immunomodulator": 0.0}
    rows = {}
    for label, m in (("with IOV (the model)", model),
                     ("without (omega2_iov removed)", dataclasses.replace(model, omega2_iov={}))):
        g = log_gain_posterior(m, tl, np.zeros(3, int), cov, np.full(3, 5.0), np.full(3, 4.0),
                               baseline=Regimen(5, 8), random_seed=1)
        rows[label] = [f"{mu:.2f} ({sd:.2f})" for mu, sd in zip(g.mean, g.sd, strict=True)]
    lines = ["| baseline trough (µg/mL) | " + " | ".join(f"{t:g}" for t in tl) + " |",
             "| --- | " + " | ".join("---:" for _ in tl) + " |"]
    lines += [f"| log gain, {label} | " + " | ".join(v) + " |" for label, v in rows.items()]
    return "\n".join(lines) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "exposure-iov-gain": exposure_iov_gain,
    "model-priors": model_priors,
    "population-pheno": population_pheno,
    "population-theophylline": population_theophylline,
    "pk-models": pk_models,
    "pk-typical-troughs": pk_typical_troughs,
    "pk-frymoyer": pk_frymoyer,
    "pk-weight-direction": pk_weight_direction,
}


def render(text: str) -> str:
    """``text`` with every generated block recomputed."""
    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in BLOCKS:
            raise KeyError(f"no generator for block {name!r}")
        return match.group(1) + BLOCKS[name]() + match.group(4)

    return PATTERN.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is stale")
    args = parser.parse_args(argv)
    stale = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        new = render(text)
        if new != text:
            stale.append(page.name)
            if not args.check:
                page.write_text(new, encoding="utf-8")
    if stale:
        print(("stale: " if args.check else "rewrote: ") + ", ".join(stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
