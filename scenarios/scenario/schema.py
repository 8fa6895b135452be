"""What a scenario file may say: the pydantic model of one resolved run (every SolveParams field
plus growth, norm multipliers, closures, per-treatment and per-group tables), its ranges, and the
small value helpers the loader and the resolved runs share ("none" words, deep merge, dotted keys).
"""
from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from herschik.optimiser.params import SolveParams
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
#: Deepest nesting of tables and arrays in a scenario file, and longest ``extends`` chain.
MAX_NESTING = 16
MAX_EXTENDS_DEPTH = 32

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


