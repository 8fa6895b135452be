"""One status quo at every area level (issue 22 A).

Today's providers and volumes are one fact per site and treatment; districts and
municipalities only change where patients come from. Before the fix the municipality dataset
had its own generated baseline: 210 site x treatment rows changed provider and 769 changed
volume between the levels over the seven regions.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from herschik.geo.area_levels import coarsen_dataset
from herschik.geo.dataset import load_dataset
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.cli.main import main

from herschik.errors import DataError


@pytest.fixture(scope="module")
def levels():
    return load_dataset(None), load_dataset("municipalities")


def test_status_quo_identical_at_both_area_levels_in_all_seven_regions(levels) -> None:
    districts, municipalities = levels
    assert len(districts.region_ids()) == 7
    for region in districts.region_ids():
        fine = build_instance(districts, region)
        coarse = build_instance(municipalities, region)
        assert [s.id for s in fine.sites] == [s.id for s in coarse.sites]
        assert len(coarse.area_ids) < len(fine.area_ids)
        np.testing.assert_array_equal(fine.baseline_volume > 0, coarse.baseline_volume > 0,
                                      err_msg=f"{region}: providers differ")
        inflow_fine = fine.baseline_flow.sum(axis=0)
        inflow_coarse = coarse.baseline_flow.sum(axis=0)
        assert np.abs(inflow_fine - inflow_coarse).max() <= 0.01, region
        # each site's inflow is its volume (the flows are derived from the one status quo)
        assert np.abs(inflow_fine - fine.baseline_volume).max() <= 1e-6, region
        assert np.abs(inflow_coarse - coarse.baseline_volume).max() <= 1e-6, region
        # and every area's patients are all treated somewhere today
        np.testing.assert_allclose(coarse.baseline_flow.sum(axis=1), coarse.demand, atol=1e-6)


def test_municipality_demand_is_the_district_demand_summed(levels) -> None:
    districts, municipalities = levels
    by_muni = districts.demand.merge(districts.areas[["area_id", "municipality_code"]]) \
        .groupby(["municipality_code", "intervention_id"])["patients"].sum()
    got = municipalities.demand.set_index(["area_id", "intervention_id"])["patients"]
    np.testing.assert_allclose(got.sort_index().to_numpy(),
                               by_muni.rename_axis(got.index.names).sort_index().to_numpy(),
                               atol=1e-4)
    assert municipalities.baseline_volumes.equals(districts.baseline_volumes)


def test_coarsening_refuses_an_area_of_another_region(levels) -> None:
    districts, municipalities = levels
    areas = municipalities.areas.copy()
    first = districts.areas["municipality_code"].iloc[0]
    other = next(r for r in districts.region_ids() if r != districts.areas["region_id"].iloc[0])
    areas.loc[areas["area_id"] == first, "region_id"] = other
    with pytest.raises(DataError) as error:
        coarsen_dataset(districts, areas, None, "municipality_code")
    assert error.value.field == "region_id" and "region" in error.value.message


def _cli_volumes(out: Path) -> dict[tuple[str, str], float]:
    with (out / "site_volumes.csv").open(encoding="utf-8") as handle:
        return {(r["site_id"], r["intervention_id"]): float(r["volume_before"])
                for r in csv.DictReader(handle) if r["kept_before"] in ("True", "true")}


def test_app_and_cli_show_the_same_today(levels, tmp_path: Path) -> None:
    """The app (municipalities, its default) and `solve` (districts, its default) agree."""
    from herschik.scenarios.app.session import AppState, PlanSettings

    _, municipalities = levels
    assert main(["solve", "--region", "midden", "--out", str(tmp_path / "cli")]) == 0
    cli = _cli_volumes(tmp_path / "cli")
    state = AppState(municipalities, out_dir=tmp_path / "app", source_args=[],
                     areas_label="municipalities", first_region="midden")
    plan = state.solve(PlanSettings(region_id="midden"))
    app = {(r["site_id"], r["intervention_id"]): r["volume_before"]
           for r in plan["plan"]["hospitals"] if r["volume_before"] and r["volume_before"] > 0}
    assert set(app) == set(cli)
    assert max(abs(app[k] - cli[k]) for k in cli) <= 0.01
