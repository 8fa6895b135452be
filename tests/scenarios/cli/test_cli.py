"""End to end: the `herschik` command on the built-in example region, per docs/CLI.md."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from herschik.geo.dataset import load_dataset
from herschik.optimiser.params import SolveParams
from herschik.optimiser.verify import verify
from herschik.scenarios.assemble import build_instance
from herschik.scenarios.cli.main import main

from herschik import columns, geo
from tests.support.result_tables import solution_from_tables

SITE_VOLUME_COLUMNS = [
    "region_id",
    "site_id",
    "site_name",
    "intervention_id",
    "norm",
    "required_min",
    "volume_before",
    "volume_after",
    "kept_before",
    "kept_after",
    "p_meet_norm_1y",
    "p_meet_norm_period",
]
ASSIGNMENT_COLUMNS = [
    "region_id",
    "area_id",
    "area_name",
    "intervention_id",
    "site_id",
    "site_name",
    "patients",
    "travel_min",
    "travel_min_before",
    "extra_min",
]
KPI_KEYS = {
    "patients",
    "patients_moved",
    "mean_travel_min_before",
    "mean_travel_min_after",
    "mean_extra_min",
    "p90_extra_min",
    "max_extra_min",
    "max_travel_min_after",
    "providers_before",
    "providers_after",
}


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("cli") / "example"
    code = main(
        [
            "solve",
            "--region",
            "example",
            "--out",
            str(out),
            "--margin",
            "0.1",
            "--max-travel",
            "90",
            "--no-maps",
            "--no-report",
        ]
    )
    return code, out


def test_solve_example_writes_contract_files(example_run: tuple[int, Path]) -> None:
    code, out = example_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["contract"] == 1
    assert summary["region_id"] == "example"
    assert summary["status"] in ("optimal", "feasible")
    assert summary["solver"] == "highs"
    assert summary["baseline"] == "illustrative"
    assert summary["scenario"]["margin"] == 0.1
    assert summary["scenario"]["max_travel"] == 90
    assert KPI_KEYS <= set(summary["kpis"])
    assert summary["diagnosis"] is None
    site_volumes = pd.read_csv(out / "site_volumes.csv")
    assignments = pd.read_csv(out / "assignments.csv")
    # the contract's columns first, in its order; herschik's extensions after them
    assert list(site_volumes.columns)[:len(SITE_VOLUME_COLUMNS)] == SITE_VOLUME_COLUMNS
    assert list(assignments.columns)[:len(ASSIGNMENT_COLUMNS)] == ASSIGNMENT_COLUMNS
    assert list(site_volumes.columns) == columns.SITE_VOLUME_COLUMNS
    assert list(assignments.columns) == columns.ASSIGNMENT_COLUMNS
    # 6 sites x 19 treatments (18 with a volume norm, lung_systemic without: norm empty)
    assert len(site_volumes) == 6 * 19
    no_norm = site_volumes[site_volumes["norm"].isna()]
    assert set(no_norm["intervention_id"]) == {"lung_systemic"}
    assert no_norm["required_min"].isna().all()
    assert (assignments["area_name"].astype(str).str.len() > 0).all()
    assert (assignments["site_name"].astype(str).str.len() > 0).all()
    assert (assignments["patients"] > 0).all()
    assert (assignments["travel_min"] <= 90 + 1e-9).all()
    kept = site_volumes[site_volumes["kept_after"]]
    normed = kept[kept["norm"].notna()]
    assert (normed["volume_after"] >= normed["required_min"] - 1e-4).all()
    assert site_volumes["required_min"].round(6).equals((site_volumes["norm"] * 1.1).round(6))
    assert not list(out.parent.glob(".example.staging-*"))


def test_written_files_pass_the_independent_recheck(example_run: tuple[int, Path]) -> None:
    _, out = example_run
    summary = json.loads((out / "summary.json").read_text())
    instance = build_instance(load_dataset("example"), "example")
    params = SolveParams(margin=0.1, max_travel=90)
    solution = solution_from_tables(
        instance, pd.read_csv(out / "site_volumes.csv"), pd.read_csv(out / "assignments.csv")
    )
    assert verify(solution, instance, params, summary["kpis"]) == []
    assert summary["verification"]["violations"] == []


def test_impossible_margin_exits_1_with_diagnosis(tmp_path: Path) -> None:
    out = tmp_path / "impossible"
    code = main(
        [
            "solve",
            "--region",
            "example",
            "--out",
            str(out),
            "--margin",
            "20",
            "--no-maps",
            "--no-report",
        ]
    )
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    # treatments without a norm still have a plan: a partial plan (exit 1 all the same)
    assert summary["status"] == "partially_infeasible"
    assert summary["diagnosis"]["reason"]


def test_unknown_region_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["solve", "--region", "atlantis", "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "atlantis" in err[0]
    assert not (tmp_path / "x").exists()


def test_negative_margin_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["solve", "--region", "example", "--out", str(tmp_path / "x"), "--margin", "-1"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "margin" in err[0]


def test_same_input_same_output(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            main(
                [
                    "solve",
                    "--region",
                    "example",
                    "--out",
                    str(out),
                    "--objective",
                    "providers",
                    "--no-maps",
                    "--no-report",
                ]
            )
            == 0
        )
        outs.append(out)
    for name in ("site_volumes.csv", "assignments.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    first, second = (json.loads((o / "summary.json").read_text()) for o in outs)
    for summary in (first, second):
        for key in ("build_seconds", "solve_seconds", "subproblems"):
            summary.pop(key, None)
    assert first == second


def test_cbc_gives_the_same_objective(tmp_path: Path) -> None:
    objectives = []
    for solver in ("highs", "cbc"):
        out = tmp_path / solver
        assert (
            main(
                [
                    "solve",
                    "--region",
                    "example",
                    "--out",
                    str(out),
                    "--solver",
                    solver,
                    "--margin",
                    "0.25",
                    "--no-maps",
                    "--no-report",
                ]
            )
            == 0
        )
        objectives.append(json.loads((out / "summary.json").read_text())["objective"])
    # planner: unnecessary moves (patients), ~0 up to solver tolerance with both solvers
    assert objectives[0] == pytest.approx(objectives[1], rel=1e-3, abs=1e-4)


def test_regions_json_and_example_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example_dir = Path(geo.__file__).parent / "data" / "example"
    assert main(["regions", "--json", "--data", str(example_dir)]) == 0
    regions = json.loads(capsys.readouterr().out)
    assert [r["region_id"] for r in regions] == ["example"]
    assert regions[0]["areas"] == 40 and regions[0]["sites"] == 6
    out = tmp_path / "matrix.csv"
    assert main(["matrix", "--region", "example", "--out", str(out)]) == 0
    matrix = pd.read_csv(out)
    assert list(matrix.columns) == ["area_id", "site_id", "minutes"]
    assert len(matrix) == 40 * 6 and (matrix["minutes"] > 0).all()


def test_regions_of_the_national_default(capsys: pytest.CaptureFixture[str]) -> None:
    expected = [
        "noordoost",
        "noord_holland_flevoland",
        "oost",
        "midden",
        "west",
        "zuidwest",
        "zuidoost",
    ]
    for areas, total in (("districts", 3340), ("municipalities", 345)):
        assert main(["regions", "--json", "--areas", areas]) == 0
        regions = json.loads(capsys.readouterr().out)
        assert [r["region_id"] for r in regions] == expected
        assert sum(r["areas"] for r in regions) == total
        assert all(r["sites"] > 0 and r["patients_per_year"] > 0 for r in regions)


def test_a_national_region_solves_at_municipality_level(tmp_path: Path) -> None:
    out = tmp_path / "west"
    assert (
        main(
            [
                "solve",
                "--region",
                "west",
                "--areas",
                "municipalities",
                "--out",
                str(out),
                "--no-maps",
                "--no-report",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "optimal" and summary["network"] == "default"
    assert summary["verification"]["violations"] == []
    # West's endoscopic resections are below the norm region-wide: one provider, flagged
    assert summary["kpis"]["providers_after"]["og_endoscopic"] == 1
    assert any("og_endoscopic" in w for w in summary["warnings"])


def test_export_then_data_round_trips_to_identical_results(tmp_path: Path) -> None:
    exported = tmp_path / "dataset"
    assert main(["data", "export", "--areas", "municipalities", "--out", str(exported)]) == 0
    outs = {}
    for name, source in (
        ("embedded", ["--areas", "municipalities"]),
        ("exported", ["--data", str(exported)]),
    ):
        outs[name] = tmp_path / name
        assert (
            main(
                [
                    "solve",
                    "--region",
                    "midden",
                    "--out",
                    str(outs[name]),
                    "--no-maps",
                    "--no-report",
                    *source,
                ]
            )
            == 0
        )
    for file in ("site_volumes.csv", "assignments.csv"):
        assert (outs["embedded"] / file).read_bytes() == (outs["exported"] / file).read_bytes()


def test_matrix_of_a_national_region(tmp_path: Path) -> None:
    out = tmp_path / "west.csv"
    assert main(["matrix", "--region", "west", "--out", str(out)]) == 0
    matrix = pd.read_csv(out)
    dataset = load_dataset()
    west_areas = set(dataset.areas.loc[dataset.areas["region_id"] == "west", "area_id"])
    west_sites = set(dataset.sites.loc[dataset.sites["region_id"] == "west", "site_id"])
    assert set(matrix["area_id"]) == west_areas
    assert west_sites <= set(matrix["site_id"])  # plus sites just across the border
    assert len(matrix) == len(west_areas) * matrix["site_id"].nunique()
    # every area reaches its nearest site by car within an hour on the default network
    assert matrix.groupby("area_id")["minutes"].min().max() < 60
