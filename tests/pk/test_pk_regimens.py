"""Regimen value type, parser, named regimens and dosing schedules with a switch."""

from __future__ import annotations

import numpy as np
import pytest

from pkmodel.errors import SpecificationError
from pkmodel.pk import NAMED_REGIMENS, DoseSchedule, Regimen, parse_regimen


@pytest.mark.parametrize(("text", "expected"), [
    ("10mg/kg q8w", Regimen(10, 8)),
    ("5 mg/kg q4w", Regimen(5, 4)),
    ("5 MG/KG Q6W", Regimen(5, 6)),
    ("7.5 mg/kg every 6 weeks", Regimen(7.5, 6)),
    ("5mg/kg q8wk over 1h", Regimen(5, 8, infusion_hours=1)),
    ("5 mg/kg q8w 30 min", Regimen(5, 8, infusion_hours=0.5)),
    ("standard", Regimen(5, 8)),
    ("escalation", Regimen(10, 8)),
])
def test_parser_reads_the_usual_forms(text, expected):
    assert parse_regimen(text) == expected


@pytest.mark.parametrize("text", ["", "10 q8w", "10mg q8w", "10mg/kg", "mg/kg q8w",
                                  "-5mg/kg q8w", "5mg/kg q0w", "5mg/kg q8d", "100mg/kg q8w"])
def test_parser_refuses_other_text_with_the_accepted_forms(text):
    with pytest.raises(SpecificationError, match=r"mg/kg|must be"):
        parse_regimen(text)


def test_named_regimens_are_the_usual_ones():
    labels = {r.label for r in NAMED_REGIMENS.values()}
    assert labels == {"5 mg/kg q8w", "10 mg/kg q8w", "5 mg/kg q6w", "5 mg/kg q4w",
                      "10 mg/kg q4w"}
    standard = NAMED_REGIMENS["standard"]
    assert standard.induction_weeks == (0, 2, 6) and standard.infusion_hours == 2


def test_schedule_has_induction_then_maintenance():
    s = DoseSchedule.from_regimen("5mg/kg q8w", until_week=40)
    np.testing.assert_allclose(s.times_days / 7, [0, 2, 6, 14, 22, 30, 38])
    np.testing.assert_allclose(s.amounts_mg(70.0), 350.0)
    assert s.amounts_mg(np.array([50.0, 100.0])).shape == (2, 7)


def test_switch_keeps_history_and_starts_the_new_regimen():
    s = DoseSchedule.from_regimen("5mg/kg q8w", until_week=54).switched(
        "10mg/kg q4w", at_day=30 * 7, n_doses=3)
    np.testing.assert_allclose(s.times_days / 7, [0, 2, 6, 14, 22, 30, 34, 38])
    np.testing.assert_allclose(s.amounts, [5, 5, 5, 5, 5, 10, 10, 10])
    mg = DoseSchedule([0, 56], [350, 350], 1 / 12, per_kg=False)
    with pytest.raises(SpecificationError, match="weight_kg"):
        mg.switched("10mg/kg q4w", at_day=112, n_doses=2)
    np.testing.assert_allclose(mg.switched("10mg/kg q4w", at_day=112, n_doses=2,
                                           weight_kg=70).amounts, [350, 350, 700, 700])


def test_invalid_regimens_and_schedules_are_refused():
    with pytest.raises(SpecificationError):
        Regimen(5, 8, induction_weeks=(0, 6, 2))
    with pytest.raises(SpecificationError):
        Regimen(5, 8, infusion_hours=0)
    with pytest.raises(SpecificationError, match="increasing"):
        DoseSchedule([10, 0], [5, 5], 1 / 12)
    with pytest.raises(SpecificationError, match="positive"):
        DoseSchedule([0, 10], [5, 0], 1 / 12)
