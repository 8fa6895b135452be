"""End to end: the wall time of real ``herschik`` commands as the user waits for them.

Each command runs as its own process (``python -m herschik.scenarios.cli``, which works for
trees from before and after the scenarios/cli/ package), ``repeats`` times; the median and the
slowest (p100) wall time are reported with the CPU time of the process (user + system: the
part the machine's load does not inflate). The same commands run on the code under test and,
beside it, on an earlier commit (``baseline_ref``, exported with ``git archive`` into a
temporary folder and put first on
``PYTHONPATH``), interleaved repeat by repeat, so the two columns share the machine's load.

Cache states (``HERSCHIK_CACHE_DIR`` is a fresh folder per code version):

* ``cold``: no derived data cached (``derived/`` removed before each repeat; the road network
  and travel matrices, cached by earlier versions too, are kept warm so the baseline is not
  charged for them);
* ``warm``: the same command again, everything cached;
* ``new scenario``: a margin no earlier repeat used (data, instance and unchanged maps cached,
  the changed maps drawn);
* ``after a code change``: the same command again after a one-line edit of a solver module
  (:data:`EDITED_MODULE`, in every version's tree, recompiled as an install would): what a
  developer or an upgraded install pays on its first run; the entries keyed by that code are
  made again, the others are read.

``python -m benchmarks.bench_e2e [--repeats N] [--baseline REF] [--national] [--cases ...]
[--out FILE.json]`` runs it alone and writes the raw JSON.
"""

from __future__ import annotations

import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import REPO

GOAL_SOLVE_S = 2.0
GOAL_REGIONS_S = 0.5
GOAL_NATIONAL_S = 30.0
#: the module edited for ``after a code change`` (the solver: what most changes touch)
EDITED_MODULE = "optimiser/keepset_search.py"


def _herschik() -> list[str]:
    # ``python -m herschik.scenarios.cli`` runs the CLI of whichever tree is first on
    # PYTHONPATH (the module before the scenarios/cli/ package, the package's __main__ after);
    # the installed script names the entry point of the installed code only
    return [sys.executable, "-m", "herschik.scenarios.cli"]


def export_tree(ref: str, folder: Path) -> Path:
    """The package folders of commit ``ref`` under ``folder``, importable as ``herschik``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "tree.tar"
    with archive.open("wb") as handle:
        subprocess.run(["git", "archive", ref, "herschik", "geo", "optimiser", "scenarios"],
                       cwd=REPO, stdout=handle, check=True, timeout=120)
    tree = folder / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    # compiled once, as `pip install` does: otherwise, where PYTHONDONTWRITEBYTECODE is set
    # (as on the shared machine), every command compiled herschik's ~130 modules again,
    # ~0.3 s of CPU that an installed herschik never pays
    compileall.compile_dir(tree, quiet=1, workers=1)
    package = folder / "path" / "herschik"
    package.mkdir(parents=True)
    for item in (tree / "herschik").iterdir():
        (package / item.name).symlink_to(item)
    for name in ("geo", "optimiser", "scenarios"):
        (package / name).symlink_to(tree / name)
    return folder / "path"


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the child, exit code) of one command, run outside the checkout (so
    that ``python -m`` does not import the checkout instead of ``PYTHONPATH``'s tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=1800, check=False, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace')[-500:]}")
    return wall, cpu, done.returncode


def _cases(national: bool, region: str = "midden") -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = [
        {"case": "herschik --help", "argv": ["--help"], "state": "warm"},
        {"case": "herschik regions", "argv": ["regions"], "state": "cold"},
        {"case": "herschik regions", "argv": ["regions"], "state": "warm"},
    ]
    solve = ["solve", "--region", region, "--out", "{out}"]
    name = f"solve --region {region} --out DIR"
    cases += [
        {"case": name, "argv": solve, "state": "cold"},
        {"case": name, "argv": solve, "state": "warm"},
        {"case": f"{name} --margin M", "argv": [*solve, "--margin", "{margin}"],
         "state": "new scenario"},
    ]
    cases.append({"case": name, "argv": solve, "state": "after a code change"})
    if national:
        national_solve = ["solve", "--region", "all", "--out", "{out}"]
        cases += [{"case": "solve --region all --out DIR", "argv": national_solve,
                   "state": "warm"},
                  {"case": "solve --region all --out DIR", "argv": national_solve,
                   "state": "after a code change"}]
    return cases


def edit_code(tree_path: str, repeat: int) -> None:
    """One more comment line in :data:`EDITED_MODULE` of the exported tree on ``tree_path``
    (the folder put on PYTHONPATH), compiled as an install compiles it."""
    module = Path(tree_path) / "herschik" / EDITED_MODULE
    real = module.resolve()
    with real.open("a", encoding="utf-8") as handle:
        handle.write(f"\n# benchmark edit {repeat}\n")
    compileall.compile_file(str(real), quiet=1)


def _measure(case: dict[str, Any], repeats: int, envs: dict[str, dict[str, str]],
             root: Path) -> list[dict[str, Any]]:
    """One case on every code version, interleaved: repeat 1 of each version, then repeat 2,
    ..., so that the versions share the machine's load of the moment."""
    runs = repeats if case["case"] != "solve --region all --out DIR" else 1
    walls: dict[str, list[float]] = {label: [] for label in envs}
    cpus: dict[str, list[float]] = {label: [] for label in envs}
    if case["state"] in ("warm", "new scenario", "after a code change"):  # fill first, untimed
        for label, env in envs.items():
            argv = [a.format(out=root / f"fill-{label}", margin="0.0") for a in case["argv"]]
            _timed([*_herschik(), *argv], env)
    for repeat in range(runs):
        for label, env in envs.items():
            if case["state"] == "cold":
                shutil.rmtree(Path(env["HERSCHIK_CACHE_DIR"]) / "derived", ignore_errors=True)
            if case["state"] == "after a code change":
                edit_code(env["PYTHONPATH"], repeat)
            out = root / f"out-{label}-{repeat}"
            argv = [a.format(out=out, margin=f"{0.011 * (repeat + 1):.3f}")
                    for a in case["argv"]]
            wall, cpu, _ = _timed([*_herschik(), *argv], env)
            walls[label].append(wall)
            cpus[label].append(cpu)
            shutil.rmtree(out, ignore_errors=True)
    return [{"case": case["case"], "state": case["state"], "repeats": runs, "code": label,
             "wall_median": round(statistics.median(walls[label]), 3),
             "wall_max": round(max(walls[label]), 3),
             "cpu_median": round(statistics.median(cpus[label]), 3)} for label in envs]


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(repeats: int = 5, baseline_ref: str | None = None, national: bool = False,
        region: str = "midden", only: list[str] | None = None) -> dict:
    """Every case on the code under test and (``baseline_ref``) on an earlier commit.

    The code under test is the commit checked out when the run starts, exported like the
    baseline, so edits to the checkout during the run do not leak into the measurement.
    """
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                          capture_output=True, check=True, timeout=30).stdout.strip()
    versions: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="herschik-e2e-") as tmp:
        root = Path(tmp)
        versions["this"] = {"PYTHONPATH": str(export_tree(head, root / "head"))}
        if baseline_ref:
            versions[baseline_ref] = {"PYTHONPATH": str(export_tree(baseline_ref,
                                                                    root / "base"))}
        results: dict[str, Any] = {"load_average_before": _load(), "repeats": repeats,
                                   "baseline_ref": baseline_ref, "code": head, "rows": []}
        warm_up = [*_herschik(), "solve", "--region", region, "--out", str(root / "w"),
                   "--no-maps", "--no-report"]
        envs = {}
        for label, extra in versions.items():
            env = {**os.environ, **extra, "HERSCHIK_CACHE_DIR": str(root / f"cache-{label}")}
            env.pop("HERSCHIK_CACHE", None)
            _timed(warm_up, env)  # the road network and the matrices (kept warm, see above)
            envs[label] = env
        for case in _cases(national, region):
            if only and f"{case['case']}|{case['state']}" not in only \
                    and case["case"] not in only and case["state"] not in only:
                continue
            results["rows"] += _measure(case, repeats, envs, root)
        results["load_average_after"] = _load()
    return results


def render(result: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """RESULTS.md lines and goal rows of the end-to-end section."""
    base = result.get("baseline_ref")
    lines = ["## End to end: the commands as the user waits (`benchmarks/bench_e2e.py`)", "",
             f"Measured {result.get('measured_at')} ("
             f"{(result.get('machine') or {}).get('cpu')}, "
             f"{(result.get('machine') or {}).get('cores')} cores). "
             f"Each command a fresh process, {result['repeats']} repeats (the national run "
             "once): wall-clock median and slowest (p100), and the process's CPU time (user + "
             "system), which the machine's load inflates less than the wall time. "
             f"Load average before {result.get('load_average_before')}, after "
             f"{result.get('load_average_after')} (1, 5, 15 min): the machine was shared with "
             "other jobs, so wall times are inflated; the two versions run interleaved "
             f"(repeat by repeat) to share it. Code {result.get('code')}"
             + (f"; beside it commit `{base}` (before this work)." if base else "."),
             "cold = no derived data cached (road network and matrices warm); warm = the "
             "same command again; new scenario = a margin not run before.", ""]
    header = "| command | cache | wall median s | wall p100 s | CPU s |"
    if base:
        header += f" `{base}` wall median s | `{base}` p100 s | `{base}` CPU s |"
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    rows = result["rows"]
    mine = [r for r in rows if r["code"] == "this"]
    for row in mine:
        cells = (f"| `{row['case']}` | {row['state']} | {row['wall_median']:.2f} | "
                 f"{row['wall_max']:.2f} | {row['cpu_median']:.2f} |")
        if base:
            old = next((r for r in rows if r["code"] == base and r["case"] == row["case"]
                        and r["state"] == row["state"]), None)
            cells += (f" {old['wall_median']:.2f} | {old['wall_max']:.2f} | "
                      f"{old['cpu_median']:.2f} |" if old else " – | – | – |")
        lines.append(cells)
    lines.append("")
    goals: list[tuple[str, str, str]] = []

    def verdict(case: str, state: str, goal: float, label: str) -> None:
        row = next((r for r in mine if r["case"] == case and r["state"] == state), None)
        if row is None:
            return
        met = row["wall_max"] <= goal
        goals.append((label, "**met**" if met else "**missed**",
                      f"{state}: p100 {row['wall_max']:.2f} s, median "
                      f"{row['wall_median']:.2f} s, CPU {row['cpu_median']:.2f} s"))

    verdict("herschik regions", "warm", GOAL_REGIONS_S, "`herschik regions` ≤ 0.5 s")
    for case, state in (("solve --region midden --out DIR", "warm"),
                        ("solve --region midden --out DIR --margin M", "new scenario"),
                        ("solve --region midden --out DIR", "cold")):
        verdict(case, state, GOAL_SOLVE_S, f"midden with every output ≤ 2 s ({state})")
    verdict("solve --region all --out DIR", "warm", GOAL_NATIONAL_S,
            "national run with outputs ≤ 30 s")
    verdict("solve --region all --out DIR", "after a code change", GOAL_NATIONAL_S,
            "national run with outputs ≤ 30 s (first run after a code change)")
    return lines, goals


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=None, metavar="REF")
    parser.add_argument("--national", action="store_true")
    parser.add_argument("--region", default="midden")
    parser.add_argument("--cases", nargs="*", default=None,
                        help="only these cases or cache states (e.g. 'new scenario')")
    parser.add_argument("--out", default=None, help="write the raw JSON here")
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats, baseline_ref=args.baseline, national=args.national,
                 region=args.region, only=args.cases)
    result["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
