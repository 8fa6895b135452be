"""``herschik simulate RUN_DIR --years N --seed S [--overdispersion PHI] [--out DIR]``.

Reads a result folder (``summary.json``, ``assignments.csv``, ``site_volumes.csv``: the plan's
expected patients per area and hospital, the norms), draws ``N`` years of demand per area
around the plan's expected demand (the scenario's growth applied, as the solve used it) and
routes them by the plan's shares (optimiser/simulation.py), then writes to ``DIR`` (default
``RUN_DIR/simulation``; a folder herschik did not write is never replaced):

* ``simulation.csv``: per kept hospital x treatment the expected volume, the simulated mean,
  standard deviation and quantiles, the share of years (and of ``norm_period_years`` blocks)
  below the norm, and the exact Poisson odds of meeting it for comparison;
* ``simulation.json``: the settings (years, seed, over-dispersion, period) and the model;
* ``fan_<treatment>.png``: the simulated yearly volume bands of each kept hospital.

Same folder, years, seed and over-dispersion -> the same bytes.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.maps import slug
from herschik.optimiser.confidence import p_meet_norm
from herschik.optimiser.simulation import (
    CHUNK_YEARS,
    QUANTILES,
    PlanRoutes,
    simulate_volumes,
    summarise,
)
from herschik.scenarios.report.charts import fan_chart_png

from herschik.atomic import staged_dir, write_bytes, write_csv, write_json
from herschik.errors import UsageError

#: the most simulated years (memory: years x hospitals integers per treatment)
MAX_YEARS = 1_000_000

SIMULATION_COLUMNS: tuple[str, ...] = (
    "region_id", "site_id", "site_name", "intervention_id", "norm", "expected_volume",
    "mean", "std", *QUANTILES, "share_years_below_norm", "share_periods_below_norm",
    "p_meet_norm_1y", "p_meet_norm_period",
)


@dataclass(frozen=True)
class SimulationResult:
    """The per-hospital table and, per treatment, the simulated volumes (years, sites)."""

    table: pd.DataFrame
    volumes: dict[str, np.ndarray]
    site_labels: dict[str, list[str]]
    settings: dict[str, Any]


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"{path.parent}: not a result folder of a solved plan (no {path.name})")
    try:
        frame = pd.read_csv(path, dtype={"site_id": str, "intervention_id": str, "area_id": str,
                                         "region_id": str})
    except (ValueError, OSError) as error:
        raise UsageError(f"{path}: not readable as CSV ({str(error).splitlines()[0]})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def load_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a folder")
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a result folder (no summary.json)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(summary, dict):
        raise UsageError(f"{path}: not a summary (a JSON object expected)")
    if summary.get("status") not in ("optimal", "feasible"):
        raise UsageError(f"{run_dir}: the run is {summary.get('status')}: no plan to simulate")
    return summary


def simulate_run(run_dir: str | Path, years: int, seed: int, overdispersion: float = 0.0
                 ) -> SimulationResult:
    """Simulate the plan of a result folder (module doc); UsageError on bad input."""
    run_dir = Path(run_dir)
    if not 1 <= years <= MAX_YEARS:
        raise UsageError(f"--years {years}: must be between 1 and {MAX_YEARS:,}")
    if not (math.isfinite(overdispersion) and overdispersion >= 0):
        raise UsageError(f"--overdispersion {overdispersion}: must be a number >= 0")
    if seed < 0:
        raise UsageError(f"--seed {seed}: must be >= 0")
    summary = load_summary(run_dir)
    period = int((summary.get("scenario") or {}).get("norm_period_years") or 1)
    sv = _read_csv(run_dir / "site_volumes.csv",
                   ("region_id", "site_id", "site_name", "intervention_id", "norm",
                    "volume_after", "kept_after"))
    asg = _read_csv(run_dir / "assignments.csv",
                    ("area_id", "intervention_id", "site_id", "patients"))
    patients = pd.to_numeric(asg["patients"], errors="coerce")
    bad = ~np.isfinite(patients.to_numpy(float)) | (patients.to_numpy(float) < 0)
    if bad.any():
        row = int(np.nonzero(bad)[0][0]) + 2  # header is line 1
        raise UsageError(f"{run_dir / 'assignments.csv'}: row {row}, field patients: not a "
                         "number >= 0")
    sv = sv.assign(kept_after=sv["kept_after"].astype(str).str.lower().isin(("true", "1")),
                   norm=pd.to_numeric(sv["norm"], errors="coerce"))
    treatments = sorted(set(asg["intervention_id"]))
    # each treatment its own stream, from the seed and its id: its draws do not depend on
    # which other treatments the plan has
    streams = [np.random.SeedSequence([seed, zlib.crc32(t.encode("utf-8"))]) for t in treatments]
    rows: list[dict[str, Any]] = []
    volumes: dict[str, np.ndarray] = {}
    labels: dict[str, list[str]] = {}
    for treatment, stream in zip(treatments, streams, strict=True):
        flows = asg[(asg["intervention_id"] == treatment) & (patients > 0)]
        site_ids = sorted(set(flows["site_id"]))
        site_index = {s: i for i, s in enumerate(site_ids)}
        _, area_index = np.unique(flows["area_id"].to_numpy(str), return_inverse=True)
        routes = PlanRoutes(area_index.astype(np.int64),
                            np.array([site_index[s] for s in flows["site_id"]], dtype=np.int64),
                            pd.to_numeric(flows["patients"]).to_numpy(float), len(site_ids))
        simulated = simulate_volumes(routes, years, np.random.default_rng(stream), overdispersion)
        info = sv[sv["intervention_id"] == treatment].set_index("site_id")
        norms = np.array([float(info["norm"].get(s, np.nan)) for s in site_ids])
        expected = np.bincount(routes.site, routes.patients, minlength=len(site_ids))
        stats = summarise(simulated, norms, period)
        exact_1y = p_meet_norm(expected, norms, 1)
        exact_period = p_meet_norm(expected, norms, period)
        volumes[treatment] = simulated
        labels[treatment] = [str(info["site_name"].get(s, "") or s) for s in site_ids]
        for i, site in enumerate(site_ids):
            rows.append({
                "region_id": str(info["region_id"].get(site, summary.get("region_id", ""))),
                "site_id": site, "site_name": str(info["site_name"].get(site, "") or ""),
                "intervention_id": treatment,
                "norm": _clean(norms[i]), "expected_volume": _clean(expected[i]),
                "mean": _clean(stats.mean[i]), "std": _clean(stats.std[i]),
                **{name: _clean(values[i]) for name, values in stats.quantiles.items()},
                "share_years_below_norm": _clean(stats.share_years_below_norm[i]),
                "share_periods_below_norm": _clean(stats.share_periods_below_norm[i]),
                "p_meet_norm_1y": _clean(exact_1y[i]),
                "p_meet_norm_period": _clean(exact_period[i]),
            })
    table = pd.DataFrame.from_records(rows, columns=list(SIMULATION_COLUMNS))
    table = table.sort_values(["site_id", "intervention_id"], kind="stable").reset_index(drop=True)
    settings = {
        "run": run_dir.name, "region_id": summary.get("region_id"), "years": years,
        "seed": seed, "overdispersion": overdispersion, "norm_period_years": period,
        "chunk_years": CHUNK_YEARS,
        "model": ("each area's yearly patients of a treatment are independent counts around the "
                  "plan's expected demand: Poisson, or with overdispersion phi > 0 negative "
                  "binomial with variance mu + phi mu^2 (a gamma factor per area and year); "
                  "routed to hospitals by the plan's shares (docs/CONFIDENCE.md)"),
        "demand": "the plan's expected demand per area (assignments.csv; the scenario's growth "
                  "applied as in the solve)",
    }
    return SimulationResult(table, volumes, labels, settings)


def _clean(value: float) -> float | None:
    number = float(value)
    return round(number, 6) + 0.0 if math.isfinite(number) else None


def write_simulation(result: SimulationResult, out: Path) -> list[Path]:
    """simulation.csv, simulation.json and a fan chart per treatment, in one staged folder."""
    written = []
    with staged_dir(out, kind="simulation") as staging:  # never over a run folder
        write_csv(staging / "simulation.csv", result.table)
        write_json(staging / "simulation.json", result.settings)
        written += [out / "simulation.csv", out / "simulation.json"]
        for treatment, simulated in result.volumes.items():
            if simulated.shape[1] == 0:
                continue
            rows = result.table[result.table["intervention_id"] == treatment]
            by_site = rows.set_index("site_id")
            order = np.argsort(simulated.mean(axis=0), kind="stable")
            site_ids = sorted(by_site.index)
            bands = {name: by_site.loc[site_ids, name].to_numpy(float)[order]
                     for name in ("p05", "p25", "p50", "p75", "p95")}
            norms = by_site.loc[site_ids, "norm"].to_numpy(float)[order]
            labels = [result.site_labels[treatment][i] for i in order]
            png = fan_chart_png(labels, bands, norms,
                                f"{treatment}: simulated yearly volumes "
                                f"({result.settings['years']:,} years, seed "
                                f"{result.settings['seed']})")
            name = f"fan_{slug(treatment)}.png"
            write_bytes(staging / name, png)
            written.append(out / name)
    return written
