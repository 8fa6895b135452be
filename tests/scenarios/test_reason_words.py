"""Why a hospital loses a treatment: the optimiser gives codes, numbers and hospital ids
(optimiser/reasons.py), scenarios/reason_words.py writes the sentence in the run's language."""

from __future__ import annotations

import re

import numpy as np
import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser.params import SolveParams
from herschik.optimiser.reasons import REASON_CODES, RoleReason, lost_role_reasons
from herschik.optimiser.solve import solve
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.reason_words import moves_from_text, reason_sentence

from herschik.i18n import use_language

NAMES = {"A": "Ziekenhuis Alfa", "B": "Ziekenhuis Beta", "C": "Gamma Kliniek",
         "D": "Delta", "E": "Epsilon"}

#: English words of the sentences that must not appear in the Dutch ones
ENGLISH = re.compile(r"\b(cannot|reach|norm with|own patients|today|required|keeping|would|"
                     r"cost|optional|moves|patients/yr|from|extra patient|fewer|per year|"
                     r"instead|lose|closed by|no plan|nothing|another|more|and)\b")


def _reason(**fields: object) -> RoleReason:
    base: dict[str, object] = {"site_id": "A", "intervention_id": "t", "own_patients": 12.25,
                               "required": 1500.0, "keep_feasible": True}
    return RoleReason(**{**base, **fields})  # type: ignore[arg-type]


CASES = {
    "moves_and_minutes": _reason(keep_cost_moves=1234.5, keep_cost_patient_min=-2345.4,
                                 keep_moves_from=[("B", 1000.0), ("C", 200.0), ("D", 30.0),
                                                  ("E", 4.5)]),
    "closes_others": _reason(keep_cost_moves=0.0, keep_cost_patient_min=1225.08,
                             keep_closes=["B", "C"]),
    "closes_only": _reason(keep_cost_moves=0.0, keep_cost_patient_min=0.0, keep_closes=["B"]),
    "free": _reason(own_patients=1600.0, keep_cost_moves=0.0, keep_cost_patient_min=-3.0),
    "half_minute": _reason(own_patients=1600.0, keep_cost_moves=0.0,
                           keep_cost_patient_min=0.2),
    "infeasible": _reason(keep_feasible=False, forced_closed=True,
                          infeasible_reason="diagnose-tekst"),
    "infeasible_plain": _reason(keep_feasible=False),
}


def test_codes_say_why_in_order() -> None:
    assert CASES["moves_and_minutes"].codes == ["below_required_alone", "keep_costs"]
    assert CASES["free"].codes == ["keep_costs_nothing"]
    assert CASES["half_minute"].codes == ["keep_costs"]
    assert CASES["closes_only"].codes == ["below_required_alone", "keep_costs"]
    assert CASES["infeasible"].codes == ["closed_by_scenario", "below_required_alone",
                                         "no_plan_keeps"]
    for case in CASES.values():
        assert set(case.codes) <= set(REASON_CODES)
        assert [c for c in REASON_CODES if c in case.codes] == case.codes


def test_english_sentence() -> None:
    with use_language("en"):
        text = reason_sentence(CASES["moves_and_minutes"], NAMES)
        assert text == ("cannot reach the norm with its own patients (12.2/yr today, 1,500.0 "
                        "required); keeping it would cost 1,234.5 optional moves (patients/yr "
                        "from Ziekenhuis Beta 1,000.0, Gamma Kliniek 200.0, Delta 30.0 and 1 "
                        "more) / 2,345 fewer patient-minutes per year")
        assert reason_sentence(CASES["closes_others"], NAMES).endswith(
            "keeping it would cost 1,225 extra patient-minutes per year, and Ziekenhuis Beta, "
            "Gamma Kliniek would lose it instead")
        assert reason_sentence(CASES["closes_only"], NAMES).endswith(
            "keeping it and Ziekenhuis Beta would lose it instead")
        assert reason_sentence(CASES["half_minute"], NAMES) == (
            "keeping it would cost under one extra patient-minute per year")
        assert reason_sentence(CASES["infeasible"], NAMES).startswith(
            "closed by the scenario (force_close); cannot reach")
        assert moves_from_text(CASES["moves_and_minutes"], NAMES).startswith(
            "Ziekenhuis Beta: 1000.0; Gamma Kliniek: 200.0")


@pytest.mark.parametrize("case", sorted(CASES))
def test_dutch_sentence_has_no_english(case: str) -> None:
    with use_language("nl"):
        text = reason_sentence(CASES[case], NAMES)
    with use_language("en"):
        english = reason_sentence(CASES[case], NAMES)
    assert text and text != english
    assert ENGLISH.search(text) is None, text
    for site in CASES[case].keep_closes + [s for s, _ in CASES[case].keep_moves_from[:3]]:
        assert NAMES[site] in text  # hospitals by name, never by id
    if case == "moves_and_minutes":
        assert "1.234,5 vermijdbare verplaatsingen" in text and "12,2/jr" in text
        assert "2.345 patiëntminuten per jaar minder" in text and "en nog 1" in text


def test_real_reasons_are_codes_numbers_and_ids() -> None:
    """midden, kidney_systemic: two hospitals lose it; the optimiser's reasons hold ids only,
    and the sentence names them in either language."""
    full = build_instance(load_dataset(None), "midden")
    instance = full.with_treatments([full.treatment_ids.index("kidney_systemic")])
    params = SolveParams()
    solution = solve(instance, params)
    reasons = lost_role_reasons(instance, params, solution)
    assert solution.keep is not None
    lost = {instance.site_ids[s] for s in np.nonzero(
        (instance.baseline_volume[:, 0] > 0) & ~solution.keep[:, 0])[0]}
    assert {r.site_id for r in reasons} == lost and len(lost) == 2
    names = {site.id: site.name for site in instance.sites}
    for r in reasons:
        assert r.codes[-1] in ("keep_costs", "no_plan_keeps", "keep_costs_nothing")
        assert set(r.keep_closes) | {s for s, _ in r.keep_moves_from} <= set(instance.site_ids)
        for lang in ("en", "nl"):
            with use_language(lang):
                text = reason_sentence(r, names)
            for site in r.keep_closes:
                assert names[site] in text and site not in text
        if r.below_required_alone:
            assert r.codes[0] == "below_required_alone"
            assert r.own_patients < r.required
