"""Export of a plan: its scenario file, and the result folder ``herschik solve`` writes for it.

A plan is exported by writing its settings as a scenario TOML and running ``herschik solve
--scenario`` on it in a child process, so the exported result folder *is* what the CLI writes
for that file; then the CLI's summary and CSVs are checked against the plan's (byte for byte).
Folders are chosen here, below the app's ``--out`` folder, and written whole or not at all.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.optimiser.params import SolveParams
from herschik.scenarios.run import TIMING_FIELDS

from herschik.atomic import staged_dir, write_text
from herschik.i18n import _

from .models import APP_FIELDS, Plan, describe

#: longest an export's `herschik solve` may run
EXPORT_TIMEOUT_S = 1800


# --- the scenario file of a plan ----------------------------------------------------------
def _toml_value(value: Any) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return json.dumps(str(value), ensure_ascii=False)


def scenario_toml(name: str, settings: Any, params: SolveParams, command: str) -> str:
    """The plan as a scenario file (docs/SCENARIOS.md) that resolves to exactly ``params``."""
    lines = [
        f"# {name}: a plan made in `herschik app` (region {settings.region_id}).",
        "# Re-run it with the command line:",
        f"#   {command}",
        f"name = {_toml_value(name)}",
        f"description = {_toml_value(describe(settings))}",
    ]
    for key in APP_FIELDS:
        value = getattr(params, key)
        if key == "norm_confidence" and value is None:
            continue  # "none" is no confidence: the file says nothing
        lines.append(f"{key} = {_toml_value(value)}")
    for key in ("force_keep", "force_close"):
        pairs = getattr(params, key)
        items = ", ".join(
            f"{{ site_id = {_toml_value(p.site_id)}, "
            f"intervention_id = {_toml_value(p.intervention_id)} }}"
            for p in pairs
        )
        lines.append(f"{key} = [{items}]")
    return "\n".join(lines) + "\n"


# --- export ----------------------------------------------------------------------------------
def export_plan(plan: Plan, out_dir: Path, source_args: list[str]) -> dict[str, Any]:
    """Write ``plan.toml`` and ``result/`` (by ``herschik solve``) to a new folder.

    The folder is chosen here: ``<out>/plan-<id>-<region>[-n]``. ``source_args``: the CLI
    flags that load the app's data. Returns the folder's name (relative to ``out_dir``), the
    files written, the CLI command and whether the CLI's KPIs and tables equal the plan's.
    """
    stem = f"plan-{plan.id:03d}-{plan.settings.region_id}"
    folder = new_folder(out_dir, stem)
    args = ["solve", "--region", plan.settings.region_id, "--scenario", "plan.toml",
            "--out", "result", "--xlsx", *source_args]
    command = "herschik " + " ".join(shlex.quote(a) for a in args)
    # The guarded folder writer: the folder appears whole (plan.toml and a finished
    # result/) or not at all, also when the solve fails or the app is stopped.
    with staged_dir(folder, kind="app-export") as staging:
        write_text(staging / "plan.toml",
                   scenario_toml(stem, plan.settings, plan.params, command))
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "herschik.scenarios.cli", *args],
            cwd=staging, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False,
        )
        seconds = time.perf_counter() - started
        if proc.returncode not in (0, 1) or not (staging / "result" / "summary.json").is_file():
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(_("herschik solve failed (exit {code}): {line}",
                                 code=proc.returncode,
                                 line=lines[-1] if lines else _("no output")))
    same, differences = same_result(plan, folder / "result")
    return {
        "folder": folder.name,
        "files": sorted(
            str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ),
        "command": command,
        "exit_code": proc.returncode,
        "seconds": round(seconds, 3),
        "same_as_app": same,
        "differences": differences,
    }


def new_folder(parent: Path, stem: str) -> Path:
    """``parent/stem``, or ``stem-2``, ``stem-3``... if taken (never reused); not created (the
    caller writes it with :func:`herschik.atomic.staged_dir`, which refuses a taken name)."""
    parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        folder = parent / (stem if n == 1 else f"{stem}-{n}")
        if not folder.exists() and not folder.is_symlink() and not (
            parent / f".{folder.name}.lock"
        ).exists():
            return folder
        n += 1


def same_result(plan: Plan, result: Path) -> tuple[bool, list[str]]:
    """Does the CLI's result folder hold the plan's KPIs and status, and its CSVs byte for
    byte (the app's tables written by the CLI's own writer)?"""
    summary = json.loads((result / "summary.json").read_text(encoding="utf-8"))
    differences = []
    mine = plan.run.summary
    for key in ("status", "objective", "kpis"):
        if json.dumps(summary.get(key), sort_keys=True) != json.dumps(mine.get(key),
                                                                         sort_keys=True):
            differences.append(key)
    written = pd.read_csv(result / "site_volumes.csv")
    if len(written) != len(plan.run.site_volumes) or not np.allclose(
        written["volume_after"].to_numpy(float),
        plan.run.site_volumes["volume_after"].to_numpy(float), atol=1e-6, equal_nan=True,
    ):
        differences.append("site_volumes.csv")
    with tempfile.TemporaryDirectory() as tmp:
        mine_dir = plan.run.write(Path(tmp) / "app", lock=False)
        for name in sorted(p.name for p in mine_dir.glob("*.csv")):
            theirs = result / name
            if not theirs.is_file() or theirs.read_bytes() != (mine_dir / name).read_bytes():
                if name not in differences:
                    differences.append(name)
    return not differences, differences


def comparable_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without its wall-clock fields (what two identical runs share)."""
    out = {k: v for k, v in summary.items() if k not in TIMING_FIELDS}
    out["subproblems"] = [
        {k: v for k, v in sp.items() if "seconds" not in k} for sp in out.get("subproblems", [])
    ]
    return out

