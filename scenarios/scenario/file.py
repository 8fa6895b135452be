"""Scenario files: TOML descriptions of one solve or a grid of solves, validated with pydantic.

A scenario file holds every :class:`optimiser.params.SolveParams` field at top level, plus:

* ``name``, ``description``;
* ``extends = "other.toml"`` — a base file (relative to this one), merged deeply (tables merge,
  scalars and arrays of the child replace the parent's), recursively, with cycle detection;
* demand growth: ``growth_pct_per_year`` (default for every treatment), ``base_year`` (2025)
  and ``target_year`` (no growth when absent): demand x (1 + g/100) ^ (target - base);
* ``norm_multiplier`` — every volume norm (and tier norm) times this factor (a norm that rises);
* ``closures = ["site_id", ...]`` — hospitals that stop all treatments (``force_close "*"``);
* ``[treatments.<intervention_id>]`` with ``margin``, ``norm_multiplier``,
  ``growth_pct_per_year``; ``[groups.<group_id>]`` with ``norm_multiplier`` and
  ``growth_pct_per_year`` (treatment beats group beats the global value);
* ``[grid]`` — parameter name -> list of values; the scenario expands to the Cartesian product in
  the order written (``"none"`` means no value, e.g. no travel limit). Keys may be dotted to reach
  into tables: ``"treatments.kidney_local.margin" = [0, 0.2]``.

The string ``"none"`` stands for "no value" anywhere (TOML has no null).

``load_scenario(path) -> ScenarioSpec``; ``ScenarioSpec.expand() -> list[ResolvedScenario]``.
This module reads files (``extends`` chains, grids); the model is in schema.py; a
:class:`ResolvedScenario` (resolved.py) carries the :class:`SolveParams` of one run,
applies growth and norm multipliers to an :class:`~optimiser.instance.Instance` and names its
run with a stable hash.
Every problem raises :class:`ScenarioError` naming the file and the key.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from herschik.optimiser.params import SiteTreatment, SolveParams
from herschik.scenarios.scenario.resolved import ResolvedScenario
from herschik.scenarios.scenario.schema import (
    _ALL_KEYS,
    _SCENARIO_FIELDS,
    _SOLVE_FIELDS,
    MAX_EXTENDS_DEPTH,
    MAX_GRID_RUNS,
    MAX_NESTING,
    MAX_SCENARIO_BYTES,
    ScenarioModel,
    _deep_merge,
    _format_value,
    _leaf_paths,
    _loc_text,
    _none_words,
    _set_dotted,
    _suggest,
)
from pydantic import BaseModel, ValidationError

from herschik.errors import ScenarioError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
__all__ = [
    "ScenarioSpec",
    "load_scenario",
    "scenario_from_dict",
    "with_overrides",
]

# --- the file as a whole ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScenarioSpec:
    """A loaded scenario file (after ``extends``): base settings plus an optional grid."""

    path: str
    name: str
    description: str
    settings: dict[str, Any]
    grid: dict[str, list[Any]]
    provenance: dict[tuple[str, ...], str]

    @property
    def n_runs(self) -> int:
        """How many runs the grid expands to (1 without a grid)."""
        return math.prod(len(values) for values in self.grid.values())

    def expand(self) -> list[ResolvedScenario]:
        """One :class:`ResolvedScenario` per grid point, in the order the grid is written."""
        keys = list(self.grid)
        runs: list[ResolvedScenario] = []
        for index, values in enumerate(itertools.product(*(self.grid[k] for k in keys))):
            point = dict(zip(keys, values, strict=True))
            runs.append(self._resolve(index, point))
        return runs

    def _resolve(
        self, index: int, point: dict[str, Any], overrides: dict[str, Any] | None = None
    ) -> ResolvedScenario:
        raw = copy.deepcopy(self.settings)
        for key, value in point.items():
            _set_dotted(raw, key, value)
        for key, value in (overrides or {}).items():
            _set_dotted(raw, key, value)
        if point:
            text = ",".join(f"{k}={_format_value(v)}" for k, v in point.items())
            raw["name"] = f"{self.name}[{text}]"
        else:
            raw["name"] = self.name
        if overrides:
            text = ",".join(f"{k}={_format_value(v)}" for k, v in overrides.items())
            raw["name"] += f" ({text})"
        model = _validate(raw, self, point, overrides or {})
        params = _solve_params(model)
        return ResolvedScenario(
            name=model.name,
            base_name=self.name,
            index=index,
            grid_point=dict(point),
            params=params,
            model=model,
            description=self.description,
            source=self.path,
            overrides=dict(overrides or {}),
        )


def _solve_params(model: ScenarioModel) -> SolveParams:
    data = {key: getattr(model, key) for key in _SOLVE_FIELDS}
    margins = dict(model.margin_by_treatment)
    for treatment, override in sorted(model.treatments.items()):
        if override.margin is not None:
            margins[treatment] = override.margin
    data["margin_by_treatment"] = margins
    closures = [SiteTreatment(site_id=site, intervention_id="*") for site in model.closures]
    known = {(e.site_id, e.intervention_id) for e in model.force_close}
    data["force_close"] = list(model.force_close) + [
        c for c in closures if (c.site_id, c.intervention_id) not in known
    ]
    return SolveParams.model_validate(
        {k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in data.items()}
    )


def _validate(
    raw: dict[str, Any],
    spec: ScenarioSpec,
    point: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> ScenarioModel:
    try:
        return ScenarioModel.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(p) for p in error["loc"])
        field = _loc_text(error["loc"]) or "(scenario)"
        message = error["msg"]
        if error["type"] == "extra_forbidden" and len(loc) == 1:
            message += _suggest(loc[0], _ALL_KEYS)
        # Whose value was it: a command-line override, a grid value, or a file in the chain?
        for source, keys in (("(command line)", overrides), (spec.path, point)):
            for key in keys:
                parts = tuple(key.split("."))
                if loc and loc[: len(parts)] == parts:
                    if source == spec.path:
                        field = f"grid.{key}"
                        message += f" (grid value {_format_value(keys[key])!r})"
                    raise ScenarioError(source, field, message) from None
        file = spec.path
        for n in range(len(loc), 0, -1):
            if loc[:n] in spec.provenance:
                file = spec.provenance[loc[:n]]
                break
        raise ScenarioError(file, field, message) from None


def _read_bounded(path: Path, display: str) -> str:
    """The file's text; a device, FIFO or folder is refused before opening, a huge file after
    :data:`MAX_SCENARIO_BYTES` (``extends = "/dev/zero"`` must not read forever)."""

    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise ScenarioError(display, "(file)", "not a regular file (a folder, device or FIFO)")
    with path.open("rb") as handle:
        data = handle.read(MAX_SCENARIO_BYTES + 1)
    if len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            display, "(file)", f"larger than {MAX_SCENARIO_BYTES // 1024} KiB; not a scenario file"
        )
    return data.decode("utf-8")


def _read_toml(path: Path, display: str, referrer: tuple[str, str] | None) -> dict[str, Any]:
    try:
        text = _read_bounded(path, display)
    except FileNotFoundError:
        if referrer is not None:
            raise ScenarioError(referrer[0], referrer[1], f"file not found: {display}") from None
        raise ScenarioError(display, "(file)", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(display, "(file)", f"cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(display, "(toml)", str(exc)) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ScenarioError(display, "(toml)", f"nested more than {MAX_NESTING} levels deep"
                            ) from None
    if _nesting(data) > MAX_NESTING:
        raise ScenarioError(display, "(toml)", f"nested more than {MAX_NESTING} levels deep")
    return data


def _nesting(value: Any) -> int:
    """How deep tables and arrays nest in ``value`` (counted without recursion)."""
    deepest, todo = 0, [(value, 0)]
    while todo:
        item, depth = todo.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            todo.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, depth + 1) for v in item)
    return deepest


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _load_chain(
    path: Path, stack: tuple[Path, ...], referrer: tuple[str, str] | None
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Read a file and its ``extends`` ancestors; return merged data and key provenance."""
    resolved = path.resolve()
    display = _display(path)
    if resolved in stack:
        cycle = " -> ".join(_display(p) for p in (*stack, resolved))
        raise ScenarioError(display, "extends", f"cycle: {cycle}")
    if len(stack) >= MAX_EXTENDS_DEPTH:
        first = _display(stack[0]) if stack else display
        raise ScenarioError(first, "extends", f"a chain of more than {MAX_EXTENDS_DEPTH} files "
                            f"(stopped at {display})")
    data = _none_words(_read_toml(path, display, referrer))
    for key in data:
        if key not in _ALL_KEYS:
            raise ScenarioError(
                display, key, f"Extra inputs are not permitted{_suggest(key, _ALL_KEYS)}"
            )
    grid = data.get("grid")
    if grid is not None and not isinstance(grid, dict):
        raise ScenarioError(display, "grid", "must be a table of parameter = [values]")
    parent = data.pop("extends", None)
    base: dict[str, Any] = {}
    provenance: dict[tuple[str, ...], str] = {}
    if parent is not None:
        if not isinstance(parent, str) or not parent:
            raise ScenarioError(display, "extends", "must be a file name (string)")
        base, provenance = _load_chain(
            path.parent / parent, (*stack, resolved), (display, "extends")
        )
        base.pop("description", None)  # a description belongs to its own file
        if "name" not in data:
            base.pop("name", None)
    for leaf in _leaf_paths(data):
        provenance[leaf] = display
    return _deep_merge(base, data), provenance


def _check_grid(grid: dict[str, Any], file: str) -> dict[str, list[Any]]:
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        head = key.split(".")[0]
        if head not in _SCENARIO_FIELDS or head == "name":
            raise ScenarioError(
                file, f"grid.{key}", f"not a scenario parameter{_suggest(head, _SCENARIO_FIELDS)}"
            )
        if "." in key and head not in ("treatments", "groups", "margin_by_treatment"):
            raise ScenarioError(file, f"grid.{key}", "only tables can take dotted keys")
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise ScenarioError(file, f"grid.{key}", "needs at least one value")
        if len(values) > MAX_GRID_RUNS:  # before the (quadratic) repeat check
            raise ScenarioError(file, f"grid.{key}", f"{len(values):,} values; at most "
                                f"{MAX_GRID_RUNS:,} runs per region")
        seen: list[Any] = []
        for value in values:
            if value in seen:
                raise ScenarioError(file, f"grid.{key}", f"value {_format_value(value)} repeated")
            seen.append(value)
        checked[key] = values
    return checked


def scenario_from_dict(
    data: Mapping[str, Any], *, source: str = "(scenario)", base_dir: Path | None = None
) -> ScenarioSpec:
    """A :class:`ScenarioSpec` from an already-parsed mapping (``extends`` is read from disk)."""
    data = _none_words(dict(data))
    for key in data:
        if key not in _ALL_KEYS:
            raise ScenarioError(
                source, key, f"Extra inputs are not permitted{_suggest(key, _ALL_KEYS)}"
            )
    base: dict[str, Any] = {}
    provenance: dict[tuple[str, ...], str] = {}
    parent = data.pop("extends", None)
    if parent is not None:
        base, provenance = _load_chain((base_dir or Path.cwd()) / parent, (), (source, "extends"))
        base.pop("description", None)
        if "name" not in data:
            base.pop("name", None)
    for leaf in _leaf_paths(data):
        provenance[leaf] = source
    return _make_spec(_deep_merge(base, data), provenance, source, source)


def _make_spec(
    merged: dict[str, Any], provenance: dict[tuple[str, ...], str], display: str, stem: str
) -> ScenarioSpec:
    grid_raw = merged.pop("grid", None) or {}
    grid_file = provenance.get(("grid",), display)
    grid = _check_grid(grid_raw, grid_file)
    n_runs = math.prod(len(values) for values in grid.values())
    if n_runs > MAX_GRID_RUNS:  # refused before a single combination is built
        raise ScenarioError(
            grid_file, "grid", f"expands to {n_runs:,} runs per region; at most {MAX_GRID_RUNS:,}"
        )
    description = str(merged.pop("description", "") or "")
    name = merged.get("name") or stem
    if not isinstance(name, str):
        raise ScenarioError(provenance.get(("name",), display), "name", "must be a string")
    merged["name"] = name
    spec = ScenarioSpec(
        path=display,
        name=name,
        description=description.strip(),
        settings=merged,
        grid=grid,
        provenance=provenance,
    )
    # Validate every grid value on its own (errors name the key), then every combination.
    for key, values in grid.items():
        for value in values:
            spec._resolve(0, {key: value})
    if not grid:
        spec._resolve(0, {})
    else:
        spec.expand()
    return spec


def load_scenario(path: str | Path) -> ScenarioSpec:
    """Read and validate a scenario file (and what it extends); raise :class:`ScenarioError`."""
    path = Path(path)
    merged, provenance = _load_chain(path, (), None)
    return _make_spec(merged, provenance, _display(path), path.stem)


def with_overrides(resolved: ResolvedScenario, **params: Any) -> ResolvedScenario:
    """A copy of ``resolved`` with command-line values replacing the file's.

    Keys are scenario parameter names (``margin``, ``max_travel``, ``objective``, ``solver``,
    ``time_limit``, ``target_year``, ...); ``None`` means "flag not given" and is ignored — pass
    the string ``"none"`` to remove a limit. Overrides are recorded in :meth:`as_dict` (and so
    change the run id).
    """
    given = {k: v for k, v in params.items() if v is not None}
    if not given:
        return resolved
    for key in given:
        head = key.split(".")[0]
        if head not in _SCENARIO_FIELDS or head == "name":
            raise ScenarioError(
                "(command line)", key, f"not a scenario parameter{_suggest(head, _SCENARIO_FIELDS)}"
            )
    given = _none_words(given)
    spec = ScenarioSpec(
        path=resolved.source or resolved.base_name,
        name=resolved.base_name,
        description=resolved.description,
        settings=_settings_of(resolved),
        grid={},
        provenance={},
    )
    merged_overrides = {**resolved.overrides, **given}
    return spec._resolve(resolved.index, dict(resolved.grid_point), merged_overrides)


def _settings_of(resolved: ResolvedScenario) -> dict[str, Any]:
    """The base settings that produced ``resolved`` (its model without the grid point)."""
    data = resolved.model.model_dump(mode="json", exclude_none=False)
    data["name"] = resolved.base_name
    # margins set through [treatments.x] live in the model's treatments table already
    return data
