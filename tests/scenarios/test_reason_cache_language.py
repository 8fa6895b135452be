"""Lost-role reasons are kept per language (optimiser/reasons.py's memo, scenarios/
reason_cache.py's derived-data cache): a role that no plan keeps carries the diagnosis of its
forced solve, a sentence in the language of the run, so a Dutch run never gets an English
diagnosis that an English run (another process, or the app before a language switch) kept
(review of 2026-12-07)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser.instance import Instance
from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.optimiser.reasons import lost_role_reasons
from herschik.optimiser.solve import solve
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.reason_cache import DERIVED_REASONS

from herschik.i18n import use_language


@pytest.fixture(scope="module")
def midden() -> Instance:
    return build_instance(load_dataset(None), "midden")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERSCHIK_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HERSCHIK_CACHE", raising=False)
    return tmp_path


def _capped(instance: Instance) -> tuple[SolveParams, object]:
    """Midden with a treatment's kept hospitals forced and capped at their number: keeping
    any of its lost roles is infeasible (a diagnosis for each)."""
    params = SolveParams()
    plan = solve(instance, params)
    assert plan.keep is not None
    lost = lost_role_reasons(copy.deepcopy(instance), params, plan)
    assert lost
    treatment = lost[0].intervention_id
    t = instance.treatment_ids.index(treatment)
    kept = [site for s, site in enumerate(instance.site_ids) if plan.keep[s, t]]
    capped = SolveParams(max_providers={treatment: len(kept)},
                         force_keep=[SiteTreatment(site_id=s, intervention_id=treatment)
                                     for s in kept])
    return capped, solve(instance, capped)


def _diagnoses(reasons: list) -> list[str]:
    return [r.infeasible_reason for r in reasons if r.infeasible_reason]


def test_a_dutch_run_gets_dutch_diagnoses_after_an_english_one(midden: Instance,
                                                                cache: Path) -> None:
    params, plan = _capped(midden)
    with use_language("nl"):  # without any memo or store: what a Dutch run says
        dutch = _diagnoses(lost_role_reasons(copy.deepcopy(midden), params, plan))
    with use_language("en"):
        english = _diagnoses(lost_role_reasons(copy.deepcopy(midden), params, plan,
                                               store=DERIVED_REASONS))
    assert dutch and english and dutch != english
    with use_language("nl"):  # another process: a fresh instance, the same cache
        assert _diagnoses(lost_role_reasons(copy.deepcopy(midden), params, plan,
                                            store=DERIVED_REASONS)) == dutch
    # one process (the app's language switch): the same instance object both times
    same = copy.deepcopy(midden)
    with use_language("en"):
        assert _diagnoses(lost_role_reasons(same, params, plan)) == english
    with use_language("nl"):
        assert _diagnoses(lost_role_reasons(same, params, plan)) == dutch
