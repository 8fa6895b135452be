"""The sweep's runs table: one tidy row per run (parameters, status, KPIs), written as
runs.csv and runs.parquet."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from herschik.optimiser.kpis import DISPLACED_KPIS, NORM_ODDS_KPIS, SCALAR_KPIS
from herschik.scenarios.sweep.task import SweepTask

from herschik.atomic import atomic_path, write_csv

#: Resolved scalar parameters reported per run (column name -> SolveParams/scenario field).
PARAM_COLUMNS: dict[str, str] = {
    "margin": "margin",
    "norm_confidence": "norm_confidence",
    "norm_period_years": "norm_period_years",
    "max_travel": "max_travel",
    "max_extra_travel": "max_extra_travel",
    "capacity_factor": "capacity_factor",
    "max_loss_share": "max_loss_share",
    "single_sourcing": "single_sourcing",
    "allow_new_providers": "allow_new_providers",
    "objective": "objective",
    "solver": "solver",
    "time_limit": "time_limit",
    "mip_gap_limit": "mip_gap",
    "base_year": "base_year",
    "target_year": "target_year",
    "growth_pct_per_year": "growth_pct_per_year",
    "norm_multiplier": "norm_multiplier",
}

#: Scalar KPIs of summary.json, in this order (others found in summaries follow, sorted).
KPI_COLUMNS: tuple[str, ...] = SCALAR_KPIS + DISPLACED_KPIS + NORM_ODDS_KPIS

#: Wall-clock columns: they differ between otherwise identical runs.
TIMING_COLUMNS: tuple[str, ...] = ("build_seconds", "solve_seconds")


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_row(
    task: SweepTask, summary: dict[str, Any] | None, error: str | None, out_dir: Path
) -> dict[str, Any]:
    """One row of runs.csv: the run's parameters, then its results (the column order is the
    order of the keys)."""
    row = _parameter_columns(task)
    if summary is None:
        row["status"] = "error"
        row["error"] = error or "unknown error"
        row["run_dir"] = ""
        return row
    row["status"] = summary.get("status")
    row["objective_value"] = _scalar(summary.get("objective"))
    row["mip_gap"] = _scalar(summary.get("mip_gap"))
    row["build_seconds"] = summary.get("build_seconds")
    row["solve_seconds"] = summary.get("solve_seconds")
    kpis = summary.get("kpis") or {}
    row.update(_kpi_columns(kpis))
    for side in ("before", "after", "lost", "gained"):
        counts = kpis.get(f"providers_{side}")
        row[f"providers_{side}_total"] = (
            int(sum(counts.values())) if isinstance(counts, dict) else None
        )
    diagnosis = summary.get("diagnosis")
    row["diagnosis"] = (
        " ".join(str(diagnosis.get("reason", "")).split()) if isinstance(diagnosis, dict) else ""
    )
    violations = (summary.get("verification") or {}).get("violations")
    row["violations"] = len(violations) if isinstance(violations, list) else None
    row["error"] = ""
    row["run_dir"] = str(Path(task.run_dir).relative_to(out_dir))
    return row


def _parameter_columns(task: SweepTask) -> dict[str, Any]:
    """Identity, grid point and solve parameters of one run."""
    scenario = task.scenario
    row: dict[str, Any] = {
        "run_id": task.run_id,
        "region_id": task.region_id,
        "scenario": scenario.name,
        "scenario_index": scenario.index,
        "scenario_file": scenario.base_name,
    }
    for key, value in scenario.grid_point.items():
        if key not in PARAM_COLUMNS and key not in PARAM_COLUMNS.values():
            row[key] = value
    for column, field in PARAM_COLUMNS.items():
        source = scenario.params if field in type(scenario.params).model_fields else scenario.model
        row[column] = getattr(source, field)
    row["closures"] = ";".join(scenario.closures)
    return row


def _kpi_columns(kpis: dict[str, Any]) -> dict[str, Any]:
    """The KPI columns: the fixed ones first, then every other scalar KPI by name (a dict of
    scalars, e.g. shared_care, flattened as ``<kpi>_<key>``)."""
    row = {key: _scalar(kpis.get(key)) for key in KPI_COLUMNS}
    for key in sorted(kpis):
        value = kpis[key]
        if key in KPI_COLUMNS or key.startswith("providers_") or key == "per_treatment":
            continue
        if isinstance(value, (int, float, bool, str)):
            row[key] = _scalar(value)
        elif isinstance(value, dict):
            for sub, item in value.items():
                if isinstance(item, (int, float, bool, str)):
                    row[f"{key}_{sub}"] = _scalar(item)
    return row


def runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    # status and results after parameters; error and run_dir last
    tail = ["error", "run_dir"]
    columns = [c for c in columns if c not in tail] + [c for c in tail if c in columns]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame = frame.sort_values(["region_id", "scenario_index"], kind="stable")
        frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column].dropna()
            if len(values) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
            ):
                frame[column] = pd.to_numeric(frame[column])
    return frame


def write_runs_tables(frame: pd.DataFrame, out_dir: Path) -> None:
    write_csv(out_dir / "runs.csv", frame)
    table = frame.copy()
    for column in table.columns:
        if table[column].dtype == object:  # mixed objects: store as text (None stays null)
            table[column] = table[column].map(
                lambda v: v if v is None or isinstance(v, str) else str(v)
            )
    with atomic_path(out_dir / "runs.parquet") as tmp:
        table.to_parquet(tmp, index=False)


