"""The published population PK models of infliximab: six two-compartment models with covariates.

Every one is a :class:`~pkmodel.pk.models.PopulationModel` of the two-compartment structure with
zero-order intravenous infusions into the central compartment. Units: clearances CL and Q in
L/day, volumes V1 and V2 in L, body weight in kg, serum albumin in g/dL, concentrations in µg/mL
(= mg/L).

Each constant holds the paper's typical values at its reference covariates, its covariate effects
(the forms of :mod:`pkmodel.pk.covariate_effects`: a published ``1 + c x`` of a 0/1 covariate is
``linear`` with reference 0, a factor ``c^x`` is ``categorical`` with ``theta = log c``), its
between-subject variability (``omega2``, with the convention its CVs were printed in), its
inter-occasion variability where the source has one (``omega2_iov``: both Fasanmade 2011 models,
on CL) and residual error, with the source of every number in ``source``. The published sets:
:data:`FASANMADE_2009_UC`, :data:`FASANMADE_2011_CD`, :data:`FASANMADE_2011_PAEDIATRIC`,
:data:`WOJCIECHOWSKI_2017`, :data:`DUBINSKY_2017`, :data:`AUBOURG_2015`, all in :data:`MODELS`;
:func:`get_model` finds one by name or alias.
"""

from __future__ import annotations

import math

from pkmodel.errors import SpecificationError
from pkmodel.pk.covariate_effects import CovariateEffect
from pkmodel.pk.models import PopulationModel

__all__ = [
    "AUBOURG_2015",
    "DUBINSKY_2017",
    "FASANMADE_2009_UC",
    "FASANMADE_2011_CD",
    "FASANMADE_2011_PAEDIATRIC",
    "MODELS",
    "WOJCIECHOWSKI_2017",
    "get_model",
]

FASANMADE_2009_UC = PopulationModel(
    name="fasanmade2009",
    aliases=("fasanmade2009_uc", "fasanmade_2009", "uc"),
    title="Infliximab in ulcerative colitis (ACT 1 and ACT 2, 482 adults): Fasanmade et al. 2009",
    citation=(
        "Fasanmade AA, Adedokun OJ, Ford J, Hernandez D, Johanns J, Hu C, Davis HM, Zhou H. "
        "Population pharmacokinetic analysis of infliximab in patients with ulcerative colitis. "
        "Eur J Clin Pharmacol. 2009;65(12):1211-1228. doi:10.1007/s00228-009-0718-4"
    ),
    source=(
        "Typical values CL 0.407 L/day, V1 3.29 L, V2 4.13 L, Q 7.14 L/day and BSV 37.7% (CL), "
        "22.1% (V1): the paper's abstract (final covariate model). Covariate model, omega^2 and "
        "residual error: the paper's Table 3 as transcribed in the nlmixr2lib model "
        "Fasanmade_2009_infliximab (CL x (ALB/4.1)^-1.54 x (1 + 0.471 ATI) x (1 - 0.236 female); "
        "V1 x (WT/77)^0.538 x (1 - 0.137 female); omega^2 0.131 (CL), 0.048 (V1); proportional "
        "0.403, additive 0.0413 µg/mL). Reference patient: 77 kg, albumin 4.1 g/dL, male, "
        "ATI-negative. We could not read Table 3 itself; the covariate numbers are second-hand. "
        "The abstract's 37.7% and 22.1% are closest to the log-normal CVs of these omega^2 "
        "(37.4%, 22.2%; sqrt(omega^2) would give 36.2%, 21.9%): 37.7% would need omega^2 0.133, "
        "a 0.3-point gap we cannot resolve without Table 3; we keep the transcribed 0.131."
    ),
    typical={"cl": 0.407, "v1": 3.29, "q": 7.14, "v2": 4.13},
    reference_covariates={"weight_kg": 77.0, "albumin_g_dl": 4.1, "ati": 0.0, "female": 0.0},
    effects=(
        CovariateEffect("cl", "albumin_g_dl", "power", -1.54, 4.1),
        CovariateEffect("cl", "ati", "linear", 0.471, 0.0),
        CovariateEffect("cl", "female", "linear", -0.236, 0.0),
        CovariateEffect("v1", "weight_kg", "power", 0.538, 77.0),
        CovariateEffect("v1", "female", "linear", -0.137, 0.0),
    ),
    omega2={"cl": 0.131, "v1": 0.048},
    cv_convention="lognormal",
    reported_cv_percent={"cl": 37.7, "v1": 22.1},
    proportional_sd=0.403,
    additive_sd_ug_ml=0.0413,
    population="Ulcerative colitis, adults (ACT 1 and ACT 2, 482)",
)
"""Fasanmade et al. 2009, ulcerative colitis (Eur J Clin Pharmacol 65:1211-1228).

Typical values (abstract; Table 3): CL 0.407 L/day, V1 3.29 L, V2 4.13 L, Q 7.14 L/day for a 77 kg
male with albumin 4.1 g/dL and no antibodies to infliximab (ATI). Covariates (Table 3, second-hand
via nlmixr2lib): CL x (ALB/4.1 g/dL)^-1.54 x (1 + 0.471 ATI) x (1 - 0.236 female);
V1 x (WT/77 kg)^0.538 x (1 - 0.137 female). BSV: omega^2 0.131 on CL, 0.048 on V1 (log-normal
CVs 37.4% and 22.2%; the abstract prints 37.7% and 22.1%); none on Q and V2. Residual error:
proportional 0.403 plus additive 0.0413 µg/mL.
"""

FASANMADE_2011_CD = PopulationModel(
    name="fasanmade2011",
    aliases=("fasanmade2011_cd", "fasanmade_2011", "cd"),
    title=("Infliximab in Crohn's disease (REACH + ACCENT I, 112 children and 580 adults): "
           "Fasanmade et al. 2011"),
    population="Crohn's disease, children (REACH, 112) and adults (ACCENT I, 580)",
    citation=(
        "Fasanmade AA, Adedokun OJ, Blank M, Zhou H, Davis HM. Pharmacokinetic properties of "
        "infliximab in children and adults with Crohn's disease: a retrospective analysis of data "
        "from 2 phase III clinical trials. Clin Ther. 2011;33(7):946-964. "
        "doi:10.1016/j.clinthera.2011.06.002. Parameter values as in the NONMEM control stream "
        "of Kim Y, Baek SH, Jang IJ, Chung JY. CPT Pharmacometrics Syst Pharmacol. "
        "2025;14:1682-1694, doi:10.1002/psp4.70089 (Data S1, model 6; Table S2)."
    ),
    source=(
        "Combined-population model, per kilogram with reference 65 kg (Fasanmade 2011, final "
        "model; as coded in Kim 2025 Data S1 model 6): CL (mL/kg/day) = 5.42 (WT/65)^-0.313 "
        "(ALB/4.1 g/dL)^-0.855 (1 + 0.291 ATI) (1 - 0.137 IMM); V1 (mL/kg) = 52.4 (WT/65)^-0.233; "
        "V2 (mL/kg) = 19.6 (WT/65)^-0.588; Q = 2.26 mL/kg/day; omega^2 0.0942 (CL), 0.0159 (V1), "
        "0.306 (V2), printed as 30.7%, 12.6%, 55.3% = sqrt(omega^2); residual 29.2% "
        "proportional + 0.371 µg/mL additive. Coded as totals at 65 kg with weight exponents "
        "raised by 1 (0.687, 0.767, 0.412, 1). The same equations as printed in Frymoyer 2017 "
        "(Methods) carry positive weight exponents; we follow the control stream (see docs/pk.md, "
        "'Fasanmade 2011: the sign of the weight exponents'). Inter-occasion variability on CL, "
        "omega^2 0.0335 (sqrt 18.3%), from the same control stream: an occasion is a dosing "
        "interval (pkmodel.pk.occasions)."
    ),
    typical={"cl": 5.42 * 0.065, "v1": 52.4 * 0.065, "q": 2.26 * 0.065, "v2": 19.6 * 0.065},
    reference_covariates={"weight_kg": 65.0, "albumin_g_dl": 4.1, "ati": 0.0,
                          "immunomodulator": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 1.0 - 0.313, 65.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -0.855, 4.1),
        CovariateEffect("cl", "immunomodulator", "linear", -0.137, 0.0),
        CovariateEffect("cl", "ati", "linear", 0.291, 0.0),
        CovariateEffect("v1", "weight_kg", "power", 1.0 - 0.233, 65.0),
        CovariateEffect("v2", "weight_kg", "power", 1.0 - 0.588, 65.0),
        CovariateEffect("q", "weight_kg", "power", 1.0, 65.0),
    ),
    omega2={"cl": 0.0942, "v1": 0.0159, "v2": 0.306},
    omega2_iov={"cl": 0.0335},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 30.7, "v1": 12.6, "v2": 55.3},
    proportional_sd=0.292,
    additive_sd_ug_ml=0.371,
)
"""Fasanmade et al. 2011, Crohn's disease, children and adults (Clin Ther 33:946-964).

Per kilogram, reference 65 kg (Kim et al. 2025 control stream, Data S1 model 6):
CL = 5.42 mL/kg/day x (WT/65)^-0.313 x (ALB/4.1 g/dL)^-0.855 x (1 + 0.291 ATI) x (1 - 0.137 IMM),
V1 = 52.4 mL/kg x (WT/65)^-0.233, V2 = 19.6 mL/kg x (WT/65)^-0.588, Q = 2.26 mL/kg/day; here as
totals for a 65 kg patient (CL 0.352 L/day, V1 3.41 L, Q 0.147 L/day, V2 1.27 L) with weight
exponents raised by one (total CL grows as WT^0.687). BSV omega^2 0.0942 (CL), 0.0159 (V1),
0.306 (V2), reported as sqrt(omega^2) = 30.7%, 12.6%, 55.3%; inter-occasion variability on CL,
omega^2 0.0335 (one kappa per dosing interval). Residual error 29.2% proportional plus 0.371 µg/mL
additive.
"""

FASANMADE_2011_PAEDIATRIC = PopulationModel(
    name="fasanmade2011_paediatric",
    aliases=("fasanmade2011_pediatric", "reach", "cd_children"),
    title="Infliximab in paediatric Crohn's disease (REACH, 112 children): Fasanmade et al. 2011",
    population="Crohn's disease, children 6-17 years (REACH, 112)",
    citation=(
        "Fasanmade AA, Adedokun OJ, Blank M, Zhou H, Davis HM. Pharmacokinetic properties of "
        "infliximab in children and adults with Crohn's disease: a retrospective analysis of data "
        "from 2 phase III clinical trials. Clin Ther. 2011;33(7):946-964. "
        "doi:10.1016/j.clinthera.2011.06.002 (paediatric model). Parameter values as in the "
        "NONMEM control stream of Kim Y, Baek SH, Jang IJ, Chung JY. CPT Pharmacometrics Syst "
        "Pharmacol. 2025;14:1682-1694, doi:10.1002/psp4.70089 (Data S1, model 7; Table S2)."
    ),
    source=(
        "Paediatric (REACH) model, per kilogram with reference 42 kg and albumin 3.8 g/dL (Kim "
        "2025 Data S1 model 7): CL (mL/kg/day) = 5.43 (WT/42)^-0.34 (ALB/3.8)^-1.22; V1 (mL/kg) "
        "= 54.2 (WT/42)^-0.171; V2 (mL/kg) = 29.2 (WT/42)^-0.414; Q = 3.52 mL/kg/day; omega^2 "
        "0.064 (CL), 0.027 (V1), 0.122 (V2), printed as sqrt(omega^2) = 25.2%, 16.3%, 34.9%; "
        "residual 27.5% proportional + 0.244 µg/mL additive. The paper's abstract gives CL 5.43 "
        "mL/kg/day for the typical child (42 kg, albumin 3.8 g/dL, no ATI, on an "
        "immunomodulator). No ATI or immunomodulator effect: the typical values are those of "
        "an ATI-negative child on an immunomodulator. Inter-occasion variability on CL, omega^2 "
        "0.048 (sqrt 21.9%), from the same control stream: an occasion is a dosing interval "
        "(pkmodel.pk.occasions)."
    ),
    typical={"cl": 5.43 * 0.042, "v1": 54.2 * 0.042, "q": 3.52 * 0.042, "v2": 29.2 * 0.042},
    reference_covariates={"weight_kg": 42.0, "albumin_g_dl": 3.8},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 1.0 - 0.34, 42.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -1.22, 3.8),
        CovariateEffect("v1", "weight_kg", "power", 1.0 - 0.171, 42.0),
        CovariateEffect("v2", "weight_kg", "power", 1.0 - 0.414, 42.0),
        CovariateEffect("q", "weight_kg", "power", 1.0, 42.0),
    ),
    omega2={"cl": 0.064, "v1": 0.027, "v2": 0.122},
    omega2_iov={"cl": 0.048},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 25.2, "v1": 16.3, "v2": 34.9},
    proportional_sd=0.275,
    additive_sd_ug_ml=0.244,
)
"""Fasanmade et al. 2011, paediatric Crohn's disease model (REACH; Clin Ther 33:946-964).

CL = 5.43 mL/kg/day x (WT/42)^-0.34 x (ALB/3.8 g/dL)^-1.22, V1 = 54.2 mL/kg x (WT/42)^-0.171,
V2 = 29.2 mL/kg x (WT/42)^-0.414, Q = 3.52 mL/kg/day (Kim et al. 2025, Data S1 model 7). BSV
omega^2 0.064, 0.027, 0.122 on CL, V1, V2; inter-occasion variability on CL, omega^2 0.048 (one
kappa per dosing interval). Residual 27.5% proportional + 0.244 µg/mL additive.
"""

WOJCIECHOWSKI_2017 = PopulationModel(
    name="wojciechowski2017",
    aliases=("xu2012", "mould2012"),
    title=("Infliximab in inflammatory bowel disease (pooled children and adults): the model of "
           "Wojciechowski et al. 2017"),
    population=("Inflammatory bowel disease, children and adults (pooled Crohn's disease 112 and "
                "ulcerative colitis 543)"),
    citation=(
        "Wojciechowski J, Upton RN, Mould DR, Wiese MD, Foster DJR. Infliximab maintenance dosing "
        "in inflammatory bowel disease: an example for in silico assessment of adaptive dosing "
        "strategies. AAPS J. 2017;19(4):1136-1147. doi:10.1208/s12248-017-0082-8 (Methods, "
        "population PK model, from a pooled paediatric and adult analysis by Xu, Mould et al. "
        "2012). Parameter values as in the authors' published NONMEM control stream and in Kim "
        "Y et al. CPT Pharmacometrics Syst Pharmacol. 2025;14:1682-1694, doi:10.1002/psp4.70089 "
        "(Data S1, model 10; Table S2)."
    ),
    source=(
        "Typical values at 70 kg, albumin 4 g/dL, ADA-negative: CL 0.294 L/day, V1 3.33 L, "
        "Q 0.0719 L/day, V2 1.14 L; CL x (WT/70)^0.614 x (ALB/4)^-1.17 x (1 + 0.257 ATI); "
        "V1 x (WT/70)^0.691; Q x (WT/70)^1.10; V2 x (WT/70)^0.59; omega^2 0.106929 (CL), "
        "0.0225 (V1), 1.21 (Q), 0.638401 (V2), printed as sqrt(omega^2) = 32.7%, 15.0%, 110%, "
        "79.9%; residual proportional only, SD 0.419. Two public transcriptions agree on every "
        "number (the authors' control stream, Kim 2025 Data S1 model 10) except the ATI form: "
        "1 + 0.257 ATI in the authors' stream (followed here), exp(0.257 ATI) in Kim 2025. The "
        "original pooled analysis (Xu, Mould et al. 2012) was presented as a meeting abstract, "
        "which we could not read."
    ),
    typical={"cl": 0.294, "v1": 3.33, "q": 0.0719, "v2": 1.14},
    reference_covariates={"weight_kg": 70.0, "albumin_g_dl": 4.0, "ati": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 0.614, 70.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -1.17, 4.0),
        CovariateEffect("cl", "ati", "linear", 0.257, 0.0),
        CovariateEffect("v1", "weight_kg", "power", 0.691, 70.0),
        CovariateEffect("q", "weight_kg", "power", 1.10, 70.0),
        CovariateEffect("v2", "weight_kg", "power", 0.59, 70.0),
    ),
    omega2={"cl": 0.106929, "v1": 0.0225, "q": 1.21, "v2": 0.638401},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 32.7, "v1": 15.0, "q": 110.0, "v2": 79.9},
    proportional_sd=0.419,
    additive_sd_ug_ml=0.0,
)
"""Wojciechowski et al. 2017 (AAPS J 19:1136-1147), pooled paediatric and adult IBD model.

CL 0.294 L/day x (WT/70)^0.614 x (ALB/4 g/dL)^-1.17 x (1 + 0.257 ATI), V1 3.33 L x (WT/70)^0.691,
Q 0.0719 L/day x (WT/70)^1.10, V2 1.14 L x (WT/70)^0.59; BSV on all four parameters; proportional
residual error 0.419.
"""

DUBINSKY_2017 = PopulationModel(
    name="dubinsky2017",
    aliases=("dubinsky2017_paediatric", "dubinsky"),
    title="Infliximab in paediatric inflammatory bowel disease (50 children): Dubinsky et al. 2017",
    population="Inflammatory bowel disease, children (Crohn's disease 41, ulcerative colitis 9)",
    citation=(
        "Dubinsky MC, Phan BL, Singh N, Rabizadeh S, Mould DR. Pharmacokinetic dashboard-"
        "recommended dosing is different than standard of care dosing in infliximab-treated "
        "pediatric IBD patients. AAPS J. 2017;19(1):215-222. doi:10.1208/s12248-016-9994-y "
        "(Table II, final model). Parameter values as in Kim Y et al. CPT Pharmacometrics Syst "
        "Pharmacol. 2025;14:1682-1694, doi:10.1002/psp4.70089 (Data S1, model 5; Table S2)."
    ),
    source=(
        "Typical values at 70 kg, albumin 4 g/dL, ADA-negative: CL 0.296 L/day, V1 3.30 L, "
        "V2 1.16 L, Q 0.0781 L/day; CL x (WT/70)^0.612 x (ALB/4)^-2.3 x (1 + 0.231 ATI); "
        "V1 x (WT/70)^0.696; V2 x (WT/70)^0.604; Q x (WT/70)^1.15; omega^2 0.098 (CL), 0.010 "
        "(V1), 1.232 (Q), 0.579 (V2), printed as sqrt(omega^2) = 31.3%, 9.85%, 111%, 76.1%; "
        "residual proportional only, SD 0.419. Two public transcriptions agree (Kim 2025 Data "
        "S1 model 5; an open dosing-dashboard implementation that gives the omegas as SDs)."
    ),
    typical={"cl": 0.296, "v1": 3.30, "q": 0.0781, "v2": 1.16},
    reference_covariates={"weight_kg": 70.0, "albumin_g_dl": 4.0, "ati": 0.0},
    effects=(
        CovariateEffect("cl", "weight_kg", "power", 0.612, 70.0),
        CovariateEffect("cl", "albumin_g_dl", "power", -2.3, 4.0),
        CovariateEffect("cl", "ati", "linear", 0.231, 0.0),
        CovariateEffect("v1", "weight_kg", "power", 0.696, 70.0),
        CovariateEffect("q", "weight_kg", "power", 1.15, 70.0),
        CovariateEffect("v2", "weight_kg", "power", 0.604, 70.0),
    ),
    omega2={"cl": 0.098, "v1": 0.010, "q": 1.232, "v2": 0.579},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 31.3, "v1": 9.85, "q": 111.0, "v2": 76.1},
    proportional_sd=0.419,
    additive_sd_ug_ml=0.0,
)
"""Dubinsky et al. 2017 (AAPS J 19:215-222), paediatric IBD dashboard model.

CL 0.296 L/day x (WT/70)^0.612 x (ALB/4 g/dL)^-2.3 x (1 + 0.231 ATI), V1 3.30 L x (WT/70)^0.696,
V2 1.16 L x (WT/70)^0.604, Q 0.0781 L/day x (WT/70)^1.15; BSV on all four parameters;
proportional residual error 0.419.
"""

AUBOURG_2015 = PopulationModel(
    name="aubourg2015",
    aliases=("aubourg",),
    title="Infliximab in adult Crohn's disease (133 adults): Aubourg et al. 2015",
    population="Crohn's disease, adults (133)",
    citation=(
        "Aubourg A, Picon L, Lecomte T, Bejan-Angoulvant T, Paintaud G, Ternant D. A robust "
        "estimation of infliximab pharmacokinetic parameters in Crohn's disease. Eur J Clin "
        "Pharmacol. 2015;71(12):1541-1542. doi:10.1007/s00228-015-1942-8 (Table 1). Parameter "
        "values as in Kim Y et al. CPT Pharmacometrics Syst Pharmacol. 2025;14:1682-1694, "
        "doi:10.1002/psp4.70089 (Data S1, model 1; Table S2)."
    ),
    source=(
        "Typical values by sex at 60 kg: CL 0.456 L/day (men; 0.019 L/h), 0.336 L/day (women; "
        "0.014 L/h); V1 3.2 L (men), 2.6 L (women), x (WT/60)^0.22; V2 4.5 L; Q 1.992 L/day "
        "(0.083 L/h); omega^2 0.2209 (CL), 0.0729 (V1), printed as sqrt(omega^2) = 47%, 27%; "
        "residual 21% proportional + 2.3 µg/mL additive. Coded with men as the reference and "
        "the women's values as factors (0.336/0.456 on CL, 2.6/3.2 on V1). One public "
        "transcription only (Kim 2025); no ATI effect (no patient was ATI-positive)."
    ),
    typical={"cl": 0.456, "v1": 3.2, "q": 1.992, "v2": 4.5},
    reference_covariates={"weight_kg": 60.0, "female": 0.0},
    effects=(
        CovariateEffect("cl", "female", "categorical", math.log(0.336 / 0.456)),
        CovariateEffect("v1", "female", "categorical", math.log(2.6 / 3.2)),
        CovariateEffect("v1", "weight_kg", "power", 0.22, 60.0),
    ),
    omega2={"cl": 0.2209, "v1": 0.0729},
    cv_convention="sqrt",
    reported_cv_percent={"cl": 47.0, "v1": 27.0},
    proportional_sd=0.21,
    additive_sd_ug_ml=2.3,
)
"""Aubourg et al. 2015 (Eur J Clin Pharmacol 71:1541-1542), adult Crohn's disease.

CL 0.456 L/day (men) or 0.336 L/day (women); V1 3.2 L (men) or 2.6 L (women) x (WT/60 kg)^0.22;
V2 4.5 L; Q 1.992 L/day. BSV omega^2 0.2209 (CL), 0.0729 (V1). Residual 21% proportional plus
2.3 µg/mL additive.
"""

MODELS: dict[str, PopulationModel] = {m.name: m for m in (
    FASANMADE_2009_UC, FASANMADE_2011_CD, FASANMADE_2011_PAEDIATRIC, WOJCIECHOWSKI_2017,
    DUBINSKY_2017, AUBOURG_2015)}


def get_model(name: str | PopulationModel) -> PopulationModel:
    """The published model called ``name`` (case-insensitive; aliases such as ``uc``, ``cd``)."""
    if isinstance(name, PopulationModel):
        return name
    key = str(name).strip().lower().replace("-", "_").replace(" ", "")
    for model in MODELS.values():
        if key == model.name or key in model.aliases:
            return model
    raise SpecificationError(
        f"unknown PK model {name!r}; use one of {', '.join(MODELS)} "
        "(aliases: uc = fasanmade2009, cd = fasanmade2011; `pkmodel pk models` lists them)"
    )
