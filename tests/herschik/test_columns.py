"""One definition of each result column (herschik/columns.py): the optimiser builds the tables
with it, the GIS export reads them back with it, and no other module lists them again."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
from herschik.geo import export
from herschik.optimiser import results
from herschik.optimiser.params import SolveParams
from herschik.optimiser.solve import solve
from herschik.optimiser.synthetic import synthetic_instance

from herschik import columns
from herschik.columns import (
    AREAS_LAYER,
    ASSIGNMENTS,
    FLOWS_LAYER,
    HOSPITAL_CHANGES,
    HOSPITAL_FLOWS,
    HOSPITAL_FLOWS_LAYER,
    SITE_VOLUMES,
    SITES_LAYER,
    of_kind,
)
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
TABLES = {"site_volumes": SITE_VOLUMES, "assignments": ASSIGNMENTS,
          "hospital_changes": HOSPITAL_CHANGES, "flows": HOSPITAL_FLOWS}
LAYERS = {"sites": SITES_LAYER, "areas": AREAS_LAYER, "flows": FLOWS_LAYER,
          "hospital_flows": HOSPITAL_FLOWS_LAYER}


def test_tables_are_built_with_the_columns() -> None:
    instance = synthetic_instance(30, 4, 2, seed=3)
    params = SolveParams(margin=0.1)
    solution = solve(instance, params)
    site_volumes = results.site_volumes_table(instance, solution, params)
    names = {t.id: t.name for t in instance.treatments}
    built = {
        "site_volumes": site_volumes,
        "assignments": results.assignments_table(instance, solution),
        "hospital_changes": results.hospital_changes_from_site_volumes(site_volumes, names),
        "flows": results.flows_table(instance, solution),
    }
    for name, table in built.items():
        assert list(table.columns) == [c.name for c in TABLES[name]], name
        assert len(table), name
        for column in of_kind(TABLES[name], "number"):
            assert pd.api.types.is_numeric_dtype(table[column].dropna()), (name, column)
        for column in of_kind(TABLES[name], "flag"):
            assert set(table[column].dropna()) <= {True, False}, (name, column)


def test_the_export_reads_by_kind() -> None:
    """A table read back from CSV (strings and numbers mixed) is converted column by kind."""
    sv = pd.DataFrame([["R", 7, "Site", 3, "50", "55", "40.5", "60", "true", "false", "", "",
                        "optimal"]], columns=columns.SITE_VOLUME_COLUMNS)
    out = export.normalise_site_volumes(sv)
    assert np.isnan(out.loc[0, "p_meet_norm_1y"])
    # as written by an older version: without the later columns (odds, treatment status),
    # read as empty
    older = export.normalise_site_volumes(
        sv.drop(columns=list(columns.LATER_SITE_VOLUME_COLUMNS)))
    assert list(older.columns) == columns.SITE_VOLUME_COLUMNS
    assert older["p_meet_norm_period"].isna().all()
    assert older.loc[0, "treatment_status"] == ""
    for column in of_kind(SITE_VOLUMES, "id"):
        assert isinstance(out.loc[0, column], str)
    assert out.loc[0, "volume_before"] == 40.5
    assert out["kept_before"].dtype == bool and out.loc[0, "kept_before"]
    asg = pd.DataFrame([["R", 1, 2, 3, "9.5", "10", "8", "2"]],
                       columns=[c for c in columns.ASSIGNMENT_COLUMNS
                                if c not in columns.NAME_COLUMNS
                                and c not in columns.LATER_ASSIGNMENT_COLUMNS])
    out = export.normalise_assignments(asg)
    assert list(out.columns) == columns.ASSIGNMENT_COLUMNS
    assert out.loc[0, "area_name"] == "" and out.loc[0, "patients"] == 9.5
    assert out.loc[0, "site_id_before"] == "" and out.loc[0, "move"] == ""
    assert export.SITE_VOLUME_COLUMNS is columns.SITE_VOLUME_COLUMNS
    assert results.ASSIGNMENT_COLUMNS is columns.ASSIGNMENT_COLUMNS


def test_every_column_is_documented() -> None:
    outputs = (ROOT / "docs" / "OUTPUTS.md").read_text(encoding="utf-8")
    missing = [f"{name}.{c.name}" for name, table in {**TABLES, **LAYERS}.items() for c in table
               if f"`{c.name}`" not in outputs and f" {c.name}," not in outputs
               and f", {c.name}`" not in outputs]
    assert missing == []


def _string_lists(path: Path) -> list[tuple[int, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.List, ast.Tuple)) and len(node.elts) >= 4 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            found.append((node.lineno, [e.value for e in node.elts]))
    return found


def test_no_module_lists_a_table_again() -> None:
    """No source module spells out (most of) a table's columns a second time."""
    tables = {name: {c.name for c in table} for name, table in {**TABLES, **LAYERS}.items()}
    offenders = []
    for folder in ("optimiser", "geo", "scenarios", "herschik"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "herschik" / "columns.py":
                continue
            for line, names in _string_lists(path):
                for table, cols in tables.items():
                    if len(set(names) & cols) >= 0.8 * len(cols):
                        offenders.append(f"{path.relative_to(ROOT)}:{line} repeats {table}")
    assert offenders == []


def test_columns_module_imports_nothing_of_the_project() -> None:
    tree = ast.parse((ROOT / "herschik" / "columns.py").read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith(("herschik", "optimiser", "geo"))]
