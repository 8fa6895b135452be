"""``python -m benchmarks``: the benchmark suite on the embedded default data.

    python -m benchmarks [--repeats 3]
                         [--only regions,grid,national,matrix,sweep,scaling,settings,network,
                                 whatif,sweep_gpkg,pinning,sweep_default,import,e2e]
                         [--e2e-baseline REF] [--e2e-national]
                         [--smoke] [--out benchmarks]

Writes ``OUT/results.json`` (machine-readable) and ``OUT/RESULTS.md`` (a table per benchmark,
goals met / missed), both atomically. Sections not run this time are kept from an existing
``OUT/results.json`` (so ``--only`` refreshes part of the results). ``--smoke`` runs the
example region only, one repeat, small scaling, no matrix / sweep / national, and needs an
``--out`` other than the committed ``benchmarks/`` folder. Not a unit test.
"""


from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import machine_info, write_atomic
from .render import render
from .sections import SECTIONS, log, run_sections

PACKAGE_DIR = Path(__file__).resolve().parent
#: RESULTS.md below this line is written by hand (measurements no section repeats); a run keeps it
HAND_RUN_MARKER = ("<!-- hand-run tables: `python -m benchmarks` keeps everything below this "
                   "line as it is -->")


def _clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj



def with_hand_run_part(rendered: str, md_path: Path) -> str:
    """``rendered`` followed by the hand-written part of the existing ``md_path`` (from
    :data:`HAND_RUN_MARKER` on), so that a re-run never drops a hand-run table."""
    try:
        old = md_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return rendered
    _, marker, tail = old.partition(HAND_RUN_MARKER)
    return f"{rendered}\n{marker}{tail}" if marker else rendered


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--only", default=",".join(SECTIONS),
                   help="comma-separated: " + ",".join(SECTIONS))
    p.add_argument("--smoke", action="store_true", help="example region only, 1 repeat")
    p.add_argument("--out", default=None, help="output folder (default: benchmarks/)")
    p.add_argument("--time-limit", type=float, default=60.0,
                   help="seconds per sub-problem solve for regions and scaling (0 = none)")
    p.add_argument("--wall-cap", type=float, default=900.0,
                   help="wall-clock seconds after which one measurement process is killed")
    p.add_argument("--regions", default=None,
                   help="re-measure only these regions (comma-separated) and merge them into "
                        "the existing results.json")
    p.add_argument("--objectives", default="planner,travel",
                   help="regions: one row per region and objective (comma-separated)")
    p.add_argument("--cbc-repeats", type=int, default=None,
                   help="CBC runs per region (default: --repeats)")
    p.add_argument("--scaling-repeats", type=int, default=None,
                   help="runs per scaling point (default: --repeats)")
    p.add_argument("--scaling-wall-cap", type=float, default=None,
                   help="wall-clock cap per scaling measurement (default: --wall-cap)")
    p.add_argument("--grid-threads", type=int, default=0,
                   help="grid: threads per solve (0: every core, as `herschik solve` runs)")
    p.add_argument("--grid-objectives", default="planner,travel,moved,providers")
    p.add_argument("--grid-wall-cap", type=float, default=3600.0)
    p.add_argument("--national-time-limit", type=float, default=300.0,
                   help="seconds per sub-problem solve of the national joint model")
    p.add_argument("--national-wall-cap", type=float, default=900.0)
    p.add_argument("--national-repeats", type=int, default=1)
    p.add_argument("--national-solvers", default="highs,cbc",
                   help="solvers of the national joint solve (comma-separated)")
    p.add_argument("--matrix-wall-cap", type=float, default=1800.0)
    p.add_argument("--sweep-scenarios", type=int, default=100)
    p.add_argument("--sweep-gpkg-scenarios", type=int, default=10,
                   help="scenarios of the gpkg on/off side-by-side sweep (x 7 regions)")
    p.add_argument("--sweep-wall-cap", type=float, default=1800.0)
    p.add_argument("--settings-wall-cap", type=float, default=3600.0)
    p.add_argument("--network-scale", type=float, default=3.0,
                   help="town-size scale of the synthetic country PBF (3.0: >= 2 M drivable "
                        "nodes)")
    p.add_argument("--network-wall-cap", type=float, default=3600.0)
    p.add_argument("--cache-dir", default=None,
                   help="HERSCHIK_CACHE_DIR for the children (default: a fresh temporary one, "
                        "so the first instance build is cold)")
    p.add_argument("--e2e-baseline", default=None, metavar="REF",
                   help="e2e: also run the commands on this earlier commit, side by side")
    p.add_argument("--e2e-national", action="store_true",
                   help="e2e: also time `solve --region all --out DIR` (once)")
    p.add_argument("--note", action="append", default=[], help="free text added to RESULTS.md")
    p.add_argument("--render-only", action="store_true",
                   help="only re-render OUT/RESULTS.md from OUT/results.json")
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    if args.regions:
        args.regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    args.objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    args.grid_objectives = [o.strip() for o in args.grid_objectives.split(",") if o.strip()]
    bad = [s for s in args.only if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {','.join(SECTIONS)}")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    if args.time_limit == 0:
        args.time_limit = None
    if args.national_time_limit == 0:
        args.national_time_limit = None
    if args.smoke:
        if args.out is None:
            p.error("--smoke needs --out DIR (it never overwrites benchmarks/RESULTS.md)")
        if Path(args.out).resolve() == PACKAGE_DIR:
            p.error("--smoke must not write into benchmarks/ (the committed RESULTS.md)")
        args.repeats = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else PACKAGE_DIR
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "results.json", out / "RESULTS.md"
    if args.render_only:
        results = json.loads(json_path.read_text(encoding="utf-8"))
        write_atomic(md_path, with_hand_run_part(render(results), md_path))
        log(f"wrote {md_path}")
        return 0
    previous: dict[str, Any] = {}
    if json_path.exists() and not args.smoke:
        try:
            previous = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="herschik-bench-cache-") as tmp_cache:
        if args.cache_dir is None:
            args.cache_dir = tmp_cache
        machine = machine_info()
        measured = run_sections(args, previous)
    cmd = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    results = {k: v for k, v in previous.items() if k in SECTIONS or k == "profiling"}
    stamp = machine.get("date")
    for value in measured.values():
        if isinstance(value, dict):
            value.setdefault("measured_at", stamp)
    results.update(measured)
    results["machine"] = machine
    results["command"] = cmd.strip()
    results["smoke"] = bool(args.smoke)
    results["sections_this_run"] = list(measured)
    results["run_seconds"] = round(time.perf_counter() - start, 1)
    results["notes"] = list(dict.fromkeys(previous.get("notes", []) + args.note))
    results = _clean(results)
    write_atomic(json_path, json.dumps(results, indent=2, sort_keys=False) + "\n")
    write_atomic(md_path, with_hand_run_part(render(results), md_path))
    log(f"wrote {json_path} and {md_path} in {results['run_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
