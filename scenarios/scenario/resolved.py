"""One resolved run of a scenario file: its SolveParams, how it changes an instance (growth,
norm multipliers, closures), the checks against the data, and its stable identity (run id)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from herschik.optimiser.instance import Instance, Treatment
from herschik.optimiser.params import SolveParams
from herschik.scenarios.scenario.param_flags import param_flags
from herschik.scenarios.scenario.schema import (
    SCENARIO_FORMAT,
    ScenarioModel,
    _format_value,
    _json_ready,
    _suggest,
)

from herschik.errors import ScenarioError

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
        self._check_keyed_ids(treatment_ids, group_ids)
        self._check_closures(site_ids)
        self._check_referenced_ids(treatment_ids, site_ids)

    def _unknown(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(self.source or self.base_name, key, message)

    def _check_keyed_ids(
        self, treatment_ids: Iterable[str] | None, group_ids: Iterable[str] | None
    ) -> None:
        """The scenario's treatments and groups, and the keys of every treatment-keyed
        parameter."""
        # every treatment-keyed parameter (derived from SolveParams, as the CLI's flags are);
        # '*' means every treatment
        keyed = tuple(
            (spec.field, [t for t in getattr(self.params, spec.field) if t != "*"], treatment_ids)
            for spec in param_flags()
            if spec.kind == "mapping" and spec.key_choices is None
        )
        checks = (
            ("treatments", self.model.treatments, treatment_ids),
            *keyed,
            ("groups", self.model.groups, group_ids),
        )
        for key, named, known in checks:
            if known is None:
                continue
            known = set(known)
            for name in named:
                if name not in known:
                    raise self._unknown(f"{key}.{name}", f"unknown id{_suggest(name, known)}")

    def _check_closures(self, site_ids: Iterable[str] | None) -> None:
        if site_ids is None:
            return
        known_sites = set(site_ids)
        for site in self.closures:
            if site not in known_sites:
                raise self._unknown(
                    "closures", f"unknown site {site!r}{_suggest(site, known_sites)}")

    def _check_referenced_ids(
        self, treatment_ids: Iterable[str] | None, site_ids: Iterable[str] | None
    ) -> None:
        """The site and treatment ids inside the solve parameters (forced pairs, capacities,
        bundles)."""
        known_treatments = None if treatment_ids is None else set(treatment_ids)
        known_sites = None if site_ids is None else set(site_ids)
        for key, index, kind, name in self._referenced_ids():
            known = known_sites if kind == "site" else known_treatments
            if known is None or name == "*" or name in known:
                continue
            raise self._unknown(f"{key}[{index}]",
                                f"unknown {kind} {name!r}{_suggest(name, known)}")

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


