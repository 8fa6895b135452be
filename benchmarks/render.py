"""RESULTS.md from results.json: the machine, one table per benchmark section, the goals.

Each ``_render_*`` turns its section of the results into Markdown lines and adds its goals
(goal, verdict, where we stand) and peak memories; ``render`` puts them in page order. The
measuring is benchmarks/sections.py's."""

from __future__ import annotations

import math
from typing import Any

from . import bench_regions
from .sections import GOAL_MEMORY_MB, GOAL_SWEEP_EVERY_OBJECTIVE_S, GOAL_SWEEP_S


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def _gap(value: Any) -> str:
    if value is None:
        return "–"
    return "0" if value == 0 else f"{100 * value:.2g} %"


def _met(flag: Any) -> str:
    return {True: "**met**", False: "**missed**"}.get(flag, "not measured")


def _status(entry: dict[str, Any]) -> str:
    st = entry.get("status", "–")
    if st == "killed":
        return f"killed at {_f(entry.get('wall_cap_seconds'), 0)} s cap"
    if st == "error":
        return "error"
    return st


def _solver_cells(entry: dict[str, Any]) -> str:
    return (f"{_f(entry.get('solve_wall_seconds'))} | {_status(entry)} | "
            f"{_gap(entry.get('mip_gap'))}")


_REGIONS_HEADER = (
    "| region | objective | areas × sites × treatments | instance build s | "
    "HiGHS model build s "
    "| HiGHS solve() s | HiGHS status | HiGHS gap | keep-set sub-problems | "
    "HiGHS B&B only solve() s | B&B only status | B&B/HiGHS | "
    "CBC solve() s | CBC status | "
    "CBC gap | PuLP model s (Σ) | CBC call s (Σ) | CBC/HiGHS | sub-problems | "
    "variables | constraints | binaries | peak MB HiGHS | peak MB CBC | "
    "≤ 1 s optimal | slowest sub-problems (HiGHS s) | code |")


def _regions_intro(reg: dict[str, Any]) -> list[str]:
    first_region = reg["regions"][0] if reg["regions"] else {}
    return ["## Regions (HiGHS vs CBC, same instance, same run)", "",
            f"Repeats: HiGHS {reg.get('repeats')}, CBC "
            f"{reg.get('cbc_repeats', reg.get('repeats'))}; default scenario "
            "(`SolveParams()`: margin 0) under the objective of the row (rows without "
            "one: travel, the default when they were measured); per-sub-problem time "
            "limit "
            f"{_f(first_region.get('time_limit_per_subproblem'), 0)} s. "
            "HiGHS model build = `build_arrays`; CBC `PuLP model` = building the PuLP "
            "`LpProblem` from the same arrays (inside the CBC solve time), `CBC call` = "
            "`prob.solve` (MPS write + CBC + read back); both (Σ) are summed over "
            "sub-problems, which run two at a time, so they can exceed the wall time. "
            "Sizes summed over the "
            "per-treatment sub-problems.", "",
            "`HiGHS` is the default path: the keep-set search (optimiser/"
            "keepset_search.py) on the sub-problems it covers (`keep-set sub-problems`), "
            "HiGHS' branch and bound on the others; `HiGHS B&B only` the same run with "
            "the search off (every sub-problem by HiGHS' branch and bound, the path "
            "before it); rows without those columns were measured before the search.",
            "", _REGIONS_HEADER, "|" + "---|" * 27]


def _judge_regions(reg: dict[str, Any]) -> None:
    """Each region's goal, judged against today's target (issue 16), stored in the results."""
    for r in reg["regions"]:
        wall = r.get("highs", {}).get("solve_wall_seconds")
        r["goal_region_met"] = bool(r.get("highs", {}).get("status") == "optimal"
                                    and wall is not None
                                    and wall <= bench_regions.GOAL_REGION_SECONDS)
    reg["goal_met"] = all(r["goal_region_met"] for r in reg["regions"])


def _region_row(r: dict[str, Any]) -> str:
    h, c, bb = r.get("highs", {}), r.get("cbc", {}), r.get("highs_bb", {})
    base = h if h.get("shape") else c
    shape = "×".join(str(x) for x in base.get("shape") or []) or "–"
    slowest = sorted((h.get("subproblem_seconds") or {}).items(), key=lambda kv: -kv[1])[:3]
    return (
        f"| {r['region']} | {r.get('objective', 'travel')} | {shape} | "
        f"{_f(base.get('instance_seconds'))} | "
        f"{_f(h.get('build_seconds'), 3)} | {_solver_cells(h)} | "
        f"{_f(h.get('keep_set_subproblems'))} | "
        f"{_f(bb.get('solve_wall_seconds'))} | {_status(bb) if bb else '–'} | "
        f"{_f(r.get('bb_over_highs'), 1)}{'×' if r.get('bb_over_highs') else ''} | "
        f"{_solver_cells(c)} | "
        f"{_f(c.get('pulp_model_seconds'))} | {_f(c.get('cbc_call_seconds'))} | "
        f"{_f(r.get('cbc_over_highs'), 1)}× | {_f(base.get('n_subproblems'))} | "
        f"{_f(base.get('n_vars'))} | {_f(base.get('n_rows'))} | "
        f"{_f(base.get('n_binaries'))} | {_f(h.get('peak_total_mb'), 0)} | "
        f"{_f(c.get('peak_total_mb'), 0)} | {_met(r.get('goal_region_met'))} | "
        f"{', '.join(f'{k} {v:.2f}' for k, v in slowest) or '–'} | "
        f"{','.join(h.get('code_fingerprints') or c.get('code_fingerprints') or ['–'])} |")


def _render_regions(results: dict[str, Any], goals: list[tuple[str, str, str]],
                    peak_all: list[float]) -> list[str]:
    reg = results.get("regions")
    if not reg:
        return []
    lines = _regions_intro(reg)
    _judge_regions(reg)
    for r in reg["regions"]:
        lines.append(_region_row(r))
        peak_all += [x.get("peak_total_mb") for x in (r.get("highs", {}), r.get("cbc", {}))
                     if x.get("peak_total_mb")]
    slow = [f"{r['region']} {r.get('objective', 'travel')} "
            f"({_f(r.get('highs', {}).get('solve_wall_seconds'), 1)} s, "
            f"{r.get('highs', {}).get('status')})"
            for r in reg["regions"] if not r.get("goal_region_met")]
    goals.append(("every region proven optimal in ≤ 1 s (HiGHS)", _met(reg.get("goal_met")),
                  "all regions" if not slow else "missed by: " + ", ".join(slow)))
    lines += ["", "Per-sub-problem solve seconds are summed in `solve_seconds` of "
              "results.json (sub-problems run two at a time); `solve()` is wall time. "
              "`code` = hash of optimiser/, scenarios/, geo/ sources when measured: rows "
              "with different hashes measured different code (it is edited concurrently).",
              ""]
    if reg.get("remeasured"):
        lines += [f"Re-measured later with `--regions`: {', '.join(reg['remeasured'])}.", ""]
    return lines


def _render_national(results: dict[str, Any], goals: list[tuple[str, str, str]],
                     peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    nat = results.get("national")
    if nat:
        lines += ["## National joint solve (`--region all`)", ""]
        if nat.get("status") == "skipped":
            lines += [f"Skipped ({nat.get('reason')}).", ""]
        else:
            limit = _f(nat.get("time_limit_per_subproblem"), 0)
            lines += [f"Per-sub-problem time limit {limit} s; "
                      f"wall-clock cap per solver {_f(nat.get('wall_cap_seconds'), 0)} s "
                      f"(a capped run is killed and reported as such, not as a result); "
                      f"repeats {(nat.get('highs') or {}).get('repeats')}.", "",
                      "| solver | areas × sites × treatments | instance build s | model build s | "
                      "solve() s | status | gap | sub-problem status | variables | constraints "
                      "| peak MB |", "|" + "---|" * 11]
            for solver in ("highs", "cbc"):
                e = nat.get(solver, {})
                shape = "×".join(str(x) for x in e.get("shape") or []) or "–"
                lines.append(
                    f"| {solver} | {shape} | {_f(e.get('instance_seconds'))} | "
                    f"{_f(e.get('build_seconds'))} | {_f(e.get('solve_wall_seconds'))} | "
                    f"{_status(e)} | {_gap(e.get('mip_gap'))} | {e.get('subproblem_status', '–')} "
                    f"| {_f(e.get('n_vars'))} | {_f(e.get('n_rows'))} | "
                    f"{_f(e.get('peak_total_mb'), 0)} |")
                if e.get("peak_total_mb"):
                    peak_all.append(e["peak_total_mb"])
            lines += ["", f"CBC/HiGHS: {_f(nat.get('cbc_over_highs'), 1)}×", ""]
            goals.append(("national joint in ≤ 60 s (HiGHS, proven optimal)",
                          _met(nat.get("goal_met")),
                          f"HiGHS {_status(nat.get('highs', {}))} (worst sub-problem gap "
                          f"{_gap(nat.get('highs', {}).get('mip_gap'))}) after "
                          f"{_f(nat.get('highs', {}).get('solve_wall_seconds'))} s with "
                          f"{_f(nat.get('time_limit_per_subproblem'), 0)} s per sub-problem; "
                          f"CBC {_status(nat.get('cbc', {}))}"))
    return lines


def _render_matrix(results: dict[str, Any], goals: list[tuple[str, str, str]],
                   peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    mat = results.get("matrix")
    if mat:
        lines += ["## Travel-time matrices (`benchmarks/bench_matrix.py`)", ""]
        if mat.get("status") != "ok":
            lines += [f"{mat.get('status')}: {mat.get('reason')}", ""]
            if mat.get("status") != "skipped":
                goals.append(("national matrix ≤ 20 s cold", "not measured",
                              str(mat.get("reason"))))
        else:
            nps, sps = mat.get("national_per_source") or {}, mat.get("synthetic_per_source") or {}
            lines += [f"Repeats {mat.get('repeats')}; national shape {mat.get('national_shape')} "
                      "(areas × site points).", "",
                      "| measurement | value |", "|---|---|"]
            rows = [
                ("national matrix cold (CSR build + Dijkstra), s",
                 _f(mat.get("national_cold_s"))),
                ("national matrix cached, s", _f(mat.get("national_cached_s"), 4)),
                ("national network nodes / edges", f"{nps.get('nodes')} / {nps.get('edges')}"),
                ("national scipy s per source", _f(nps.get("scipy_s_per_source"), 5)),
                ("national networkx s per source", _f(nps.get("networkx_s_per_source"), 5)),
                ("national networkx / scipy", f"{_f(nps.get('ratio'), 1)}×"),
                ("synthetic nodes / edges", f"{sps.get('nodes')} / {sps.get('edges')}"),
                ("synthetic CSR build, s", _f(mat.get("synthetic_csr_build_s"))),
                ("synthetic scipy s per source", _f(sps.get("scipy_s_per_source"), 4)),
                ("synthetic networkx s per source", _f(sps.get("networkx_s_per_source"), 4)),
                ("synthetic networkx / scipy", f"{_f(sps.get('ratio'), 1)}×"),
                ("peak MB (whole matrix benchmark process)", _f(mat.get("peak_total_mb"), 0)),
            ]
            lines += [f"| {k} | {v} |" for k, v in rows] + [""]
            if mat.get("peak_total_mb"):
                peak_all.append(mat["peak_total_mb"])
            goals.append(("national matrix ≤ 20 s cold", _met(mat.get("goal_cold_met")),
                          f"{_f(mat.get('national_cold_s'))} s on the embedded network "
                          f"({nps.get('nodes')} nodes); the 504k-node synthetic graph takes "
                          f"{_f(sps.get('scipy_s_per_source'), 3)} s per source"))
            goals.append(("scipy ≥ 20× networkx per source", _met(mat.get("goal_ratio_met")),
                          f"national {_f(nps.get('ratio'), 1)}×, synthetic "
                          f"{_f(sps.get('ratio'), 1)}×"))
    return lines


def _render_sweep(results: dict[str, Any], goals: list[tuple[str, str, str]],
                  peak_all: list[float], key: str = "sweep") -> list[str]:
    lines: list[str] = []
    sw = results.get(key)
    if sw:
        objectives = ", ".join(sw.get("objectives") or ("travel", "providers"))
        goal = "100 × 7 sweep ≤ 5 min" + (" (default objective)" if key != "sweep" else "")
        lines += [f"## Sweep (`benchmarks/bench_sweep.py`), objectives {objectives}", "",
                  "Grid: margin 0-0.3 × max_travel {45, 60, 75, 90, none} × the objectives "
                  "above, 100 scenarios × 7 regions, district level, sweep default outputs. "
                  f"Code {sw.get('code_fingerprint', '–')}, measured {sw.get('measured_at')}, "
                  f"load average (1, 5, 15 min) at the end {sw.get('load_average_at_end', '–')}.",
                  ""]
        if sw.get("status") == "ok":
            lines += ["| measurement | value |", "|---|---|"]
            for key in ("runs", "scenarios", "workers", "wall_seconds", "runs_per_minute",
                        "run_status_counts", "build_seconds", "solve_seconds", "instance_seconds",
                        "run_wall_seconds", "resume_seconds", "peak_total_mb"):
                lines.append(f"| {key} | {sw.get(key)} |")
            lines.append("")
            took = f"{_f(sw.get('wall_seconds'), 0)} s for {sw.get('runs')} runs"
            goals.append((goal, _met(sw.get("wall_seconds", 1e9) <= GOAL_SWEEP_S), took))
            goals.append((f"100 × 7 sweep ≤ {GOAL_SWEEP_EVERY_OBJECTIVE_S:g} s ({objectives})",
                          _met(sw.get("wall_seconds", 1e9) <= GOAL_SWEEP_EVERY_OBJECTIVE_S),
                          f"{took}, measured {sw.get('measured_at')}"))
        else:
            lines += [f"**{sw.get('status')}**: {sw.get('reason')}", ""]
            if sw.get("status") == "skipped":
                pass
            elif sw.get("runs_expected"):
                lines += [f"{sw.get('runs_finished')} of {sw.get('runs_expected')} runs had "
                          f"finished after {sw.get('wall_seconds_at_stop')} s (linear estimate "
                          f"for all runs, not a measurement: "
                          f"{_f(sw.get('estimated_total_seconds_linear'), 0)} s).", ""]
            verdict = _met(sw.get("goal_met"))
            estimate = sw.get("estimated_total_seconds_linear")
            if sw.get("goal_met") is None and estimate and estimate > GOAL_SWEEP_S:
                verdict = f"**likely missed** (linear estimate {estimate:.0f} s)"
            if sw.get("status") != "skipped":
                goals.append((goal, verdict,
                          f"{sw.get('status')}: {sw.get('runs_finished', '?')} of "
                          f"{sw.get('runs_expected', '?')} runs in "
                          f"{sw.get('wall_seconds_at_stop', '?')} s"))
    return lines


def _render_scaling(results: dict[str, Any], goals: list[tuple[str, str, str]],
                    peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    sc = results.get("scaling")
    if sc:
        lines += ["## Scaling (HiGHS)", "",
                  f"Repeats {sc.get('repeats')}; per-sub-problem time limit "
                  f"{_f(sc.get('time_limit_per_subproblem'), 0)} s. {sc.get('note', '')}.", ""]
        for key, title in (("areas", f"origin areas (region {sc.get('area_region')})"),
                           ("sites", f"sites (region {sc.get('site_region')}, nested random "
                                     "subsets)")):
            lines += [f"### {title}", "",
                      "| point | areas × sites × treatments | variables | constraints | "
                      "model build s | solve() s | status | gap | peak MB |", "|" + "---|" * 9]
            for p in sc.get(key, []):
                shape = "×".join(str(x) for x in p.get("shape") or []) or "–"
                lines.append(
                    f"| {p['label']} | {shape} | {_f(p.get('n_vars'))} | {_f(p.get('n_rows'))} "
                    f"| {_f(p.get('build_seconds'), 3)} | {_f(p.get('solve_wall_seconds'))} | "
                    f"{p.get('status')} | {_gap(p.get('mip_gap'))} | "
                    f"{_f(p.get('peak_total_mb'), 0)} |")
                if p.get("peak_total_mb"):
                    peak_all.append(p["peak_total_mb"])
            lines.append("")
    return lines


def _render_settings(results: dict[str, Any], goals: list[tuple[str, str, str]],
                     peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    st = results.get("settings")
    if st and st.get("status") == "ok":
        names = list(st["configs"])
        lines += ["## Solver settings (`benchmarks/bench_settings.py`)", "",
                  "Each treatment sub-problem of each region solved alone under every "
                  "configuration, back to back in one process, HiGHS single-threaded, default "
                  f"scenario, {st.get('repeats')} repeats (median). Linking `aggregated` = "
                  "Σ_a x ≤ U·y only; `nearest` = plus x ≤ d·y for each area's nearest site "
                  "(docs/decisions/linking.md). Heuristics = HiGHS' root RENS, "
                  "RINS and reduced-cost heuristics (optimiser/solve.py, HIGHS_MIP_OPTIONS). "
                  f"Old default: {st.get('old_default')}; new default: {st.get('new_default')}. "
                  "Cells: solve seconds summed over the 19 sub-problems (speed-up over the old "
                  "default, ratio taken within each repeat); last columns: slowest sub-problem "
                  "under the new default, and the root LP gap (LP bound vs optimum, worst "
                  "sub-problem) of each linking.", "",
                  "| region | " + " | ".join(names) + " | slowest sub-problem (new default) "
                  "| root LP gap aggregated | root LP gap nearest |",
                  "|" + "---|" * (len(names) + 4)]
        for region, row in st["regions"].items():
            cells = [f"{_f(row['configs'][n]['sum_solve_seconds'])} "
                     f"({_f(row['configs'][n]['speedup_vs_old_default'], 1)}×)" for n in names]
            new = row["configs"].get(st.get("new_default"), {})
            gaps = row.get("root_lp_gap_max", {})
            lines.append(f"| {region} | " + " | ".join(cells)
                         + f" | {new.get('slowest_subproblem')} "
                         f"{_f(new.get('slowest_seconds'))} s | {_gap(gaps.get('aggregated'))} | "
                         f"{_gap(gaps.get('nearest'))} |")
        bad = {r: v["objective_mismatch"] for r, v in st["regions"].items()
               if v.get("objective_mismatch")}
        lines += ["", "Every configuration reached the same optimum on every sub-problem."
                  if not bad else f"**Optima differ** between configurations: {bad}", ""]
    return lines


def _render_sweep_search(results: dict[str, Any], goals: list[tuple[str, str, str]],
                         peak_all: list[float]) -> list[str]:
    ss = results.get("sweep_search")
    if not ss or ss.get("status") != "ok":
        return []
    lines = ["## Sweep with and without the keep-set search "
             "(`bench_sweep.run_search_side_by_side`)", "",
             "The same sampled margin layers of the sweep grids (every travel limit and "
             "objective of each), with the keep-set search off (HiGHS' branch and bound for "
             "every model, the path before it) and on (the default), back to back in one "
             f"process tree; measured {ss.get('measured_at')}.", "",
             "| grid | margins | runs | B&B only wall s | search wall s | B&B/search | "
             "same statuses | statuses | code |", "|---|---|---|---|---|---|---|---|---|"]
    for grid, row in ss.items():
        if not isinstance(row, dict) or "keep_set_search" not in row:
            continue
        ks, bb = row["keep_set_search"], row["branch_and_bound"]
        lines.append(
            f"| {grid} | {', '.join(str(m) for m in ks.get('sample_margins') or [])} | "
            f"{ks.get('runs')} | {_f(bb.get('wall_seconds'), 1)} | "
            f"{_f(ks.get('wall_seconds'), 1)} | {_f(row.get('bb_over_search'))}× | "
            f"{_f(row.get('same_statuses'))} | "
            f"{', '.join(f'{k} {v}' for k, v in (ks.get('status') or {}).items())} | "
            f"{ks.get('code_fingerprint')} |")
    return lines + [""]


def _render_network(results: dict[str, Any], goals: list[tuple[str, str, str]],
                    peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    if results.get("network"):
        from .bench_network import render as render_network

        net_lines, net_goals = render_network(results["network"])
        lines += net_lines
        goals += net_goals
    return lines


def _render_sweep_gpkg(results: dict[str, Any], goals: list[tuple[str, str, str]],
                       peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    sg = results.get("sweep_gpkg")
    if sg and sg.get("status") == "ok":
        lines += ["## Sweep with and without results.gpkg (`bench_sweep.run_gpkg_side_by_side`)",
                  "", f"{sg['runs']} runs ({sg['scenarios']} scenarios × 7 regions, the sweep "
                  "benchmark's grid), the same sweep twice back to back in one process tree; "
                  f"code {sg.get('code_fingerprint')}, measured {sg.get('measured_at')}.", "",
                  "| | no gpkg (new default) | with results.gpkg (old default) |",
                  "|---|---|---|",
                  f"| sweep wall s | {_f(sg['wall_seconds_no_gpkg'])} | "
                  f"{_f(sg['wall_seconds_gpkg'])} ({_f(sg['ratio_gpkg_over_no_gpkg'])}×) |",
                  f"| median run wall s | {_f(sg['run_wall_median_no_gpkg'], 3)} | "
                  f"{_f(sg['run_wall_median_gpkg'], 3)} |",
                  f"| solve s (Σ) | {_f(sg['solve_seconds_total_no_gpkg'])} | "
                  f"{_f(sg['solve_seconds_total_gpkg'])} |",
                  f"| run status | {sg['status_no_gpkg']} | {sg['status_gpkg']} |", ""]
    return lines


def _render_whatif(results: dict[str, Any], goals: list[tuple[str, str, str]],
                   peak_all: list[float]) -> list[str]:
    lines: list[str] = []
    wi = results.get("whatif")
    if wi and wi.get("status") == "ok":
        lines += ["## What-if re-solves (`benchmarks/bench_whatif.py`)", "",
                  "One `optimiser.whatif.WhatIf` session per region (default scenario, "
                  f"objective {wi['regions'][0].get('objective')}), steps on the region's "
                  "treatment with the most candidate sites; each step timed as a session step "
                  "and, right after, as a fresh `solve()` of the same parameters (today's "
                  "path), same process; both proven optimal, objectives compared. Actions: "
                  "u = sub-problems unchanged, c = cached model, k = previous optimum kept "
                  "(restriction), i = still infeasible, r = re-solved. "
                  f"Code {wi.get('code_fingerprint')}, measured {wi.get('measured_at')}.", "",
                  "| region | step | status | session s | fresh s | fresh/session | "
                  "u/c/k/i/r | re-solved | same optimum | ≤ 0.5 s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in wi["regions"]:
            for st_ in r["steps"]:
                a = st_["actions"]
                acts = "/".join(str(a.get(k, 0)) for k in
                                ("unchanged", "cached", "kept_optimum", "still_infeasible",
                                 "resolved"))
                lines.append(
                    f"| {r['region']} | {st_['step']} `{st_['change']}` | {st_['status']} | "
                    f"{_f(st_['step_seconds'], 3)} | {_f(st_['fresh_seconds'], 2)} | "
                    f"{_f(st_['speedup'], 1)}× | {acts} | {', '.join(st_['resolved']) or '—'}"
                    f" | {'yes' if st_['same_objective_as_fresh'] else '**no**'} | "
                    f"{_met(st_['goal_met'])} |")
        lines += ["", "| region | first solve s | median step s | max step s | median "
                  "fresh/session |", "|---|---|---|---|---|"]
        for r in wi["regions"]:
            lines.append(f"| {r['region']} | {_f(r['first_solve_seconds'])} | "
                         f"{_f(r['median_step_seconds'], 3)} | {_f(r['max_step_seconds'], 2)} "
                         f"| {_f(r['median_speedup'], 1)}× |")
        lines.append("")
        goals.append(("what-if re-solve ≤ 0.5 s (any region)",
                      _met(wi["steps_within_goal"] == wi["steps"]),
                      f"{wi['steps_within_goal']} of {wi['steps']} steps within 0.5 s"
                      + ("" if wi["steps_within_goal"] == wi["steps"] else
                         "; the others re-solve a hard sub-MIP (see the table)")))
    return lines


def _render_pinning(results: dict[str, Any], goals: list[tuple[str, str, str]],
                    peak_all: list[float]) -> list[str]:
    pin = results.get("pinning")
    if not pin or pin.get("status") != "ok":
        return []
    from .bench_pinning import render as render_pinning

    return render_pinning(pin)


def _render_import(results: dict[str, Any], goals: list[tuple[str, str, str]],
                   peak_all: list[float]) -> list[str]:
    imp = results.get("import")
    if not imp or imp.get("status") != "ok":
        return []
    from .bench_import import render as render_import

    lines, import_goals = render_import(imp)
    goals += import_goals
    if imp.get("peak_total_mb"):
        peak_all.append(float(imp["peak_total_mb"]))
    return lines


def _render_grid(results: dict[str, Any], goals: list[tuple[str, str, str]],
                 peak_all: list[float]) -> list[str]:
    grid = results.get("grid")
    if not grid or grid.get("status") != "ok":
        return []
    from .bench_grid import render as render_grid

    lines, grid_goals = render_grid(grid)
    goals += grid_goals
    if grid.get("peak_total_mb"):
        peak_all.append(grid["peak_total_mb"])
    return lines


def _render_e2e(results: dict[str, Any], goals: list[tuple[str, str, str]],
                peak_all: list[float]) -> list[str]:
    e2e = results.get("e2e")
    if not e2e or e2e.get("status") != "ok":
        return []
    from .bench_e2e import render as render_e2e

    lines, e2e_goals = render_e2e(e2e)
    goals += e2e_goals
    return lines



#: The report's sections in page order; each adds its goals and peak memories.
_RENDER_SECTIONS = (
    _render_regions,
    _render_grid,
    _render_national,
    _render_matrix,
    _render_sweep,
    lambda results, goals, peak_all: _render_sweep(results, goals, peak_all, "sweep_default"),
    _render_scaling,
    _render_settings,
    _render_network,
    _render_sweep_gpkg,
    _render_sweep_search,
    _render_whatif,
    _render_pinning,
    _render_import,
    _render_e2e,
)


def render(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    lines = ["# Benchmark results", "",
             f"Generated by `{results.get('command', 'python -m benchmarks')}` on "
             f"{m.get('date', '?')}. Every solve runs in its own child process (peak memory "
             "per measurement = that process's max RSS + the CBC process it started). Timings "
             "are medians over the repeats; CBC/HiGHS ratios are taken per repeat (both solvers "
             "back to back on the same instance) and their median reported. `solve()` = wall "
             "time of `optimiser.solve.solve` (model build + solve; dataset loading and instance "
             "assembly excluded and listed separately).", "",
             "## Machine", "",
             "| | |", "|---|---|"]
    for key in ("cpu", "cores", "cores_usable", "ram_gb", "os", "python", "git_commit",
                "git_modified_files", "load_average_at_start"):
        lines.append(f"| {key} | {m.get(key)} |")
    for dist, ver in (m.get("versions") or {}).items():
        lines.append(f"| {dist} | {ver} |")
    lines += ["", "The machine is shared with other jobs (see the load average): absolute "
              "times are noisy, ratios within a run less so.", ""]

    goals: list[tuple[str, str, str]] = []
    peak_all: list[float] = []

    for section in _RENDER_SECTIONS:
        lines += section(results, goals, peak_all)


    if peak_all:
        peak = max(peak_all)
        goals.append(("peak memory ≤ 4 GB", _met(peak <= GOAL_MEMORY_MB),
                      f"largest measured: {peak:.0f} MB"))
    lines += ["## Goals", "", "| goal | verdict | where we stand |", "|---|---|---|"]
    lines += [f"| {g} | {v} | {w} |" for g, v, w in goals]
    prof = results.get("profiling")
    if prof:
        lines += ["", "## Profiling", ""] + [f"- {n}" for n in prof.get("findings", [])]
        table = prof.get("table")
        if table:
            lines += ["", "| " + " | ".join(table["header"]) + " |",
                      "|" + "---|" * len(table["header"])]
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table["rows"]]
    notes = results.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"
