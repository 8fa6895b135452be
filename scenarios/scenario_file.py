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

``load_scenario(path) -> ScenarioSpec``; ``ScenarioSpec.expand() -> list[ResolvedScenario]``;
a :class:`ResolvedScenario` carries the :class:`SolveParams` of one run, applies growth and
norm multipliers to an :class:`~optimiser.instance.Instance` and names its run with a stable hash.
Every problem raises :class:`ScenarioError` naming the file and the key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from herschik.optimiser.instance import Instance, Treatment
from herschik.optimiser.params import SiteTreatment, SolveParams
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from herschik.errors import ScenarioError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = [
    "ResolvedScenario",
    "ScenarioError",
    "ScenarioSpec",
    "load_scenario",
    "scenario_from_dict",
    "with_overrides",
]

#: Bump when the meaning of a resolved scenario changes, so that old run ids are not reused.
SCENARIO_FORMAT = 1
NONE_WORDS = frozenset({"none", "null"})
#: Keys that describe a file rather than a run (never part of a run's parameters or hash).
_FILE_KEYS = ("extends", "grid", "description")


# --- the schema ------------------------------------------------------------------------------


#: Ranges of the scenario settings: a norm at most this many times today's, a yearly growth
#: in (-100 %, +100 %], and growth that at most multiplies demand by this factor.
MAX_NORM_MULTIPLIER = 100.0
MAX_GROWTH_PCT = 100.0
MAX_DEMAND_FACTOR = 1000.0
#: Largest grid a scenario file may expand to (runs per region), checked before expanding.
MAX_GRID_RUNS = 10_000
#: Largest scenario file read (bytes); a device or FIFO as ``extends`` is refused unread.
MAX_SCENARIO_BYTES = 1 << 20

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class TreatmentOverride(BaseModel):
    """Per-treatment settings (``[treatments.<id>]``)."""

    model_config = _STRICT
    margin: float | None = Field(None, ge=0)
    norm_multiplier: float | None = Field(None, gt=0, le=MAX_NORM_MULTIPLIER)
    growth_pct_per_year: float | None = Field(None, gt=-100, le=MAX_GROWTH_PCT)


class GroupOverride(BaseModel):
    """Per-group settings (``[groups.<group_id>]``); margins are set per treatment."""

    model_config = _STRICT
    norm_multiplier: float | None = Field(None, gt=0, le=MAX_NORM_MULTIPLIER)
    growth_pct_per_year: float | None = Field(None, gt=-100, le=MAX_GROWTH_PCT)


class ScenarioModel(SolveParams):
    """One resolved point of a scenario file: every SolveParams field plus scenario settings."""

    model_config = _STRICT

    name: str = Field("scenario", min_length=1)
    base_year: int = Field(2025, ge=1900, le=2200)
    target_year: int | None = Field(None, ge=1900, le=2200)
    growth_pct_per_year: float = Field(0.0, gt=-100, le=MAX_GROWTH_PCT)
    norm_multiplier: float = Field(1.0, gt=0, le=MAX_NORM_MULTIPLIER)
    closures: list[str] = Field(default_factory=list)
    treatments: dict[str, TreatmentOverride] = Field(default_factory=dict)
    groups: dict[str, GroupOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _growth_plausible(self) -> ScenarioModel:
        if self.target_year is None:
            return self
        years = self.target_year - self.base_year
        if years < 0:  # growth "back" to an earlier year would shrink demand silently
            raise ValueError(
                f"target_year {self.target_year} is before base_year {self.base_year}"
            )
        rates = [self.growth_pct_per_year] + [
            o.growth_pct_per_year
            for o in (*self.treatments.values(), *self.groups.values())
            if o.growth_pct_per_year is not None
        ]
        for rate in rates:
            factor = math.exp(years * math.log1p(rate / 100.0))
            if not 1.0 / MAX_DEMAND_FACTOR <= factor <= MAX_DEMAND_FACTOR:
                raise ValueError(
                    f"growth of {rate:g} %/yr over {years} years multiplies demand by "
                    f"{factor:.3g}; at most {MAX_DEMAND_FACTOR:g} (or 1/{MAX_DEMAND_FACTOR:g})"
                )
        return self


_SOLVE_FIELDS: tuple[str, ...] = tuple(SolveParams.model_fields)
_SCENARIO_FIELDS: tuple[str, ...] = tuple(ScenarioModel.model_fields)
_ALL_KEYS: tuple[str, ...] = _SCENARIO_FIELDS + _FILE_KEYS


# --- helpers ---------------------------------------------------------------------------------


def _none_words(value: Any, key: str = "") -> Any:
    """Replace the string ``"none"`` by ``None`` (recursively), except in free-text fields."""
    if key in ("name", "description", "closures", "extends"):
        return value
    if isinstance(value, str) and value.strip().lower() in NONE_WORDS:
        return None
    if isinstance(value, dict):
        return {k: _none_words(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_none_words(v) for v in value]
    return value


def _deep_merge(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge recursively; the child's scalars and arrays replace the base's."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _leaf_paths(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    for key, value in data.items():
        path = (*prefix, str(key))
        yield path
        if isinstance(value, Mapping):
            yield from _leaf_paths(value, path)


def _loc_text(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _json_ready(value: Any) -> Any:
    """Make a value JSON-serialisable and stable (floats that are integral stay floats)."""
    if isinstance(value, BaseModel):
        return _json_ready(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _suggest(key: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


# --- resolved runs ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResolvedScenario:
    """One run of a scenario: solve parameters and what to change in the instance.

    ``params`` are the :class:`SolveParams` of the run; closures are already in
    ``params.force_close`` (site, ``"*"``). ``grid_point`` holds this run's values of the grid
    keys (empty when the file has no grid); ``index`` its position in the expansion.
    """

    name: str
    base_name: str
    index: int
    grid_point: dict[str, Any]
    params: SolveParams
    model: ScenarioModel
    description: str = ""
    source: str = ""
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)

    # --- scenario settings ----------------------------------------------------------------
    @property
    def base_year(self) -> int:
        return self.model.base_year

    @property
    def target_year(self) -> int | None:
        return self.model.target_year

    @property
    def years(self) -> int:
        """Years of growth (0 when no target year is set)."""
        return 0 if self.target_year is None else self.target_year - self.base_year

    @property
    def closures(self) -> tuple[str, ...]:
        return tuple(self.model.closures)

    @property
    def growth(self) -> dict[str, Any]:
        """Growth settings: default yearly %, per group, per treatment, base and target year."""
        return {
            "base_year": self.base_year,
            "target_year": self.target_year,
            "growth_pct_per_year": self.model.growth_pct_per_year,
            "by_group": {
                g: o.growth_pct_per_year
                for g, o in sorted(self.model.groups.items())
                if o.growth_pct_per_year is not None
            },
            "by_treatment": {
                t: o.growth_pct_per_year
                for t, o in sorted(self.model.treatments.items())
                if o.growth_pct_per_year is not None
            },
        }

    @property
    def norm_multipliers(self) -> dict[str, Any]:
        """Norm multiplier settings: global, per group and per treatment."""
        return {
            "norm_multiplier": self.model.norm_multiplier,
            "by_group": {
                g: o.norm_multiplier
                for g, o in sorted(self.model.groups.items())
                if o.norm_multiplier is not None
            },
            "by_treatment": {
                t: o.norm_multiplier
                for t, o in sorted(self.model.treatments.items())
                if o.norm_multiplier is not None
            },
        }

    def growth_pct_for(self, treatment: Treatment) -> float:
        """Yearly demand growth (%) of a treatment: treatment, else group, else global."""
        own = self.model.treatments.get(treatment.id)
        if own is not None and own.growth_pct_per_year is not None:
            return float(own.growth_pct_per_year)
        group = self.model.groups.get(treatment.group_id)
        if group is not None and group.growth_pct_per_year is not None:
            return float(group.growth_pct_per_year)
        return float(self.model.growth_pct_per_year)

    def growth_factor_for(self, treatment: Treatment) -> float:
        """Demand factor of a treatment: (1 + g/100) ^ (target_year - base_year)."""
        return (1.0 + self.growth_pct_for(treatment) / 100.0) ** self.years

    def norm_multiplier_for(self, treatment: Treatment) -> float:
        """Norm factor of a treatment: treatment, else group, else global multiplier."""
        own = self.model.treatments.get(treatment.id)
        if own is not None and own.norm_multiplier is not None:
            return float(own.norm_multiplier)
        group = self.model.groups.get(treatment.group_id)
        if group is not None and group.norm_multiplier is not None:
            return float(group.norm_multiplier)
        return float(self.model.norm_multiplier)

    # --- applying -------------------------------------------------------------------------
    def apply(self, instance: Instance) -> Instance:
        """The instance of this run: demand grown to the target year, norms multiplied.

        The baseline (today's flows and volumes) is left as it is. Closures are not applied
        here: they are ``force_close`` entries of :attr:`params` (see :meth:`params_for`).
        """
        factors = [self.growth_factor_for(t) for t in instance.treatments]
        multipliers = [self.norm_multiplier_for(t) for t in instance.treatments]
        if all(f == 1.0 for f in factors) and all(m == 1.0 for m in multipliers):
            return instance
        treatments = tuple(
            t if m == 1.0 else _scaled_treatment(t, m)
            for t, m in zip(instance.treatments, multipliers, strict=True)
        )
        demand = instance.demand * np.asarray(factors, dtype=float)[None, :]
        return dataclasses.replace(
            instance, treatments=treatments, demand=demand, meta=dict(instance.meta)
        )

    def params_for(self, instance: Instance) -> SolveParams:
        """:attr:`params` restricted to the instance: closures of sites outside it are dropped.

        A closure names one hospital; in a sweep over regions it matters only in its own region.
        Other force_close / force_keep entries are passed on unchanged.
        """
        present = set(instance.site_ids)
        closed = set(self.closures) - present
        if not closed:
            return self.params
        force_close = [
            entry
            for entry in self.params.force_close
            if not (entry.site_id in closed and entry.intervention_id == "*")
        ]
        return self.params.model_copy(update={"force_close": force_close})

    def applied(self, instance: Instance) -> dict[str, Any]:
        """What :meth:`apply` changes for this instance: factors that differ from 1."""
        return {
            "years_of_growth": self.years,
            "demand_factor": {
                t.id: round(f, 6)
                for t in instance.treatments
                if (f := self.growth_factor_for(t)) != 1.0
            },
            "norm_multiplier": {
                t.id: m for t in instance.treatments if (m := self.norm_multiplier_for(t)) != 1.0
            },
            "closures": sorted(set(self.closures) & set(instance.site_ids)),
        }

    def check(
        self,
        *,
        treatment_ids: Iterable[str] | None = None,
        group_ids: Iterable[str] | None = None,
        site_ids: Iterable[str] | None = None,
    ) -> None:
        """Raise :class:`ScenarioError` for treatment, group or site ids that a dataset lacks."""
        checks = (
            ("treatments", self.model.treatments, treatment_ids),
            ("margin_by_treatment", self.params.margin_by_treatment, treatment_ids),
            ("groups", self.model.groups, group_ids),
        )
        for key, named, known in checks:
            if known is None:
                continue
            known = set(known)
            for name in named:
                if name not in known:
                    raise ScenarioError(
                        self.source or self.base_name,
                        f"{key}.{name}",
                        f"unknown id{_suggest(name, known)}",
                    )
        if site_ids is not None:
            known_sites = set(site_ids)
            for site in self.closures:
                if site not in known_sites:
                    raise ScenarioError(
                        self.source or self.base_name,
                        "closures",
                        f"unknown site {site!r}{_suggest(site, known_sites)}",
                    )
        known_treatments = None if treatment_ids is None else set(treatment_ids)
        known_sites = None if site_ids is None else set(site_ids)
        for key, index, kind, name in self._referenced_ids():
            known = known_sites if kind == "site" else known_treatments
            if known is None or name == "*" or name in known:
                continue
            raise ScenarioError(
                self.source or self.base_name,
                f"{key}[{index}]",
                f"unknown {kind} {name!r}{_suggest(name, known)}",
            )

    def _referenced_ids(self) -> list[tuple[str, int, str, str]]:
        """(key, entry index, "site" | "treatment", id) of every id in the solve parameters.

        Closures are left out (they are reported under their own key).
        """
        closures = set(self.closures)
        refs: list[tuple[str, int, str, str]] = []
        for key in ("force_close", "force_keep", "capacity"):
            for index, entry in enumerate(getattr(self.params, key)):
                if key == "force_close" and entry.intervention_id == "*" and (
                    entry.site_id in closures
                ):
                    continue
                refs.append((key, index, "site", entry.site_id))
                refs.append((key, index, "treatment", entry.intervention_id))
        for index, bundle in enumerate(self.params.bundles):
            for treatment in bundle:
                refs.append(("bundles", index, "treatment", treatment))
        return refs

    def outside(self, instance: Instance) -> list[str]:
        """Warnings for sites named by this scenario that exist but lie outside ``instance``
        (another region): they do not act here, and the planner should know."""
        present = set(instance.site_ids)
        named = dict.fromkeys(
            [("closures", s) for s in self.closures]
            + [(k, n) for k, _, kind, n in self._referenced_ids() if kind == "site" and n != "*"]
        )
        return [
            f"{key}: site {site!r} is not in region {instance.region_id}; ignored here"
            for key, site in named
            if site not in present
        ]

    # --- identity -------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """Every resolved parameter of this run, JSON-ready (for summary.json and hashing).

        Flat: the SolveParams fields (closures included in ``force_close``) next to ``name``,
        ``scenario`` (the file's name), ``grid`` (this run's grid values), ``overrides``,
        growth (``base_year``, ``target_year``, ``growth_pct_per_year``), ``norm_multiplier``,
        ``closures`` and the ``treatments`` / ``groups`` tables.
        """
        data = self.model.model_dump(mode="json")
        data.pop("name", None)
        return _json_ready(
            {
                "name": self.name,
                "scenario": self.base_name,
                "grid": self.grid_point,
                "overrides": self.overrides,
                **self.params.model_dump(mode="json"),
                "base_year": data["base_year"],
                "target_year": data["target_year"],
                "growth_pct_per_year": data["growth_pct_per_year"],
                "norm_multiplier": data["norm_multiplier"],
                "closures": data["closures"],
                "treatments": data["treatments"],
                "groups": data["groups"],
            }
        )

    def scenario_info(self, instance: Instance | None = None) -> dict[str, Any]:
        """What goes to ``summary["scenario"]``: :meth:`as_dict` plus the applied factors."""
        info = self.as_dict()
        info["description"] = self.description
        info["source"] = self.source
        if instance is not None:
            info["applied"] = self.applied(instance)
        return info

    def run_id(self, data_fingerprint: str, region_id: str) -> str:
        """Short stable id (12 hex of sha256) of this run on these data and this region."""
        payload = json.dumps(
            {
                "format": SCENARIO_FORMAT,
                "scenario": self.as_dict(),
                "data": data_fingerprint,
                "region": region_id,
            },
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]

    def label(self) -> str:
        """Short text of the grid point, e.g. ``margin=0.1 max_travel=none objective=travel``."""
        if not self.grid_point:
            return self.name
        return " ".join(f"{k}={_format_value(v)}" for k, v in self.grid_point.items())


def _scaled_treatment(treatment: Treatment, factor: float) -> Treatment:
    norm = None if treatment.norm is None else float(treatment.norm) * factor
    tiers = (
        None
        if treatment.tier_norms is None
        else {role: float(value) * factor for role, value in treatment.tier_norms.items()}
    )
    return dataclasses.replace(treatment, norm=norm, tier_norms=tiers)


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
    import stat

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
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(display, "(toml)", str(exc)) from None


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
