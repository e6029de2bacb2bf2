"""``pkmodel recommend``: P(remission) under candidate regimens for one patient, and a verdict."""

from __future__ import annotations

from pkmodel.cli.output import emit_json
from pkmodel.disclaimer import DISCLAIMER
from pkmodel.errors import SpecificationError

__all__ = ["register"]


def _covariates(items) -> dict:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SpecificationError(f"--covariate {item!r}: write NAME=VALUE, e.g. "
                                     "--covariate disease=UC")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


def _recommend(args) -> int:
    from pkmodel.response import load_fit
    from pkmodel.response.recommend import DEFAULT_REGIMENS

    fit = load_fit(args.fit)
    rec = fit.recommend(tl_ug_ml=args.tl, weight_kg=args.weight_kg, albumin_g_l=args.albumin_g_l,
                        ati=args.ati, covariates=_covariates(args.covariate),
                        regimens=args.regimens or DEFAULT_REGIMENS, p_min=args.p_min,
                        credibility=args.credibility, month=args.month, ci_prob=args.ci_prob,
                        tl_cens=-1 if args.tl_above_limit else 0, random_seed=args.seed)
    if args.json:
        emit_json(rec.to_dict())
        return 0
    print(f"WARNING: {DISCLAIMER}")
    s = rec.settings
    tl = "not measured" if s["tl_ug_ml"] is None else f"{s['tl_ug_ml']:g} µg/mL"
    print(f"Patient: trough {tl} on {s['baseline_regimen']}, {s['weight_kg']:g} kg; "
          f"model {s['model_kind']}, PK {s['pk_model']}")
    if s["stated_reference_values"]:
        print("Assumed (not given): " + ", ".join(f"{k} {v:g}" for k, v in
                                                   s["stated_reference_values"].items()))
    table = rec.table.drop(columns=[c for c in ("predicted_as",)
                                    if not rec.table[c].astype(bool).any()])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"Verdict (month {s['month']}, P(p_remission >= {s['p_min']:g}) >= "
          f"{s['credibility']:g}): {rec.verdict}")
    if rec.tdm is not None:
        print(f"Measuring the trough would change the verdict with probability "
              f"{rec.tdm['p_verdict_changes']:.2f}")
    for note in rec.notes:
        print(f"note: {note}")
    return 0


def register(subparsers) -> None:
    """Add ``pkmodel recommend``."""
    p = subparsers.add_parser(
        "recommend", help="for one patient: P(remission) under each candidate regimen, the "
        "forecast trough, and the least intensive regimen that reaches the target (research "
        "use only)")
    p.add_argument("fit", help="a fit saved by `pkmodel fit` (either model)")
    p.add_argument("--tl", type=float, default=None, metavar="UG_ML",
                   help="the patient's trough on standard maintenance, µg/mL; leave out when none "
                        "was measured (the output then says how much measuring one would change "
                        "the verdict)")
    p.add_argument("--tl-above-limit", action="store_true",
                   help="--tl is an assay's upper limit and the trough was above it")
    p.add_argument("--weight", dest="weight_kg", type=float, required=True, metavar="KG",
                   help="body weight, kg")
    p.add_argument("--albumin-g-l", type=float, default=None,
                   help="serum albumin, g/L (default: a stated reference value)")
    p.add_argument("--ati", type=int, choices=[0, 1], default=0,
                   help="antibodies to infliximab")
    p.add_argument("--covariate", action="append", metavar="NAME=VALUE",
                   help="a covariate of the model, e.g. disease=UC (repeatable)")
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
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_recommend)
