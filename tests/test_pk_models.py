"""Published parameter sets: typical values, covariate effects, troughs against the papers."""

from __future__ import annotations

import numpy as np
import pytest

from pkmodel.errors import SpecificationError
from pkmodel.pk import (
    FASANMADE_2009_UC,
    FASANMADE_2011_CD,
    MODELS,
    NAMED_REGIMENS,
    Regimen,
    get_model,
    steady_state_troughs,
)


def test_fasanmade_2009_reference_patient_has_the_published_typical_values():
    p = FASANMADE_2009_UC.individual_parameters(
        {"weight_kg": 77, "albumin_g_dl": 4.1, "ati": 0, "female": 0})
    # abstract: CL 0.407 L/day, V1 3.29 L, V2 4.13 L, Q 7.14 L/day; BSV 37.7% CL, 22.1% V1
    assert (float(p.cl), float(p.v1), float(p.v2), float(p.q)) == (0.407, 3.29, 4.13, 7.14)
    cv = FASANMADE_2009_UC.bsv_cv_percent()
    assert cv["cl"] == pytest.approx(37.7, abs=0.5) and cv["v1"] == pytest.approx(22.1, abs=0.5)
    assert float(p.half_life_days()) == pytest.approx(14, abs=1.5)  # "t1/2 about 14 days"


def test_covariates_move_parameters_in_the_published_directions():
    m = FASANMADE_2009_UC
    low = m.individual_parameters({"albumin_g_dl": 3.0})
    high = m.individual_parameters({"albumin_g_dl": 4.5})
    assert low.cl > high.cl  # clearance falls as albumin rises
    ati = m.individual_parameters({"ati": 1})
    assert float(ati.cl) == pytest.approx(0.407 * 1.471)
    heavy = m.individual_parameters({"weight_kg": 110})
    assert heavy.v1 > m.individual_parameters({"weight_kg": 60}).v1
    cd = FASANMADE_2011_CD
    assert float(cd.individual_parameters({"weight_kg": 65}).cl) == pytest.approx(5.42 * 0.065)
    child = cd.individual_parameters({"weight_kg": 30})
    assert float(child.cl) / 30 < 5.42e-3  # per-kg clearance lower in lighter patients
    assert float(cd.individual_parameters({"immunomodulator": 1}).cl) == pytest.approx(
        0.3523 * 0.863)


def test_every_model_cites_paper_table_and_units_and_is_found_by_name():
    for model in MODELS.values():
        assert "doi:" in model.citation
        assert "Table" in model.source or "Methods" in model.source
        assert get_model(model.name.upper()) is model
    assert get_model("uc") is FASANMADE_2009_UC and get_model("cd") is FASANMADE_2011_CD
    with pytest.raises(SpecificationError, match="unknown PK model"):
        get_model("dotan2014")


def test_fasanmade_2009_typical_trough_and_population_spread_are_plausible():
    # Typical values alone at 70 kg: about 2.3 µg/mL under 5 mg/kg q8w (design.md section 6,
    # an ODE integration with the paper's typical values). With the full covariate model at the
    # paper's reference patient (77 kg, albumin 4.1 g/dL, male, ATI-negative):
    typical = steady_state_troughs(FASANMADE_2009_UC, ["5mg/kg q8w"], {"weight_kg": 77})
    assert float(typical.squeeze()) == pytest.approx(2.6, abs=0.3)
    # A UC-like population (median 77 kg, albumin 4.1 +- 0.4 g/dL, 39% female, 7% ATI: the
    # paper's cohort description): the spread must be wide but not absurd.
    rng = np.random.default_rng(2009)
    n = 4000
    cov = {"weight_kg": rng.lognormal(np.log(77), 0.22, n),
           "albumin_g_dl": np.clip(rng.normal(4.1, 0.4, n), 2.0, 5.5),
           "female": (rng.random(n) < 0.392).astype(float),
           "ati": (rng.random(n) < 0.068).astype(float)}
    da = steady_state_troughs(FASANMADE_2009_UC, list(NAMED_REGIMENS.values()), cov,
                              n_draws=1, random_seed=1)
    med = da.median(["patient", "draw"])
    q8w = da.sel(regimen="5 mg/kg q8w").values.ravel()
    assert 1.5 < float(med.sel(regimen="5 mg/kg q8w")) < 4.0
    q25, q75 = np.quantile(q8w, [0.25, 0.75])
    assert 2.0 < q75 / q25 < 10.0
    assert 0.1 < np.mean(q8w >= 5) < 0.5
    order = ["5 mg/kg q8w", "10 mg/kg q8w", "5 mg/kg q6w", "5 mg/kg q4w", "10 mg/kg q4w"]
    assert np.all(np.diff(med.sel(regimen=order).values) > 0)


# Frymoyer et al. 2017 (J Pediatr Gastroenterol Nutr 65:639-645) Table 3: predicted steady-state
# trough (median, IQR, µg/mL) and percent of patients above 3 µg/mL in 34 children with Crohn's
# disease under the Fasanmade 2011 model (as transcribed in the nlmixr2lib vignette).
FRYMOYER_TABLE_3 = {
    (5, 8): (2.2, 1.2, 3.4, 32), (5, 6): (4.8, 3.0, 7.1, 74), (5, 4): (11.5, 8.4, 15.6, 94),
    (7.5, 8): (3.3, 1.8, 5.1, 62), (7.5, 6): (7.2, 4.5, 10.6, 79),
    (7.5, 4): (17.3, 12.7, 23.4, 94), (10, 8): (4.4, 2.4, 6.8, 71),
    (10, 6): (9.5, 6.0, 14.2, 82), (10, 4): (23.0, 16.9, 31.2, 94),
}


def test_fasanmade_2011_troughs_match_frymoyer_2017_table_3():
    # A virtual cohort like Frymoyer 2017 Table 1: median 53 kg, albumin 4.3 g/dL (3.4-4.8),
    # 12% ATI, 44% on an immunomodulator.
    rng = np.random.default_rng(2017)
    n = 4000
    cov = {"weight_kg": np.clip(rng.lognormal(np.log(53), 0.3, n), 22, 120),
           "albumin_g_dl": np.clip(rng.normal(4.3, 0.35, n), 3.4, 4.8),
           "ati": (rng.random(n) < 0.12).astype(float),
           "immunomodulator": (rng.random(n) < 0.44).astype(float)}
    regimens = [Regimen(d, w) for d, w in FRYMOYER_TABLE_3]
    da = steady_state_troughs(FASANMADE_2011_CD, regimens, cov, n_draws=1, random_seed=3)
    for reg, (median, q25, q75, _pct3) in zip(regimens, FRYMOYER_TABLE_3.values(), strict=True):
        values = da.sel(regimen=reg.label).values.ravel()
        assert np.median(values) == pytest.approx(median, rel=0.2), reg.label
        lo, hi = np.quantile(values, [0.25, 0.75])
        assert lo < median < hi and lo < q75 and hi > q25  # the IQRs overlap
    q8w = da.sel(regimen="5 mg/kg q8w").values.ravel()
    assert 100 * np.mean(q8w > 3) == pytest.approx(32, abs=10)
