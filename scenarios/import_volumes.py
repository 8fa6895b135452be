"""`herschik data import-volumes`: a planner's hospital volumes -> a complete dataset.

The table (geo/volume_table.py) is matched to the base dataset's hospitals and treatments
(geo/hospital_match.py). Per region and treatment that the table covers (it names at least one
of the region's hospitals for that treatment), the table is the whole status quo: its hospitals
are today's providers with the table's mean yearly volume, every other site of the region has
none. Everything else keeps the base dataset's values. Then, per covered region and treatment:

* out-of-region patients: a stated share of each hospital's volume (``--outside-share``; by
  default estimated when the table covers every region: a region's volume above its
  population's share of the national total) comes from outside the region. They are given the
  hospital's own area as origin, so they stay at their hospital today and, if it stops, travel
  from there;
* demand of the region's residents (volume minus outside patients) is spread over the areas
  like the base dataset's demand of that treatment (age-weighted population; DATA.md);
* flows: a doubly constrained spatial-interaction model with a fitted distance decay
  (geo/interaction.py), stored in ``baseline_flows.csv`` so every site's inflow is its volume.

Everything is written into one staged folder (``--out`` rules as for ``solve``) and loaded back
before it is swapped in, so the folder is a valid ``--data`` dataset or absent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from herschik.geo.dataset import baseline_source_line, baseline_source_text, load_dataset
from herschik.geo.dataset_export import dataset_files, write_area_geometries
from herschik.geo.hospital_match import hospital_matcher, treatment_matcher
from herschik.geo.interaction import (
    Block,
    balance,
    fit_decay,
    misallocated_share,
    nearest_share,
)
from herschik.geo.volume_table import IMPUTATION_RULE, VolumeTable, read_volume_table
from herschik.optimiser.baseline import reconstruct_baseline_flows
from herschik.scenarios.assemble import travel_minutes
from rich.table import Table

from herschik.atomic import staged_dir, write_csv, write_json, write_text
from herschik.errors import DataError
from herschik.i18n import N_, _, format_number, format_percent

#: demand weight of a person aged 65+ relative to one under 65 (as tools/build_default.py)
W65 = 4.0
#: a fitted decay below this (per minute; half weight beyond ~70 min) is reported as weak
WEAK_DECAY = 0.01
#: the console translates it (import_report.json keeps the English text)
WEAK_DECAY_WARNING = N_(
    "the fitted distance decay is {decay}/min: the table's volumes barely depend on where "
    "patients live, so today's flows spread over the whole region (mean travel {fitted} min "
    "against {shortest} min for the shortest-travel reconstruction); if you know better, pass "
    "--decay")
#: flows below this (patients/yr) are dropped; each site's rest goes to its largest flow
MIN_FLOW = 1e-3


@dataclass
class ImportResult:
    dataset: Any
    report: dict[str, Any]
    matches: pd.DataFrame
    volumes: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def file_identity(path: Path) -> dict[str, str]:
    """Name, modification date (UTC) and sha256 of the imported file: its baseline source."""
    data = path.read_bytes()
    date = dt.datetime.fromtimestamp(path.stat().st_mtime, tz=dt.timezone.utc).date()
    return {"file": path.name, "date": date.isoformat(),
            "sha256": hashlib.sha256(data).hexdigest()}


def _match_rows(table: VolumeTable, base: Any) -> pd.DataFrame:
    hospitals = hospital_matcher(base.sites)
    treatments = treatment_matcher(base.treatments)
    rows = []
    for row in table.rows:
        site = hospitals.match(row.hospital, table.file, row.row)
        treatment = treatments.match(row.treatment, table.file, row.row)
        rows.append({
            "row": row.row, "hospital": row.hospital, "site_id": site.target,
            "site_name": site.target_name, "hospital_match": site.kind,
            "hospital_score": site.score, "treatment": row.treatment,
            "intervention_id": treatment.target, "treatment_match": treatment.kind,
            "treatment_score": treatment.score, "year": row.year, "patients": row.patients,
            "low": row.low, "high": row.high, "imputed": row.imputed,
            "published": row.raw_patients,
        })
    matches = pd.DataFrame(rows)
    key = ["site_id", "intervention_id", "year"]
    duplicated = matches.duplicated(key, keep="first").to_numpy()
    if duplicated.any():
        second = matches[duplicated].iloc[0]
        first = matches[(matches[key].fillna(-1) == second[key].fillna(-1)).all(axis=1)].iloc[0]
        year = "" if pd.isna(second["year"]) else f" and year {int(second['year'])}"
        raise DataError(table.file, int(second["row"]), "hospital",
                        f"duplicate of row {int(first['row'])}: {second['site_name']} and "
                        f"{second['intervention_id']}{year} twice")
    return matches


def _mean_volumes(matches: pd.DataFrame) -> pd.DataFrame:
    """Mean yearly volume per hospital and treatment; a hospital absent in a year of its
    treatment treated nobody that year (registries list every provider); spread kept."""
    frame = matches.copy()
    frame["year"] = frame["year"].fillna(0).astype(int)
    years = frame.groupby("intervention_id")["year"].nunique()
    grouped = frame.groupby(["site_id", "intervention_id"], sort=True)
    out = grouped.agg(site_name=("site_name", "first"), volume=("patients", "sum"),
                      volume_low=("low", "sum"), volume_high=("high", "sum"),
                      year_min=("patients", "min"), year_max=("patients", "max"),
                      years_listed=("year", "nunique"), imputed_rows=("imputed", "sum"))
    out = out.reset_index()
    n_years = out["intervention_id"].map(years).to_numpy(float)
    for column in ("volume", "volume_low", "volume_high"):
        out[column] = np.round(out[column].to_numpy(float) / n_years, 4)
    out["years"] = n_years.astype(int)
    listed = out["years_listed"].to_numpy() < n_years
    out.loc[listed, "year_min"] = 0.0  # absent in a year = none that year
    out["imputed_rows"] = out["imputed_rows"].astype(int)
    return out.drop(columns="years_listed")


def _area_weights(base: Any, area_ids: list[str], treatment: str) -> np.ndarray:
    """The base dataset's demand of ``treatment`` per area, else age-weighted population."""
    demand = base.demand[base.demand["intervention_id"] == treatment].set_index("area_id")
    weights = demand["patients"].reindex(area_ids).fillna(0.0).to_numpy(float)
    if weights.sum() > 0:
        return weights
    areas = base.areas.set_index("area_id").loc[area_ids]
    return ((areas["population"] - areas["pop_65plus"]) + W65 * areas["pop_65plus"]).to_numpy(
        float)


def _outside_shares(base: Any, volumes: pd.DataFrame, covered: pd.DataFrame,
                    outside: str | float) -> dict[tuple[str, str], float]:
    """Share of each covered (region, treatment) volume that lives outside the region."""
    shares: dict[tuple[str, str], float] = {}
    regions = base.region_ids()
    weight = ((base.areas["population"] - base.areas["pop_65plus"])
              + W65 * base.areas["pop_65plus"]).groupby(base.areas["region_id"]).sum()
    for treatment, group in covered.groupby("intervention_id"):
        if outside != "auto":
            for region in group["region_id"]:
                shares[(region, treatment)] = float(outside)
            continue
        national = set(group["region_id"]) == set(regions)
        total = float(group["volume"].sum())
        for region, volume in zip(group["region_id"], group["volume"], strict=True):
            if not national or volume <= 0:
                shares[(region, treatment)] = 0.0
                continue
            expected = total * float(weight[region]) / float(weight.sum())
            shares[(region, treatment)] = max(0.0, (float(volume) - expected) / float(volume))
    return shares


def _round_flows(flows: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """Flows rounded to 4 decimals, tiny ones dropped, each site's column summing to its
    volume exactly (the rest on its largest flow)."""
    out = np.where(flows >= MIN_FLOW, np.round(flows, 4), 0.0)
    for s in np.nonzero(volume > 0)[0]:
        rest = round(float(volume[s]) - float(out[:, s].sum()), 4)
        out[int(np.argmax(out[:, s])), s] += rest
    return np.round(out, 4)


@dataclass
class _Plan:
    region: str
    treatment: str
    area_ids: list[str]
    site_ids: list[str]
    minutes: np.ndarray
    volume: np.ndarray
    outside: np.ndarray
    residents: np.ndarray


def _plans(base: Any, volumes: pd.DataFrame, network: Any, outside: str | float
           ) -> tuple[list[_Plan], pd.DataFrame]:
    site_region = base.sites.set_index("site_id")["region_id"]
    located = volumes.assign(region_id=volumes["site_id"].map(site_region))
    covered = located.groupby(["region_id", "intervention_id"], sort=True, as_index=False)[
        "volume"].sum()
    shares = _outside_shares(base, located, covered, outside)
    covered["outside_share"] = [shares[(r, t)] for r, t in
                                zip(covered["region_id"], covered["intervention_id"], strict=True)]
    plans = []
    minutes_of: dict[str, tuple[list[str], list[str], np.ndarray]] = {}
    for row in covered.itertuples(index=False):
        if row.region_id not in minutes_of:
            area_ids = list(base.areas.loc[base.areas["region_id"] == row.region_id, "area_id"])
            site_ids = list(base.sites.loc[base.sites["region_id"] == row.region_id, "site_id"])
            minutes_of[row.region_id] = (area_ids, site_ids,
                                         travel_minutes(base, area_ids, site_ids, network))
        area_ids, site_ids, minutes = minutes_of[row.region_id]
        mine = located[(located["region_id"] == row.region_id)
                       & (located["intervention_id"] == row.intervention_id)]
        volume = mine.set_index("site_id")["volume"].reindex(site_ids).fillna(0.0).to_numpy()
        outside_at = volume * row.outside_share
        weights = _area_weights(base, area_ids, row.intervention_id)
        residents = (volume.sum() - outside_at.sum()) * weights / weights.sum()
        plans.append(_Plan(row.region_id, row.intervention_id, area_ids, site_ids, minutes,
                           volume, outside_at, residents))
    return plans, covered


def import_volumes(path: str | Path, base: Any, network: Any = None,
                   outside: str | float = "auto", decay: float | None = None) -> ImportResult:
    """Build the dataset of a volume table on top of ``base`` (see the module docstring)."""
    path = Path(path)
    table = read_volume_table(path)
    matches = _match_rows(table, base)
    volumes = _mean_volumes(matches)
    plans, covered = _plans(base, volumes, network, outside)
    groups = sorted(set(base.sites["site_type"]), key=lambda g: (g != "general", g))
    group_of = base.sites.set_index("site_id")["site_type"].map(
        {g: i for i, g in enumerate(groups)})
    blocks = [Block(p.residents, p.volume - p.outside, p.minutes,
                    group_of.reindex(p.site_ids).to_numpy(int)) for p in plans]
    fitted = fit_decay(blocks, len(groups)) if decay is None else None
    beta = fitted.beta if fitted is not None else float(decay)  # type: ignore[arg-type]
    weights = fitted.attractiveness if fitted is not None else None

    flow_rows: list[pd.DataFrame] = []
    demand_rows: list[pd.DataFrame] = []
    near_fit = near_lp = weight_sum = 0.0
    travel_fit = travel_lp = 0.0
    for plan, block in zip(plans, blocks, strict=True):
        try:
            flows = balance(block.demand, block.volume, plan.minutes, beta)
            lp = reconstruct_baseline_flows(block.demand[:, None], plan.minutes,
                                            block.volume[:, None])[:, :, 0]
        except ValueError as error:
            raise DataError(table.file, None, "hospital",
                            f"region {plan.region}, treatment {plan.treatment}: {error}") from None
        residents_total = float(block.volume.sum())
        if residents_total > 0:
            near_fit += nearest_share(flows, plan.minutes, plan.volume) * residents_total
            near_lp += nearest_share(lp, plan.minutes, plan.volume) * residents_total
            finite = np.where(np.isfinite(plan.minutes), plan.minutes, 0.0)
            travel_fit += float((flows * finite).sum())
            travel_lp += float((lp * finite).sum())
            weight_sum += residents_total
        # out-of-region patients arrive at their hospital: origin = the hospital's own area
        home = np.argmin(np.where(np.isfinite(plan.minutes), plan.minutes, np.inf), axis=0)
        for s in np.nonzero(plan.outside > 0)[0]:
            flows[home[s], s] += plan.outside[s]
        flows = _round_flows(flows, plan.volume)
        a_idx, s_idx = np.nonzero(flows > 0)
        flow_rows.append(pd.DataFrame({
            "area_id": np.asarray(plan.area_ids)[a_idx], "site_id": np.asarray(plan.site_ids)[
                s_idx], "intervention_id": plan.treatment, "patients": flows[a_idx, s_idx]}))
        per_area = np.round(flows.sum(axis=1), 4)
        has = per_area > 0
        demand_rows.append(pd.DataFrame({"area_id": np.asarray(plan.area_ids)[has],
                                         "intervention_id": plan.treatment,
                                         "patients": per_area[has]}))

    dataset = _new_dataset(base, table, path, volumes, covered, flow_rows, demand_rows, beta,
                           decay is None, outside)
    fit = {
        "decay_per_minute": round(beta, 6),
        "decay_fitted": decay is None,
        "half_weight_minutes": round(float(np.log(2) / beta), 1) if beta > 0 else None,
        "attractiveness": None if weights is None else {
            g: round(float(w), 4) for g, w in zip(groups, weights, strict=True)},
        "misallocated_share_no_decay": round(misallocated_share(blocks, 0.0), 4),
        "misallocated_share_fitted_decay": round(misallocated_share(blocks, beta, weights), 4),
        "nearest_provider_share_min_travel": round(near_lp / weight_sum, 4) if weight_sum else None,
        "nearest_provider_share_fitted": round(near_fit / weight_sum, 4) if weight_sum else None,
        "mean_travel_min_min_travel": round(travel_lp / weight_sum, 2) if weight_sum else None,
        "mean_travel_min_fitted": round(travel_fit / weight_sum, 2) if weight_sum else None,
    }
    if beta < WEAK_DECAY:
        fit["warning"] = WEAK_DECAY_WARNING.format(
            decay=f"{beta:.4f}", fitted=fit["mean_travel_min_fitted"],
            shortest=fit["mean_travel_min_min_travel"])
    report = _report(table, path, base, matches, volumes, covered, dataset, fit, outside)
    return ImportResult(dataset=dataset, report=report, matches=_match_table(matches, base),
                        volumes=volumes)


def _new_dataset(base: Any, table: VolumeTable, path: Path, volumes: pd.DataFrame,
                 covered: pd.DataFrame, flow_rows: list[pd.DataFrame],
                 demand_rows: list[pd.DataFrame], beta: float, fitted: bool,
                 outside: str | float) -> Any:
    dataset = base.copy()
    site_region = base.sites.set_index("site_id")["region_id"]
    area_region = base.areas.set_index("area_id")["region_id"]
    pairs = set(zip(covered["region_id"], covered["intervention_id"], strict=True))

    def drop(frame: pd.DataFrame, region_of: pd.Series, key: str) -> pd.DataFrame:
        pair = list(zip(frame[key].map(region_of), frame["intervention_id"], strict=True))
        return frame[[p not in pairs for p in pair]]

    kept_volumes = drop(base.baseline_volumes, site_region, "site_id")
    new_volumes = volumes.loc[volumes["volume"] > 0, ["site_id", "intervention_id", "volume"]]
    dataset.baseline_volumes = pd.concat([kept_volumes, new_volumes]).sort_values(
        ["site_id", "intervention_id"]).reset_index(drop=True)
    kept_demand = drop(base.demand, area_region, "area_id")
    dataset.demand = pd.concat([kept_demand, *demand_rows]).sort_values(
        ["area_id", "intervention_id"]).reset_index(drop=True)
    old_flows = [] if base.baseline_flows is None else [
        drop(base.baseline_flows, area_region, "area_id")]
    dataset.baseline_flows = pd.concat([*old_flows, *flow_rows]).sort_values(
        ["area_id", "site_id", "intervention_id"]).reset_index(drop=True)
    identity = file_identity(path)
    dataset.name = f"{base.name}+{path.stem}"
    dataset.meta = {
        "name": dataset.name,
        "baseline": "user",
        "description": (
            f"{base.name} with today's hospital volumes from {path.name} "
            f"({len(pairs)} region x treatment pairs; the rest from {base.name}). Demand per "
            "area from population scaled to the table's totals, flows from a doubly "
            "constrained spatial-interaction model (herschik data import-volumes; DATA.md)."),
        "crs": base.meta.get("crs", "EPSG:28992"),
        "baseline_source": {**identity, "rows": len(table.rows), "base": str(base.name),
                            "decay_per_minute": round(beta, 6), "decay_fitted": fitted,
                            "outside_share": outside if outside == "auto" else float(outside)},
    }
    if base.meta.get("synthetic"):
        dataset.meta["synthetic"] = True
    return dataset


def _match_table(matches: pd.DataFrame, base: Any) -> pd.DataFrame:
    return matches[["row", "hospital", "hospital_match", "hospital_score", "site_id",
                    "site_name", "treatment", "treatment_match", "treatment_score",
                    "intervention_id", "year", "published", "patients", "imputed"]].copy()


def _report(table: VolumeTable, path: Path, base: Any, matches: pd.DataFrame,
            volumes: pd.DataFrame, covered: pd.DataFrame, dataset: Any, fit: dict[str, Any],
            outside: str | float) -> dict[str, Any]:
    flows = dataset.baseline_flows
    inflow = flows.groupby(["site_id", "intervention_id"])["patients"].sum()
    hospitals = []
    for row in volumes.itertuples(index=False):
        got = float(inflow.get((row.site_id, row.intervention_id), 0.0))
        hospitals.append({
            "site_id": row.site_id, "site_name": row.site_name,
            "intervention_id": row.intervention_id, "volume_table": float(row.volume),
            "volume_reproduced": round(got, 4), "volume_low": float(row.volume_low),
            "volume_high": float(row.volume_high), "years": int(row.years),
            "year_min": float(row.year_min), "year_max": float(row.year_max),
            "imputed_rows": int(row.imputed_rows)})
    treatments = list(base.assigned_treatments()["intervention_id"])
    sources = []
    for region in base.region_ids():
        for treatment in treatments:
            hit = covered[(covered["region_id"] == region)
                          & (covered["intervention_id"] == treatment)]
            sources.append({"region_id": region, "intervention_id": treatment,
                            "source": path.name if len(hit) else f"base ({base.name})",
                            "outside_share": round(float(hit["outside_share"].iloc[0]), 4)
                            if len(hit) else None})
    counts = matches["hospital_match"].value_counts().to_dict()
    return {
        "source": {**file_identity(path), "rows": len(table.rows), "format": table.delimiter,
                   "encoding": table.encoding, "ignored_columns": list(table.ignored_columns),
                   "base": str(base.name)},
        "method": {
            "demand": "each area's share of the base dataset's demand of the treatment "
                      "(age-weighted population: 65+ counts 4x), scaled to the table's "
                      "regional total minus the out-of-region patients",
            "outside": ("auto: a region's volume above its age-weighted population share of the "
                        "national total when the table covers every region, else 0"
                        if outside == "auto" else f"stated: {float(outside):g} of every volume"),
            "outside_origin": "the hospital's own area (nearest area by travel time)",
            "flows": "doubly constrained spatial interaction, exp(-decay x minutes), "
                     "balanced by iterative proportional fitting",
            "imputation": IMPUTATION_RULE,
            "years": "mean per year over the years the table lists for the treatment; a "
                     "hospital absent in a year counts 0 for it",
        },
        "fit": {**fit, "max_volume_error": round(max(
            abs(h["volume_reproduced"] - h["volume_table"]) for h in hospitals), 6)},
        "matches": {"rows": len(matches), **{str(k): int(v) for k, v in counts.items()},
                    "fuzzy_treatments": int((matches["treatment_match"] == "fuzzy").sum())},
        "imputed_rows": [
            {"row": int(r.row), "site_id": r.site_id, "intervention_id": r.intervention_id,
             "published": r.published, "low": float(r.low), "high": float(r.high),
             "imputed": float(r.patients)}
            for r in matches[matches["imputed"]].itertuples(index=False)],
        "hospitals": hospitals,
        "sources": sources,
    }


def write_import(result: ImportResult, out: str | Path) -> Path:
    """The dataset, import_report.json, import_matches.csv and imported_volumes.csv in one
    staged folder; the dataset is loaded back (every check of ``--data``) before the swap."""
    out = Path(out)
    with staged_dir(out, kind="dataset") as staging:  # a dataset: never over a run folder
        for name, text in dataset_files(result.dataset).items():
            write_text(staging / name, text)
        if result.dataset.area_geometries is not None:
            write_area_geometries(result.dataset.area_geometries, staging / "areas.gpkg")
        write_json(staging / "import_report.json", result.report)
        write_csv(staging / "import_matches.csv", result.matches)
        write_csv(staging / "imported_volumes.csv", result.volumes)
        load_dataset(staging)  # refuses anything --data would refuse, before the swap
    return out


def print_import(result: ImportResult, out: Path, console: Any) -> None:
    """What the import did, in the terminal (first line: the baseline source)."""
    report = result.report
    console.print(baseline_source_text(baseline_source_line(result.dataset.meta)), markup=False,
                  soft_wrap=True)
    matches = report["matches"]
    kinds = {"id": N_("by id"), "agb": N_("by AGB code"), "exact": N_("by exact name"),
             "fuzzy": N_("by similar name")}
    console.print(_("{rows} rows: {matched}; {imputed} imputed from intervals",
                    rows=format_number(matches["rows"], 0),
                    matched=", ".join(f"{format_number(matches.get(k, 0), 0)} {_(label)}"
                                      for k, label in kinds.items() if matches.get(k)),
                    imputed=format_number(len(report["imputed_rows"]), 0)))
    fuzzy = result.matches[result.matches["hospital_match"] == "fuzzy"].drop_duplicates(
        ["hospital", "site_id"])
    if len(fuzzy):
        table = Table(title=_("Hospitals matched by similarity (check them)"))
        for column in (_("row"), _("hospital"), _("site"), _("score")):
            table.add_column(column)
        for row in fuzzy.itertuples(index=False):
            table.add_row(str(row.row), row.hospital, f"{row.site_name} ({row.site_id})",
                          format_number(row.hospital_score, 1))
        console.print(table)
    fit = report["fit"]
    console.print(_(
        "distance decay {decay}/min ({how}); patients at their nearest provider: {fitted} "
        "(shortest-travel reconstruction {shortest}); every hospital volume reproduced "
        "(largest difference {error})",
        decay=format_number(fit["decay_per_minute"], 4),
        how=_("fitted") if fit["decay_fitted"] else _("given"),
        fitted=format_percent(fit["nearest_provider_share_fitted"], 0),
        shortest=format_percent(fit["nearest_provider_share_min_travel"], 0),
        error=format_number(fit["max_volume_error"], 4)))
    if fit.get("warning"):
        warning = _(WEAK_DECAY_WARNING, decay=format_number(fit["decay_per_minute"], 4),
                    fitted=format_number(fit["mean_travel_min_fitted"], 2),
                    shortest=format_number(fit["mean_travel_min_min_travel"], 2))
        console.print(_("Warning: {text}", text=warning), style="yellow", markup=False,
                      soft_wrap=True)
    from_table = sum(1 for s in report["sources"] if not s["source"].startswith("base"))
    console.print(_("{table} region x treatment pairs from the table, {base} from the base "
                    "dataset", table=from_table, base=len(report["sources"]) - from_table))
    console.print(_("wrote {out} (use it with --data {out})", out=out))
