"""``herschik compare RUN_A RUN_B``: what differs between two result folders.

Reads each folder's ``summary.json`` and ``hospital_changes.csv`` (derived from
``site_volumes.csv`` for folders written before that file existed) and returns three tables:

* ``kpi_differences``: one row per scalar KPI present in either run — ``kpi, run_a, run_b,
  difference`` (b − a; empty when one side lacks the KPI or the run is infeasible);
* ``treatment_differences``: one row per treatment — providers after, providers lost, patients
  displaced and their mean extra travel in each run, and the differences;
* ``hospital_differences``: one row per (site, treatment) whose status or volume after differs
  (by at least ``VOLUME_TOLERANCE`` patients per year) — ``site_id, site_name,
  intervention_id, status_a, status_b, volume_after_a, volume_after_b, volume_difference``.

:func:`write_comparison` writes them as CSVs (atomically) into ``--out DIR``.

A run without any plan (``infeasible``, ``time_limit_no_solution``) is refused
(:class:`CompareError`, exit 2): there is nothing to compare. Partial plans
(``partially_infeasible``) are compared treatment by treatment: ``treatment_differences`` gives
each treatment's status in both runs, and hospitals are compared only for the treatments
planned in both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.optimiser.kpis import DISPLACED_KPIS, NORM_ODDS_KPIS, SCALAR_KPIS
from herschik.optimiser.results import HOSPITAL_CHANGE_COLUMNS, hospital_changes_from_site_volumes

from herschik.atomic import staged_dir, write_csv
from herschik.i18n import _

#: volume differences below this (patients per year) are rounding, not a change
VOLUME_TOLERANCE = 0.05
KPI_ORDER: tuple[str, ...] = DISPLACED_KPIS + tuple(k for k in SCALAR_KPIS
                                                    if k not in DISPLACED_KPIS) + NORM_ODDS_KPIS


class CompareError(ValueError):
    """A folder is not a result folder (exit 2 in the CLI)."""


@dataclass
class RunFolder:
    path: Path
    summary: dict[str, Any]
    hospital_changes: pd.DataFrame


def load_run(path: str | Path) -> RunFolder:
    """A result folder's summary and hospital changes; CompareError if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise CompareError(_("{path}: not a folder", path=path))
    summary_path = path / "summary.json"
    if not summary_path.is_file():  # also a FIFO or device: never opened
        raise CompareError(_("{path}: not a result folder (no summary.json)", path=path))
    summary = _read_summary(summary_path)
    changes_path = path / "hospital_changes.csv"
    if changes_path.is_file():
        changes = _read_csv(changes_path)
    elif (path / "site_volumes.csv").is_file():
        changes_path = path / "site_volumes.csv"
        sv = _read_csv(changes_path)
        if "kept_after" not in sv.columns:
            raise CompareError(f"{changes_path}: missing column kept_after")
        sv = sv.astype({"kept_after": object}).where(sv.notna(), None)
        try:
            changes = hospital_changes_from_site_volumes(sv)
        except (KeyError, ValueError, TypeError) as error:
            raise CompareError(f"{changes_path}: not a site_volumes.csv of herschik "
                               f"({type(error).__name__}: {error})") from None
    else:
        raise CompareError(f"{path}: neither hospital_changes.csv nor site_volumes.csv")
    missing = [c for c in ("site_id", "intervention_id", "status", "volume_after")
               if c not in changes.columns]
    if missing:
        raise CompareError(f"{changes_path}: missing columns {missing}")
    volumes = pd.to_numeric(changes["volume_after"], errors="coerce")
    bad = changes["volume_after"].notna() & ~np.isfinite(volumes.fillna(np.inf))
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise CompareError(f"{changes_path} row {row + 1}, field volume_after: not a finite "
                           f"number ({changes['volume_after'].iloc[row]!r})")
    for col in HOSPITAL_CHANGE_COLUMNS:
        if col not in changes.columns:
            changes[col] = None
    status = summary.get("status")
    if status in NO_PLAN:
        raise CompareError(_("{path}: no plan to compare (status {status}; its diagnosis is "
                             "in summary.json)", path=path, status=status))
    return RunFolder(path, summary, changes)


#: largest summary.json / CSV of a result folder read (a national run's are a few MB)
MAX_RESULT_FILE_BYTES = 256 << 20


def _bounded(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_RESULT_FILE_BYTES:
        raise CompareError(f"{path}: {size:,} bytes; not a result file of herschik")


def _read_summary(path: Path) -> dict[str, Any]:
    """summary.json as a dict whose kpis (and per_treatment) are objects; else CompareError."""
    _bounded(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CompareError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})"
                           ) from None
    except (UnicodeDecodeError, RecursionError) as error:
        raise CompareError(f"{path}: not a summary.json of herschik ({type(error).__name__})"
                           ) from None
    if not isinstance(summary, dict):
        raise CompareError(f"{path}: must be a JSON object")
    kpis = summary.get("kpis")
    if kpis is not None and not isinstance(kpis, dict):
        raise CompareError(f"{path}: field kpis must be an object")
    for key in ("per_treatment", "providers_after", "providers_lost"):
        if kpis and kpis.get(key) is not None and not isinstance(kpis.get(key), dict):
            raise CompareError(f"{path}: field kpis.{key} must be an object")
    for entry in ((kpis or {}).get("per_treatment") or {}).values():
        if not isinstance(entry, dict):
            raise CompareError(f"{path}: field kpis.per_treatment must hold objects")
    for key in ("providers_after", "providers_lost"):
        values = ((kpis or {}).get(key) or {}).values()
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
            raise CompareError(f"{path}: field kpis.{key} must hold numbers")
    return summary


def _read_csv(path: Path) -> pd.DataFrame:
    _bounded(path)
    try:
        return pd.read_csv(path, dtype={"site_id": str, "intervention_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as error:
        message = " ".join(str(error).split())[:200]
        raise CompareError(f"{path}: not a CSV table of herschik ({message})") from None
#: statuses of a run without any plan
NO_PLAN = ("infeasible", "time_limit_no_solution")


def planned(run: RunFolder) -> set[str] | None:
    """The treatments with a plan in ``run`` (None: all; older folders say nothing)."""
    statuses = run.summary.get("treatment_status")
    if not isinstance(statuses, dict):
        return None
    return {t for t, status in statuses.items() if status in ("optimal", "feasible")}


def _treatment_status(run: RunFolder, tid: str) -> str:
    statuses = run.summary.get("treatment_status")
    if isinstance(statuses, dict) and tid in statuses:
        return str(statuses[tid])
    return str(run.summary.get("status", ""))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 6)


def kpi_differences(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    ka, kb = a.summary.get("kpis") or {}, b.summary.get("kpis") or {}
    keys = [k for k in KPI_ORDER if k in ka or k in kb]
    keys += sorted(k for k in set(ka) | set(kb) if k not in keys
                   and (_number(ka.get(k)) is not None or _number(kb.get(k)) is not None))
    rows = []
    for key in ("status", "objective"):
        va, vb = a.summary.get(key), b.summary.get(key)
        rows.append({"kpi": key, "run_a": va, "run_b": vb,
                     "difference": _diff(_number(va), _number(vb))})
    for side in ("providers_after", "providers_lost"):
        sa, sb = ka.get(side), kb.get(side)
        va = float(sum(sa.values())) if isinstance(sa, dict) else None
        vb = float(sum(sb.values())) if isinstance(sb, dict) else None
        rows.append({"kpi": f"{side}_total", "run_a": va, "run_b": vb,
                     "difference": _diff(va, vb)})
    for key in keys:
        va, vb = _number(ka.get(key)), _number(kb.get(key))
        rows.append({"kpi": key, "run_a": va, "run_b": vb, "difference": _diff(va, vb)})
    return pd.DataFrame(rows, columns=["kpi", "run_a", "run_b", "difference"])


def treatment_differences(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    pa = (a.summary.get("kpis") or {}).get("per_treatment") or {}
    pb = (b.summary.get("kpis") or {}).get("per_treatment") or {}
    fields = ("providers_after", "providers_lost", "patients_displaced",
              "displaced_mean_extra_min", "patients_moved_optional")
    rows = []
    ids = list(pa) + [t for t in pb if t not in pa]
    for side in (a.summary.get("treatment_status") or {}, b.summary.get("treatment_status") or {}):
        ids += [t for t in side if t not in ids]
    for tid in ids:
        row: dict[str, Any] = {"intervention_id": tid, "status_a": _treatment_status(a, tid),
                               "status_b": _treatment_status(b, tid)}
        for f in fields:
            va, vb = _number((pa.get(tid) or {}).get(f)), _number((pb.get(tid) or {}).get(f))
            row[f"{f}_a"], row[f"{f}_b"], row[f"{f}_difference"] = va, vb, _diff(va, vb)
        rows.append(row)
    columns = ["intervention_id", "status_a", "status_b"] + [f"{f}_{s}" for f in fields
                                     for s in ("a", "b", "difference")]
    return pd.DataFrame(rows, columns=columns)


HOSPITAL_DIFFERENCE_COLUMNS = [
    "site_id", "site_name", "intervention_id", "intervention_name", "status_a", "status_b",
    "volume_after_a", "volume_after_b", "volume_difference",
]


def hospital_differences(a: RunFolder, b: RunFolder) -> pd.DataFrame:
    keys = ["site_id", "intervention_id"]
    cols = keys + ["site_name", "intervention_name", "status", "volume_after"]
    both = [planned(a), planned(b)]
    sides = []
    for run in (a, b):
        changes = run.hospital_changes[cols]
        for plan in both:  # only treatments planned in both runs are compared
            if plan is not None:
                changes = changes[changes["intervention_id"].astype(str).isin(plan)]
        sides.append(changes)
    merged = sides[0].merge(sides[1], on=keys, how="outer", suffixes=("_a", "_b"))
    merged["site_name"] = merged["site_name_a"].fillna(merged["site_name_b"])
    merged["intervention_name"] = merged["intervention_name_a"].fillna(
        merged["intervention_name_b"])
    # a row absent on one side: the site does not provide the treatment there
    for side in ("a", "b"):
        merged[f"status_{side}"] = merged[f"status_{side}"].fillna("not_provided")
        merged[f"volume_after_{side}"] = pd.to_numeric(merged[f"volume_after_{side}"],
                                                       errors="coerce").fillna(0.0)
    merged["volume_difference"] = (merged["volume_after_b"] - merged["volume_after_a"]).round(6)
    changed = merged[(merged["status_a"] != merged["status_b"])
                     | (merged["volume_difference"].abs() >= VOLUME_TOLERANCE)]
    changed = changed.sort_values(keys, kind="stable")
    return changed[HOSPITAL_DIFFERENCE_COLUMNS].reset_index(drop=True)


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict[str, pd.DataFrame]:
    """The three difference tables (module docstring) of two result folders."""
    a, b = load_run(run_a), load_run(run_b)
    return {
        "kpi_differences": kpi_differences(a, b),
        "treatment_differences": treatment_differences(a, b),
        "hospital_differences": hospital_differences(a, b),
    }


def write_comparison(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """Write each table as ``<name>.csv`` into the folder ``out_dir``; the paths written.

    Through the guarded folder writer (kind ``comparison``): ``out_dir`` must be new, empty or
    a comparison herschik wrote; it is replaced whole (OutputError otherwise, exit 2).
    """
    out = Path(out_dir)
    with staged_dir(out, kind="comparison") as staging:
        for name, table in tables.items():
            write_csv(staging / f"{name}.csv", table)
    return [out / f"{name}.csv" for name in tables]
