"""Country-scale road network benchmark (not a timed unit test).

``python -m benchmarks --only network`` (or ``python -m benchmarks.bench_network``):

1. writes a synthetic country-size ``.osm.pbf`` with pyosmium's writer
   (:func:`write_synthetic_country`): towns on a 5 km lattice over the Dutch RD extent, each a
   street grid (residential / tertiary, shape nodes between junctions, oneway streets,
   ``maxspeed`` numbers and implicit ``NL:*`` zones, parking aisles), rural roads between
   neighbouring towns (secondary / tertiary / unclassified, some closed to motor vehicles,
   tracks), dual-carriageway motorways with ramps and emergency crossovers
   (``access=no``), car and foot ferries, plus non-road data: buildings with addresses,
   footways, cycleways, landuse polygons, POI nodes and turn-restriction relations;
2. runs ``herschik network build --osm`` on it in a fresh process (wall time, peak RSS);
3. times the national OD matrix (the 3,340 CBS district centroids x the 111 sites of the
   default dataset) on the built network in fresh processes: cold (empty matrix cache) and
   cached (second run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOAL_BUILD_S = 15 * 60.0
GOAL_BUILD_MB = 8192.0
GOAL_MATRIX_COLD_S = 60.0

#: RD New extent of the synthetic country (the Dutch bounding box, metres).
X0, X1, Y0, Y1 = 10_000.0, 280_000.0, 305_000.0, 620_000.0
CELL = 5_000.0  # town lattice spacing
BLOCK = 110.0  # street block length in towns
SHAPE_PER_BLOCK = 1  # shape nodes between two junctions


class _Builder:
    """Collects nodes (RD coordinates) and ways, then writes them in id order."""

    def __init__(self, first_node_id: int = 1_000_000_000, first_way_id: int = 50_000_000):
        self.xy: list[np.ndarray] = []
        self.n = 0
        self.first_node = first_node_id
        self.ways: list[tuple[np.ndarray, dict[str, str]]] = []
        self.first_way = first_way_id
        self.node_tags: dict[int, dict[str, str]] = {}
        self.relations: list[tuple[list[tuple[str, int, str]], dict[str, str]]] = []
        self.drivable_refs = 0
        self.drivable: list[np.ndarray] = []

    def nodes(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        ids = np.arange(self.n, self.n + len(xy), dtype=np.int64) + self.first_node
        self.xy.append(xy)
        self.n += len(xy)
        return ids

    def way(self, refs: np.ndarray, tags: dict[str, str], drivable: bool = False) -> int:
        self.ways.append((np.asarray(refs, dtype=np.int64), tags))
        if drivable:
            self.drivable_refs += len(refs)
            self.drivable.append(np.asarray(refs, dtype=np.int64))
        return self.first_way + len(self.ways) - 1

    def line(self, a: np.ndarray, b: np.ndarray, step: float) -> np.ndarray:
        """Shape points strictly between a and b, about ``step`` apart."""
        d = float(np.hypot(*(b - a)))
        k = max(int(d // step), 0)
        if k == 0:
            return np.empty((0, 2))
        t = np.arange(1, k + 1) / (k + 1)
        return a[None, :] + t[:, None] * (b - a)[None, :]

    def write(self, path: Path) -> dict[str, int]:
        import osmium
        from pyproj import Transformer

        xy = np.concatenate(self.xy)
        lon, lat = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True).transform(
            xy[:, 0], xy[:, 1])
        if path.exists():
            path.unlink()
        writer = osmium.SimpleWriter(str(path))
        try:
            Node = osmium.osm.mutable.Node
            for i, (lo, la) in enumerate(zip(lon.tolist(), lat.tolist())):
                nid = self.first_node + i
                writer.add_node(Node(id=nid, location=(lo, la), version=1,
                                     tags=self.node_tags.get(nid, {})))
            Way = osmium.osm.mutable.Way
            for k, (refs, tags) in enumerate(self.ways):
                writer.add_way(Way(id=self.first_way + k, nodes=refs.tolist(), tags=tags,
                                   version=1))
            Rel = osmium.osm.mutable.Relation
            for k, (members, tags) in enumerate(self.relations):
                writer.add_relation(Rel(id=1_000_000 + k, members=members, tags=tags,
                                        version=1))
        finally:
            writer.close()
        return {"nodes": int(len(xy)), "ways": len(self.ways),
                "relations": len(self.relations), "drivable_way_node_refs": self.drivable_refs,
                "drivable_nodes": int(len(np.unique(np.concatenate(self.drivable))))}


def _street_tags(rng: np.random.Generator, name: str, row: int, main: int) -> dict[str, str]:
    """Tags of one town street: the main road or a residential street (speed zones, oneways)."""
    if row == main:
        tags = {"highway": "tertiary", "name": f"{name} Hoofdweg"}
        if rng.random() < 0.5:
            tags["maxspeed"] = "50"
        else:
            tags["source:maxspeed"] = "NL:urban"
        return tags
    tags = {"highway": "residential", "name": f"{name} straat {row}"}
    r = rng.random()
    if r < 0.55:
        tags["maxspeed"] = "30"
        tags["zone:maxspeed"] = "NL:30"
    elif r < 0.7:
        tags["maxspeed"] = "NL:urban"
    elif r < 0.75:
        tags["highway"] = "living_street"
    if rng.random() < 0.12:
        tags["oneway"] = "yes" if rng.random() < 0.8 else "-1"
    return tags


def _rural_tags(rng: np.random.Generator, i: int, j: int) -> dict[str, str]:
    r = rng.random()
    if r < 0.3:
        return {"highway": "secondary", "maxspeed": "80", "ref": f"N{i}{j}"}
    if r < 0.55:
        return {"highway": "tertiary", "maxspeed": "60", "zone:maxspeed": "NL:60"}
    if r < 0.85:
        return {"highway": "unclassified", "maxspeed": "NL:rural"}
    if r < 0.95:
        return {"highway": "unclassified"}
    return {"highway": "unclassified", "motor_vehicle": "agricultural"}


def _town(b: _Builder, rng: np.random.Generator, cx: float, cy: float, side: int,
          name: str) -> dict[str, np.ndarray]:
    """A street grid of ``side`` x ``side`` junctions around (cx, cy); returns edge node ids."""
    half = (side - 1) * BLOCK / 2
    gx = cx - half + np.arange(side) * BLOCK
    gy = cy - half + np.arange(side) * BLOCK
    X, Y = np.meshgrid(gx, gy)
    junction = b.nodes(np.c_[X.ravel(), Y.ravel()]).reshape(side, side)
    main = side // 2
    for row in range(side):  # streets along x, then along y
        for along_x in (True, False):
            ids = junction[row, :] if along_x else junction[:, row]
            pts = np.c_[gx, np.full(side, gy[row])] if along_x else np.c_[
                np.full(side, gx[row]), gy]
            refs = [ids[0]]
            for j in range(side - 1):
                shape = b.line(pts[j], pts[j + 1], BLOCK / (SHAPE_PER_BLOCK + 1) + 1e-6)
                refs.extend(b.nodes(shape).tolist())
                refs.append(ids[j + 1])
            b.way(np.array(refs), _street_tags(rng, name, row, main), drivable=True)
    if rng.random() < 0.5 and side >= 4:  # a roundabout-ish loop in the centre
        c = junction[main, main]
        ring = b.nodes(np.c_[gx[main] + 15 * np.cos(np.linspace(0, 2 * np.pi, 7)[:-1]),
                             gy[main] + 15 * np.sin(np.linspace(0, 2 * np.pi, 7)[:-1])])
        b.way(np.r_[ring, ring[:1]], {"highway": "tertiary", "junction": "roundabout"},
              drivable=True)
        b.way(np.array([c, ring[0]]), {"highway": "tertiary"}, drivable=True)
    # parking aisles and service roads
    for _ in range(max(1, side // 4)):
        j = junction[rng.integers(side), rng.integers(side)]
        p = b.nodes(np.c_[rng.uniform(-40, 40, 2) + cx, rng.uniform(-40, 40, 2) + cy])
        kind = "parking_aisle" if rng.random() < 0.6 else "driveway"
        b.way(np.r_[j, p], {"highway": "service", "service": kind})
    # buildings (4 nodes, closed), footways, POIs
    n_build = side * side * 2
    bx = rng.uniform(cx - half, cx + half, n_build)
    by = rng.uniform(cy - half, cy + half, n_build)
    off = np.array([[0, 0], [9, 0], [9, 7], [0, 7]], float)
    corners = b.nodes((np.c_[bx, by][:, None, :] + off[None, :, :]).reshape(-1, 2))
    corners = corners.reshape(n_build, 4)
    for k in range(n_build):
        b.way(np.r_[corners[k], corners[k, :1]],
              {"building": "house", "addr:street": f"{name} straat {k % side}",
               "addr:housenumber": str(k + 1)})
    for _ in range(side):
        p = b.nodes(np.c_[rng.uniform(cx - half, cx + half, 3), rng.uniform(cy - half,
                                                                            cy + half, 3)])
        b.way(p, {"highway": rng.choice(["footway", "cycleway", "path", "steps"]).item()})
    poi = b.nodes(np.c_[rng.uniform(cx - half, cx + half, side), rng.uniform(cy - half,
                                                                             cy + half, side)])
    for nid in poi.tolist():
        b.node_tags[nid] = {"amenity": rng.choice(["bench", "cafe", "pharmacy",
                                                    "parking"]).item()}
    land = b.nodes(np.array([[cx - half, cy - half], [cx + half, cy - half],
                             [cx + half, cy + half], [cx - half, cy + half]]))
    b.way(np.r_[land, land[:1]], {"landuse": "residential", "name": name})
    if side >= 3:  # a no-left-turn restriction at the main crossing
        j = int(junction[main, main])
        b.relations.append(([("w", b.first_way + len(b.ways) - 1, "from"), ("n", j, "via"),
                             ("w", b.first_way + len(b.ways) - 2, "to")],
                            {"type": "restriction", "restriction": "no_left_turn"}))
    return {"w": junction[main, 0], "e": junction[main, -1], "s": junction[0, main],
            "n": junction[-1, main], "sw": junction[0, 0], "xy": np.array([cx, cy]),
            "half": np.array(half)}


def _node_xy(b: _Builder, nid: int) -> np.ndarray:
    i = nid - b.first_node
    for chunk in b.xy:  # small lists; only used for a few thousand lookups
        if i < len(chunk):
            return chunk[i]
        i -= len(chunk)
    raise KeyError(nid)


def _ramps(b: _Builder, fwd: np.ndarray, bwd: np.ndarray, along: np.ndarray,
           junctions: list[dict], xy_cache: dict[int, np.ndarray], axis: int) -> None:
    """Ramps from both carriageways to the town next to every motorway node near a lattice
    centre, and emergency crossovers."""
    # ramps to the town next to every motorway node near a lattice centre
    step = max(1, int(CELL // 400.0))
    for q in range(step // 2, len(fwd), step):
        town = junctions[min(q // step, len(junctions) - 1)]
        node = int(town["n"] if axis == 0 else town["e"])
        nxy = xy_cache[node]
        for carriage, sign in ((fwd, 1), (bwd, -1)):
            lo, hi = max(q - 1, 0), min(q + 1, len(fwd) - 1)
            off_pts = b.nodes(b.line(along[lo], nxy, 200.0))
            on_pts = b.nodes(b.line(nxy, along[hi], 200.0))
            if sign == 1:
                b.way(np.r_[carriage[lo], off_pts, node],
                      {"highway": "motorway_link", "oneway": "yes"}, drivable=True)
                b.way(np.r_[node, on_pts, carriage[hi]],
                      {"highway": "motorway_link", "oneway": "yes"}, drivable=True)
            else:
                b.way(np.r_[carriage[hi], off_pts[::-1], node],
                      {"highway": "motorway_link"}, drivable=True)
                b.way(np.r_[node, on_pts[::-1], carriage[lo]],
                      {"highway": "motorway_link"}, drivable=True)
        # an emergency crossover between the carriageways (never a U-turn)
        if q + 3 < len(fwd):
            b.way(np.array([fwd[q + 3], bwd[q + 3]]),
                  {"highway": "service", "service": "emergency_access",
                   "access": "no"})


def _lay_towns(b: _Builder, rng: np.random.Generator, nx_: int, ny_: int, scale: float
               ) -> tuple[dict[tuple[int, int], dict], dict[int, np.ndarray]]:
    """A town per lattice cell; its four gate nodes' coordinates by node id."""
    towns: dict[tuple[int, int], dict] = {}
    xy_cache: dict[int, np.ndarray] = {}
    for i in range(nx_):
        for j in range(ny_):
            cx = X0 + (i + 0.5) * CELL + rng.uniform(-600, 600)
            cy = Y0 + (j + 0.5) * CELL + rng.uniform(-600, 600)
            side = int(np.clip(round((5 + 3 * rng.pareto(2.2)) * np.sqrt(scale)), 2, 34))
            t = _town(b, rng, cx, cy, side, f"T{i}_{j}")
            towns[i, j] = t
            half = float(t["half"])
            for key, d in (("w", (-half, 0)), ("e", (half, 0)), ("s", (0, -half)),
                           ("n", (0, half))):
                xy_cache[int(t[key])] = np.array([cx + d[0], cy + d[1]])
    return towns, xy_cache


def _rural_roads(b: _Builder, rng: np.random.Generator, towns: dict[tuple[int, int], dict],
                 xy_cache: dict[int, np.ndarray]) -> None:
    """Rural roads between lattice neighbours, each with a cycle path and a farm track."""
    for (i, j), t in towns.items():
        for di, dj, a_key, b_key in ((1, 0, "e", "w"), (0, 1, "n", "s")):
            o = towns.get((i + di, j + dj))
            if o is None:
                continue
            a, c = int(t[a_key]), int(o[b_key])
            shape = b.line(xy_cache[a], xy_cache[c], 150.0)
            shape = shape + rng.normal(0, 20, shape.shape)
            refs = np.r_[a, b.nodes(shape), c]
            b.way(refs, _rural_tags(rng, i, j), drivable=True)
            side_path = b.nodes(shape[::4] + np.array([8.0, 8.0]))
            if len(side_path) >= 2:
                b.way(side_path, {"highway": "cycleway"})
                b.way(side_path[::-1], {"highway": "track", "tracktype": "grade2"})


def _motorways(b: _Builder, rng: np.random.Generator, towns: dict[tuple[int, int], dict],
               xy_cache: dict[int, np.ndarray], nx_: int, ny_: int) -> None:
    """Dual-carriageway motorways along every 5th lattice row and column, with ramps."""
    for axis in (0, 1):
        lines = range(2, (ny_ if axis == 0 else nx_), 5)
        for k in lines:
            cells = [(i, k) for i in range(nx_)] if axis == 0 else [(k, j) for j in range(ny_)]
            junctions = [towns[c] for c in cells if c in towns]
            shift = np.array([0, 1500.0]) if axis == 0 else np.array([1500.0, 0])
            along = b.line(junctions[0]["xy"] + shift, junctions[-1]["xy"] + shift, 400.0)
            offset = np.array([0, 25.0]) if axis == 0 else np.array([25.0, 0])
            fwd = b.nodes(along)
            bwd = b.nodes(along + offset)
            m_ref = f"A{k * 2 + axis}"
            speed = "130" if rng.random() < 0.4 else "100"
            b.way(fwd, {"highway": "motorway", "ref": m_ref, "maxspeed": speed,
                        "oneway": "yes"}, drivable=True)
            b.way(bwd[::-1], {"highway": "motorway", "ref": m_ref, "maxspeed": speed},
                  drivable=True)
            _ramps(b, fwd, bwd, along, junctions, xy_cache, axis)


def _ferries(b: _Builder, rng: np.random.Generator, towns: dict[tuple[int, int], dict],
             nx_: int, ny_: int) -> None:
    """Car ferries with a tagged duration, and foot ferries (every third)."""
    for k in range(12):
        ti, tj = int(rng.integers(nx_ - 1)), int(rng.integers(ny_))
        t, other = towns[ti, tj], towns[ti + 1, tj]
        a, dest = int(t["sw"]), int(other["sw"])
        start = t["xy"] - t["half"]
        stop = other["xy"] - other["half"]
        pts = b.nodes(b.line(start, stop, 1500.0) + np.array([0.0, -300.0]))
        if k % 3 == 2:
            b.way(np.r_[a, pts, dest], {"route": "ferry", "foot": "yes", "bicycle": "yes"})
        else:
            b.way(np.r_[a, pts, dest], {"route": "ferry", "motor_vehicle": "yes",
                                        "duration": "00:20", "interval": "00:30"},
                  drivable=True)


def write_synthetic_country(path: str | Path, scale: float = 1.0, seed: int = 0,
                            cells: tuple[int, int] | list[int] | None = None) -> dict:
    """Write the synthetic country PBF; ``scale`` multiplies the town sizes (1.0 gives
    >= 2 million drivable nodes); ``cells`` limits the town lattice (small test files).
    Returns counts."""
    rng = np.random.default_rng(seed)
    b = _Builder()
    nx_, ny_ = int((X1 - X0) // CELL), int((Y1 - Y0) // CELL)
    if cells is not None:
        nx_, ny_ = min(nx_, cells[0]), min(ny_, cells[1])
    # one random stream, drawn in this order: towns, rural roads, motorways, ferries
    towns, xy_cache = _lay_towns(b, rng, nx_, ny_, scale)
    _rural_roads(b, rng, towns, xy_cache)
    _motorways(b, rng, towns, xy_cache, nx_, ny_)
    _ferries(b, rng, towns, nx_, ny_)
    counts = b.write(Path(path))
    counts["towns"] = len(towns)
    return counts


#: Runs the CLI in-process and reports that process's own peak RSS (RUSAGE_CHILDREN of the
#: caller would mix in every earlier child, e.g. the generator).
_CLI_WITH_PEAK = (
    "import resource, sys\n"
    "from herschik.scenarios.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _time_cli(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Wall time and peak RSS (MB) of ``herschik ARGS`` run in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CLI_WITH_PEAK, *args], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kb = None
    for line in proc.stderr.splitlines():
        if line.startswith("PEAK_RSS_KB "):
            peak_kb = float(line.split()[1])
    return {"returncode": proc.returncode, "seconds": round(wall, 2),
            "peak_rss_mb": None if peak_kb is None else round(peak_kb / 1024, 1),
            "stdout": proc.stdout.strip()[-500:], "stderr": proc.stderr.strip()[-500:]}


MATRIX_SNIPPET = r"""
import json, sys, time
t0 = time.perf_counter()
from herschik.geo.dataset import load_dataset
from herschik.geo.traveltime import area_site_travel
ds = load_dataset(None)
a = ds.areas[["x", "y"]].to_numpy(float)
s = ds.sites[["x", "y"]].to_numpy(float)
t1 = time.perf_counter()
tr = area_site_travel(a, s, network=sys.argv[1])
t2 = time.perf_counter()
import numpy as np
m = tr.minutes
print(json.dumps({"areas": len(a), "sites": len(s), "seconds": t2 - t1,
                  "load_seconds": t1 - t0, "finite_share": float(np.isfinite(m).mean()),
                  "median_min": float(np.median(m[np.isfinite(m)])),
                  "max_area_snap_m": float(tr.area_snap_m.max()),
                  "max_site_snap_m": float(tr.site_snap_m.max())}))
"""


def run(scale: float = 3.0, workdir: str | None = None, keep: bool = False,
        cells: tuple[int, int] | None = None) -> dict[str, Any]:
    """Generate, build, time the matrix; returns the numbers for RESULTS.md (``cells``: a
    small lattice, for the smoke test)."""
    tmp = tempfile.TemporaryDirectory(prefix="herschik-bench-network-", dir=workdir)
    d = Path(tmp.name)
    out: dict[str, Any] = {"scale": scale}
    try:
        pbf = d / "synthetic-country.osm.pbf"
        t0 = time.perf_counter()
        # generated in its own process, so that this one stays small
        gen = subprocess.run(
            [sys.executable, "-c", "import json, sys; from benchmarks.bench_network import "
             "write_synthetic_country as w; print(json.dumps(w(sys.argv[1], float(sys.argv[2]),"
             " cells=json.loads(sys.argv[3]))))", str(pbf), str(scale), json.dumps(cells)],
            cwd=REPO, capture_output=True, text=True, check=True)
        out["generated"] = json.loads(gen.stdout.strip().splitlines()[-1])
        out["generate_seconds"] = round(time.perf_counter() - t0, 1)
        out["pbf_mb"] = round(pbf.stat().st_size / 2**20, 1)
        net = d / "country.npz"
        cache = d / "cache"
        env = {"HERSCHIK_CACHE_DIR": str(cache)}
        load_before = os.getloadavg()
        build = _time_cli(["network", "build", "--osm", str(pbf), "--out", str(net)], env)
        out["build"] = build
        out["load_average_at_build"] = [round(v, 2) for v in load_before]
        if build["returncode"] != 0:
            out["status"] = "error"
            return out
        z = np.load(net)
        out["network"] = {"nodes": int(len(z["x"])), "edges": int(len(z["u"])),
                          "file_mb": round(net.stat().st_size / 2**20, 1)}
        runs = []
        for _ in range(2):  # cold (empty cache), then cached
            r = subprocess.run([sys.executable, "-c", MATRIX_SNIPPET, str(net)], cwd=REPO,
                               env={**os.environ, **env}, capture_output=True, text=True)
            if r.returncode != 0:
                out["matrix_error"] = r.stderr.strip()[-500:]
                break
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        if len(runs) == 2:
            out["matrix_cold"] = runs[0]
            out["matrix_cached"] = runs[1]
        out["goal_build_met"] = (build["seconds"] <= GOAL_BUILD_S
                                 and build["peak_rss_mb"] is not None
                                 and build["peak_rss_mb"] <= GOAL_BUILD_MB)
        out["goal_matrix_met"] = bool(runs) and runs[0]["seconds"] <= GOAL_MATRIX_COLD_S
        out["status"] = "ok"
        return out
    finally:
        if not keep:
            tmp.cleanup()


if __name__ == "__main__":
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    print(json.dumps(run(scale), indent=2))


def render(res: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """RESULTS.md lines and goal rows of the ``network`` section."""
    if res.get("status") != "ok":
        return (["## Road network at country scale", "",
                 f"Not measured: {res.get('reason') or res.get('build', {}).get('stderr')}",
                 ""], [])
    g, b, n = res["generated"], res["build"], res["network"]
    cold, hot = res.get("matrix_cold", {}), res.get("matrix_cached", {})
    lines = [
        "## Road network at country scale (`benchmarks/bench_network.py`)", "",
        f"Synthetic country PBF written with pyosmium ({g['towns']:,} towns on a 5 km lattice "
        "over the Dutch RD extent, street grids, rural roads, dual-carriageway motorways with "
        "ramps and emergency crossovers, ferries, buildings, footways, POIs, turn "
        f"restrictions): {g['nodes']:,} nodes of which {g['drivable_nodes']:,} on drivable "
        f"ways, {g['ways']:,} ways, {g['relations']:,} relations, {res['pbf_mb']} MB "
        f"(generated in {res['generate_seconds']} s). Load average at the build: "
        f"{res.get('load_average_at_build')}.", "",
        "| step | seconds | peak RSS MB | result |", "|---|---|---|---|",
        f"| `herschik network build --osm` (fresh process) | {b['seconds']} | "
        f"{b['peak_rss_mb']} | {n['nodes']:,} nodes, {n['edges']:,} edges, "
        f"{n['file_mb']} MB file |",
    ]
    if cold:
        lines += [
            f"| OD matrix {cold['areas']:,} districts × {cold['sites']} sites, cold (fresh "
            f"process, empty cache; network read included) | {cold['seconds']:.1f} | | "
            f"median {cold['median_min']:.0f} min, {cold['finite_share']:.0%} finite |",
            f"| same, cached (fresh process) | {hot['seconds']:.2f} | | |",
        ]
    lines.append("")
    goals = [
        ("country-size network build ≤ 15 min, ≤ 8 GB", "met" if res.get("goal_build_met")
         else "**missed**", f"{b['seconds']:.0f} s, {b['peak_rss_mb']:.0f} MB"),
    ]
    if cold:
        goals.append(("national OD matrix (3,340 × 111) ≤ 60 s cold",
                      "met" if res.get("goal_matrix_met") else "**missed**",
                      f"{cold['seconds']:.1f} s cold, {hot['seconds']:.2f} s cached"))
    return lines, goals
