"""Typed inputs of the reallocation model.

An :class:`Instance` is everything the MIP needs for one region (or for the whole country when
regions are solved jointly): areas, sites, treatments with their norms, demand, travel times and
the baseline (who treats whom today). It is pure data: this package never reads files and knows
nothing about maps; ``geo`` and ``scenarios`` assemble instances from tables.

Array conventions (A areas, S sites, T treatments), all ``float64``:

* ``demand[a, t]`` patients per year of area ``a`` needing treatment ``t``;
* ``travel_min[a, s]`` car travel minutes from area ``a`` to site ``s`` (``inf`` = no route);
* ``baseline_volume[s, t]`` patients treated per year today;
* ``baseline_flow[a, s, t]`` patients of ``a`` treated at ``s`` today; it sums over ``s`` to
  ``demand`` of the baseline year and over ``a`` to ``baseline_volume``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from herschik.i18n import translate_name


@dataclass(frozen=True)
class Treatment:
    """A treatment (intervention) whose providers may be reallocated.

    ``norm`` is the minimum yearly volume per provider, or ``None`` when no volume norm applies
    (the treatment is still assigned, just not constrained). ``tier_norms`` maps a site role to
    its norm for tiered norms (head-and-neck new patients: HHOC 200, PP 80, PPR 50); a site whose
    role is not in the mapping gets ``norm``.
    """

    id: str
    group_id: str = ""
    name: str = ""
    norm: float | None = None
    tier_norms: Mapping[str, float] | None = None

    def norm_for(self, role: str) -> float | None:
        """The volume norm that applies at a site with ``role``."""
        if self.tier_norms and role in self.tier_norms:
            return float(self.tier_norms[role])
        return None if self.norm is None else float(self.norm)


@dataclass(frozen=True)
class Site:
    """A hospital location. ``role`` selects the tier of tiered norms (norms.csv
    ``applies_to_tier``: HHOC, PP, PPR)."""

    id: str
    name: str = ""
    region_id: str = ""
    role: str = "PP"
    organisation: str = ""


@dataclass(frozen=True)
class ProcessNorm:
    """A norm on the process (e.g. share treated within 7 days): carried, never optimised."""

    id: str
    group_id: str
    name: str
    value: float
    unit: str


@dataclass
class Instance:
    """One planning problem: a region's areas, sites, treatments, demand, travel and baseline."""

    region_id: str
    area_ids: tuple[str, ...]
    sites: tuple[Site, ...]
    treatments: tuple[Treatment, ...]
    demand: np.ndarray
    travel_min: np.ndarray
    baseline_volume: np.ndarray
    baseline_flow: np.ndarray
    process_norms: tuple[ProcessNorm, ...] = ()
    #: free-form provenance, e.g. {"baseline": "illustrative", "network": "default"}
    meta: dict[str, str] = field(default_factory=dict)
    #: area names aligned with ``area_ids`` (empty: unnamed), for tables and messages
    area_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n_areas, n_sites, n_treat = len(self.area_ids), len(self.sites), len(self.treatments)
        self.demand = np.asarray(self.demand, dtype=float)
        self.travel_min = np.asarray(self.travel_min, dtype=float)
        self.baseline_volume = np.asarray(self.baseline_volume, dtype=float)
        self.baseline_flow = np.asarray(self.baseline_flow, dtype=float)
        expected = {
            "demand": (self.demand, (n_areas, n_treat)),
            "travel_min": (self.travel_min, (n_areas, n_sites)),
            "baseline_volume": (self.baseline_volume, (n_sites, n_treat)),
            "baseline_flow": (self.baseline_flow, (n_areas, n_sites, n_treat)),
        }
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise ValueError(f"Instance.{name} has shape {array.shape}, expected {shape}")
        for name in ("demand", "baseline_volume", "baseline_flow"):
            array = getattr(self, name)
            if not np.all(np.isfinite(array)) or np.any(array < 0):
                raise ValueError(f"Instance.{name} must be finite and non-negative")
        if np.any(np.isnan(self.travel_min)) or np.any(self.travel_min < 0):
            raise ValueError("Instance.travel_min must be non-negative (inf = unreachable)")
        for kind, ids in (
            ("area", self.area_ids),
            ("site", self.site_ids),
            ("treatment", self.treatment_ids),
        ):
            if len(set(ids)) != len(ids):
                raise ValueError(f"Instance has duplicate {kind} ids")

    # --- convenient views -------------------------------------------------------------------
    @property
    def site_ids(self) -> tuple[str, ...]:
        return self._ids_of("_site_ids_memo", self.sites)

    @property
    def treatment_ids(self) -> tuple[str, ...]:
        return self._ids_of("_treatment_ids_memo", self.treatments)

    def _ids_of(self, key: str, records: tuple[Site, ...] | tuple[Treatment, ...]
                ) -> tuple[str, ...]:
        """The ids of ``records``, computed once per tuple (as :meth:`norm_matrix`): the
        verifier, the tables and the solve ask for them thousands of times per run. The memo
        is keyed by the tuple's identity (fields are tuples of frozen records, so a new value
        is a new tuple); ``dataclasses.replace`` does not copy it (not a field)."""
        memo = self.__dict__.get(key)
        if memo is None or memo[0] is not records:
            memo = (records, tuple(record.id for record in records))
            self.__dict__[key] = memo
        return memo[1]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(areas, sites, treatments)."""
        return len(self.area_ids), len(self.sites), len(self.treatments)

    def norm_matrix(self) -> np.ndarray:
        """Norm per (site, treatment); ``nan`` where the treatment has no volume norm.

        Computed once per ``sites`` and ``treatments`` (tuples of frozen records): every
        sub-problem's build asks for it several times, and a Python loop over sites x
        treatments cost a sweep run ~10 % of its solve. A copy each call, as before."""
        memo = self.__dict__.get("_norm_memo")
        if memo is None or memo[0] is not self.sites or memo[1] is not self.treatments:
            norms = np.full((len(self.sites), len(self.treatments)), np.nan)
            for s, site in enumerate(self.sites):
                for t, treatment in enumerate(self.treatments):
                    value = treatment.norm_for(site.role)
                    if value is not None:
                        norms[s, t] = value
            memo = (self.sites, self.treatments, norms)
            self.__dict__["_norm_memo"] = memo
        return memo[2].copy()

    def baseline_travel(self) -> np.ndarray:
        """Patient-weighted mean baseline travel minutes per (area, treatment).

        ``nan`` where an area had no baseline patients of that treatment.
        """
        patients = self.baseline_flow.sum(axis=1)
        travel = np.where(np.isfinite(self.travel_min), self.travel_min, 0.0)
        minutes = np.einsum("ast,as->at", self.baseline_flow, travel)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(patients > 0, minutes / np.where(patients > 0, patients, 1), np.nan)

    def with_treatments(self, treatments: list[int]) -> Instance:
        """A copy with only the treatments of index ``treatments`` (in that order): e.g. the
        treatments a partial plan solved."""
        idx = list(treatments)
        return Instance(
            region_id=self.region_id,
            area_ids=self.area_ids,
            sites=self.sites,
            treatments=tuple(self.treatments[t] for t in idx),
            demand=self.demand[:, idx],
            travel_min=self.travel_min,
            baseline_volume=self.baseline_volume[:, idx],
            baseline_flow=self.baseline_flow[:, :, idx],
            process_norms=self.process_norms,
            meta=dict(self.meta),
            area_names=self.area_names,
        )

    # --- labels for tables and messages ------------------------------------------------------
    def area_name(self, a: int) -> str:
        return self.area_names[a] if len(self.area_names) == len(self.area_ids) else ""

    def area_label(self, a: int) -> str:
        """``"Name (id)"``, or the id when the area has no name."""
        name = self.area_name(a)
        return f"{name} ({self.area_ids[a]})" if name else self.area_ids[a]

    def site_label(self, s: int) -> str:
        site = self.sites[s]
        return f"{site.name} ({site.id})" if site.name else site.id

    def treatment_label(self, t: int) -> str:
        treatment = self.treatments[t]
        name = translate_name(treatment.name) if treatment.name else ""
        return f"{name} ({treatment.id})" if name else treatment.id
