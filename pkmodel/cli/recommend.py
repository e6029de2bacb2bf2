"""``pkmodel recommend``: P(remission) under candidate regimens for one patient, and a verdict."""

from __future__ import annotations

import re

from pkmodel.cli.output import emit_json, separator
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import SpecificationError

__all__ = ["register"]

_CENSORED = re.compile(r"^\s*(>=|<=|>|<|≥|≤)\s*(.+)$")


def _covariates(items) -> dict:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SpecificationError(f"--covariate {item!r}: write NAME=VALUE, e.g. "
                                     "--covariate immunomodulator=1")
        if name.strip() in out:
            raise SpecificationError(f"--covariate {name.strip()} is given twice")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


def _trough(text: str | None, above_flag: bool) -> tuple[float | None, int]:
    """``--tl`` as (value, censoring code): ``4.2``, ``'>16'`` (above the limit 16) or
    ``'<0.4'``; ``--tl-above-limit`` marks a plain value as an upper limit."""
    from pkmodel.data.plausibility import check_plausible

    if text is None:
        if above_flag:
            raise SpecificationError("--tl-above-limit needs --tl LIMIT (the assay's upper limit "
                                     "the trough was above, e.g. --tl 16 --tl-above-limit, or "
                                     "--tl '>16')")
        return None, 0
    match = _CENSORED.match(text)
    code = 0
    if match:
        if above_flag:
            raise SpecificationError(f"--tl {text!r} already says where the trough lies; drop "
                                     "--tl-above-limit")
        code = -1 if match.group(1) in (">", ">=", "≥") else 1
        text = match.group(2)
    elif above_flag:
        code = -1
    return check_plausible("--tl", "baseline_tl", text), code


def _check_options(args) -> dict:
    """Every option checked before the fit is loaded; the parsed values."""
    from pkmodel.data.plausibility import check_plausible
    from pkmodel.pk.regimens import parse_regimen
    from pkmodel.validation import check_probability

    for name in ("p_min", "credibility", "ci_prob"):
        check_probability(f"--{name.replace('_', '-')}", getattr(args, name))
    tl, code = _trough(args.tl, args.tl_above_limit)
    if args.weight_kg is None and args.history is None:
        raise SpecificationError("give the patient's weight: --weight KG (or a --history "
                                 "with a WT column)")
    if args.history_id is not None and args.history is None:
        raise SpecificationError("--history-id names a patient of a history: give --history "
                                 "FILE too")
    if args.weight_kg is not None:
        check_plausible("--weight", "weight_kg", args.weight_kg)
    if args.albumin_g_l is not None:
        check_plausible("--albumin-g-l", "albumin_g_l", args.albumin_g_l)
    if args.month is not None and args.month < 1:
        raise SpecificationError(f"--month must be a fitted assessment month, not {args.month}")
    if args.tdm_draws < 100:
        raise SpecificationError(f"--tdm-draws must be at least 100, not {args.tdm_draws}")
    for text in args.regimens or ():
        try:
            parse_regimen(text)
        except SpecificationError as exc:
            raise SpecificationError(f"--regimen: {exc}") from None
    return {"tl": tl, "tl_cens": code, "covariates": _covariates(args.covariate)}


def _recommend(args) -> int:
    from pkmodel.response import load_fit
    from pkmodel.response.recommend import DEFAULT_REGIMENS

    checked = _check_options(args)
    fit = load_fit(args.fit)
    history = None
    if args.history is not None:
        from pkmodel.response.recommend import read_history

        history = read_history(args.history, fit, time_unit=args.time_unit, sep=args.sep)
    rec = fit.recommend(tl_ug_ml=checked["tl"], weight_kg=args.weight_kg,
                        history=history, history_id=args.history_id,
                        albumin_g_l=args.albumin_g_l, ati=args.ati,
                        covariates=checked["covariates"],
                        regimens=args.regimens or DEFAULT_REGIMENS, p_min=args.p_min,
                        credibility=args.credibility, month=args.month, ci_prob=args.ci_prob,
                        tl_cens=checked["tl_cens"], tdm_draws=args.tdm_draws,
                        random_seed=args.seed)
    if args.json:
        emit_json(rec.to_dict())
        return 0
    print(f"WARNING: {DISCLAIMER}")
    s = rec.settings
    where = {0: "", -1: "above the assay limit ", 1: "below the assay limit "}[s["tl_cens"]]
    tl = "not measured" if s["tl_ug_ml"] is None else f"{where}{s['tl_ug_ml']:g} µg/mL"
    print(f"Patient: trough {tl} on {s['baseline_regimen']}, {s['weight_kg']:g} kg; "
          f"model {s['model_kind']}, PK {s['pk_model']}")
    if s["stated_reference_values"]:
        print("Assumed (not given): " + ", ".join(f"{k} {v:g}" if isinstance(v, float | int)
                                                   else f"{k} {v}" for k, v in
                                                   s["stated_reference_values"].items()))
    table = rec.table.drop(columns=[c for c in ("predicted_as",)
                                    if not rec.table[c].astype(bool).any()])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"Verdict (month {s['month']}, P(p_remission >= {s['p_min']:g}) >= "
          f"{s['credibility']:g}): {rec.verdict}")
    if rec.tdm is not None:
        print(f"Measuring the trough would change the verdict with probability "
              f"{rec.tdm['p_verdict_changes']:.2f} (Monte Carlo SE "
              f"{rec.tdm['p_verdict_changes_se']:.3f}, {rec.tdm['trough_draws']} troughs drawn)")
    for note in rec.notes:
        print(f"note: {note}")
    return 0


def register(subparsers) -> None:
    """Add ``pkmodel recommend``."""
    from pkmodel.response.recommend import TDM_DRAWS

    p = subparsers.add_parser(
        "recommend", help="for one patient: P(remission) under each candidate regimen, the "
        "forecast trough, and the least intensive regimen that reaches the target (research "
        "use only)")
    p.add_argument("fit", help="a fit saved by `pkmodel fit` (either model)")
    p.add_argument("--tl", default=None, metavar="UG_ML",
                   help="the patient's trough on standard maintenance, µg/mL; '>16' for a "
                        "trough above an assay's upper limit of 16 ('<0.4' below a lower one); "
                        "leave out when none was measured (the output then says how much "
                        "measuring one would change the verdict)")
    p.add_argument("--tl-above-limit", action="store_true",
                   help="--tl is an assay's upper limit and the trough was above it (the same "
                        "as --tl '>LIMIT')")
    p.add_argument("--weight", dest="weight_kg", type=float, default=None, metavar="KG",
                   help="body weight, kg (required unless --history has a WT column)")
    p.add_argument("--history", default=None, metavar="FILE",
                   help="the patient's TDM history, NONMEM format (ID, TIME, AMT, RATE, DV, "
                        "EVID, MDV, BLQ flags, covariates such as WT, ALB): the PK posterior "
                        "uses every trough under the actual doses, and the baseline trough is "
                        "the last one unless --tl is given")
    p.add_argument("--history-id", default=None, metavar="ID",
                   help="the patient's ID in a --history of several patients")
    p.add_argument("--time-unit", choices=("day", "hour", "week"), default="day",
                   help="unit of the --history's TIME (default day)")
    p.add_argument("--sep", default=",", type=separator,
                   help="the --history's field delimiter (default ','; 'tab', 'space')")
    p.add_argument("--albumin-g-l", type=float, default=None, metavar="G_L",
                   help="serum albumin, g/L (default: a stated reference value)")
    p.add_argument("--ati", type=int, choices=[0, 1], default=None,
                   help="antibodies to infliximab (default 0, or the --history's ATI)")
    p.add_argument("--covariate", action="append", metavar="NAME=VALUE",
                   help="a covariate of the remission model or the PK model, e.g. "
                        "immunomodulator=1 or sex=F (repeatable; an unknown name is an error)")
    p.add_argument("--regimen", "--regimens", dest="regimens", action="extend", nargs="+",
                   help="candidate regimens (default: 10 mg/kg q8w, 5 mg/kg q6w, 5 mg/kg q4w, "
                        "10 mg/kg q4w)")
    p.add_argument("--p-min", type=float, default=0.2,
                   help="target: P(remission) at least this ...")
    p.add_argument("--credibility", type=float, default=0.9,
                   help="... with at least this posterior probability")
    p.add_argument("--month", type=int, default=None,
                   help="month the verdict is judged at (default: the last fitted)")
    p.add_argument("--ci-prob", type=float, default=0.9, help="credible interval width")
    p.add_argument("--tdm-draws", type=int, default=TDM_DRAWS,
                   help="without --tl: troughs drawn for the value of a measurement (its "
                        "Monte Carlo SE is at most 0.5/sqrt(N))")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_recommend)
