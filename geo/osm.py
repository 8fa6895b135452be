"""Stream an OpenStreetMap extract into the drivable road network in bounded memory.

Reads ``.osm.pbf``, ``.osm`` and ``.osm.bz2`` with pyosmium (libosmium; see
docs/decisions/0001-osm-streaming.md) in two passes:

1. **ways** (C++-side key filter ``highway``/``route``): each way is classified by the tag
   rules below (drivable class, motor-vehicle access, oneway, speed per direction, ferry
   crossing time); kept ways append their node ids to one flat ``int64`` buffer;
2. **nodes** (C++-side id filter, so Python sees only nodes of kept ways): coordinates into
   flat arrays.

The topology is then built with numpy only (no Python object per node): graph nodes are way
ends and nodes shared by two or more way pieces; the run of way nodes between two graph
nodes becomes one edge (length = sum of great-circle segment lengths, as osmnx
``simplify_graph`` does). Only the largest strongly connected component is kept (osmnx
``largest_component(strongly=True)``) and coordinates are projected to EPSG:28992.

Tag rules (Dutch, documented in DATA.md):

* drivable classes :data:`DRIVABLE` (``motorway`` ... ``service``, ``road``); ``area=yes``,
  ``service=parking_aisle|driveway|drive-through|emergency_access`` and ways without motor
  access are dropped. Access is decided by the most specific of ``motorcar``,
  ``motor_vehicle``, ``vehicle``, ``access`` (so ``access=no`` + ``motor_vehicle=yes`` is
  open); :data:`ACCESS_DENIED` values close the way. Emergency crossovers between the two
  carriageways of a motorway are tagged so and are therefore never U-turn shortcuts.
* ``oneway=yes|true|1`` forward only, ``-1|reverse`` backward only; implied oneway on
  ``junction=roundabout|circular`` and ``highway=motorway|motorway_link``;
  ``oneway=reversible|alternating`` ways are dropped (direction depends on the time).
* speed (km/h) per direction: ``maxspeed:forward|backward``, else ``maxspeed`` (numbers,
  ``mph``, ``;``-lists -> mean, implicit zones such as ``NL:urban`` via
  :data:`IMPLICIT_MAXSPEED`), else ``maxspeed:type``/``source:maxspeed``/``zone:maxspeed``,
  else the class default (:data:`DUTCH_HWY_SPEEDS`).
* ferries: ``route=ferry`` ways that carry cars (``motorcar``/``motor_vehicle``
  yes|designated|permissive, or a ``highway`` tag on the ferry way); time = ``duration`` tag
  (``HH:MM``, ``HH:MM:SS``, minutes, ISO 8601 ``PT1H30M``) or length at :data:`FERRY_KMH`,
  plus a waiting time of half the ``interval`` tag, else :data:`FERRY_WAIT_S`.
* turn restriction relations are counted (``meta["turn_restrictions_ignored"]``), not applied:
  a node-based graph cannot express them without splitting nodes.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Dutch default driving speeds (km/h) per OSM highway class, used where ``maxspeed`` is absent.
DUTCH_HWY_SPEEDS: dict[str, float] = {
    "motorway": 115.0,
    "motorway_link": 70.0,
    "trunk": 90.0,
    "trunk_link": 60.0,
    "primary": 80.0,
    "primary_link": 50.0,
    "secondary": 70.0,
    "secondary_link": 50.0,
    "tertiary": 55.0,
    "tertiary_link": 40.0,
    "unclassified": 45.0,
    "residential": 30.0,
    "living_street": 15.0,
    "service": 20.0,
    "road": 40.0,
}
#: Speed (km/h) for drivable classes missing from :data:`DUTCH_HWY_SPEEDS`.
FALLBACK_SPEED = 40.0

#: Highway classes kept as drivable, in code order (the compact format stores the index).
HIGHWAY_CLASSES: tuple[str, ...] = (
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified",
    "residential", "living_street", "service", "road", "ferry",
)
DRIVABLE = frozenset(HIGHWAY_CLASSES) - {"ferry"}
_CODE = {h: i for i, h in enumerate(HIGHWAY_CLASSES)}
FERRY_CODE = _CODE["ferry"]

#: Access values that close a way to private cars.
ACCESS_DENIED = frozenset({
    "no", "private", "agricultural", "forestry", "emergency", "military", "delivery",
    "permit", "bus", "psv", "use_sidepath", "restricted", "official",
})
_ACCESS_OPEN = frozenset({"yes", "designated", "permissive", "destination", "customers"})
#: ``service=*`` values that are not through roads for patients' cars.
SERVICE_DROPPED = frozenset({"parking_aisle", "driveway", "drive-through", "emergency_access"})
#: Implicit speed limits (km/h) of ``maxspeed`` / ``maxspeed:type`` values (NL and neighbours).
IMPLICIT_MAXSPEED: dict[str, float] = {
    "nl:urban": 50.0, "nl:rural": 80.0, "nl:motorway": 130.0, "nl:trunk": 100.0,
    "nl:expressway": 100.0, "nl:living_street": 15.0, "nl:zone30": 30.0, "nl:zone60": 60.0,
    "nl:bicycle_road": 30.0, "nl:30": 30.0, "nl:60": 60.0,
    "be:urban": 50.0, "be-vlg:rural": 70.0, "be-wal:rural": 90.0, "be:rural": 70.0,
    "be:motorway": 120.0, "be:zone30": 30.0,
    "de:urban": 50.0, "de:rural": 100.0, "de:motorway": 130.0, "de:living_street": 7.0,
    "de:zone30": 30.0, "de:bicycle_road": 30.0,
    "walk": 7.0,
}
#: Ferry speed (km/h, docking included) when the ferry way has no ``duration``.
FERRY_KMH = 15.0
#: Highest believable ferry speed (km/h); a ``duration`` implying more is ignored.
FERRY_MAX_KMH = 60.0
#: Waiting time (s) before a ferry crossing when no ``interval`` is tagged (half an hourly
#: service, less the planners' habit of arriving on time).
FERRY_WAIT_S = 15 * 60.0
#: Mean Earth radius (m), as osmnx ``great_circle``.
EARTH_RADIUS_M = 6_371_009.0

_YES = frozenset({"yes", "true", "1"})
_NUMBER = re.compile(r"^\s*([0-9]+(?:[.,][0-9]+)?)\s*(km/h|kmh|kph|mph|knots)?\s*$")
_ISO = re.compile(r"^P(?:T)?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


# --------------------------------------------------------------------------------------
# tag rules (pure functions of a tag mapping; unit-tested one by one)
# --------------------------------------------------------------------------------------
def parse_maxspeed(value: str | None) -> float:
    """km/h of a ``maxspeed`` value; NaN when absent or not a speed (``none``, ``signals``).

    ``"50"``, ``"50 km/h"``, ``"30 mph"``, ``"NL:urban"`` (implicit, :data:`IMPLICIT_MAXSPEED`)
    and ``;``-lists (mean, as osmnx) are understood.
    """
    if value is None:
        return math.nan
    speeds = []
    for part in str(value).split(";"):
        s = part.strip().lower()
        if not s:
            continue
        if s in IMPLICIT_MAXSPEED:
            speeds.append(IMPLICIT_MAXSPEED[s])
            continue
        m = _NUMBER.match(s)
        if m:
            v = float(m.group(1).replace(",", "."))
            unit = m.group(2)
            if unit == "mph":
                v *= 1.609344
            elif unit == "knots":
                v *= 1.852
            if v > 0:
                speeds.append(v)
    return float(np.mean(speeds)) if speeds else math.nan


def parse_duration_s(value: str | None) -> float:
    """Seconds of an OSM ``duration``/``interval`` value (``HH:MM``, ``HH:MM:SS``, minutes,
    ISO 8601 ``PT1H30M``); NaN if absent or unreadable."""
    if value is None:
        return math.nan
    s = str(value).strip().upper()
    try:
        if ":" in s:
            parts = [float(p) for p in s.split(":")]
            if len(parts) == 2:
                return parts[0] * 3600 + parts[1] * 60
            if len(parts) == 3:
                return parts[0] * 3600 + parts[1] * 60 + parts[2]
            return math.nan
        m = _ISO.match(s)
        if m and any(m.groups()):
            h, mi, se = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + se
        v = float(s)
        return v * 60 if v > 0 else math.nan
    except ValueError:
        return math.nan


def motor_access(tags: Any) -> bool:
    """Whether private cars may use the way: the most specific access key decides."""
    for key in ("motorcar", "motor_vehicle", "vehicle", "access"):
        v = tags.get(key)
        if v is not None:
            return v.split(";")[0].strip().lower() not in ACCESS_DENIED
    return True


def oneway_direction(tags: Any) -> int:
    """``1`` forward only, ``-1`` backward only, ``0`` both ways, ``2`` unusable (reversible)."""
    v = (tags.get("oneway") or "").strip().lower()
    if v in _YES:
        return 1
    if v in ("-1", "reverse"):
        return -1
    if v in ("reversible", "alternating"):
        return 2
    if v in ("no", "false", "0"):
        return 0
    if (tags.get("junction") or "") in ("roundabout", "circular"):
        return 1
    if (tags.get("highway") or "") in ("motorway", "motorway_link"):
        return 1
    return 0


def _implicit_speed(tags: Any) -> float:
    for key in ("maxspeed:type", "source:maxspeed", "zone:maxspeed", "zone:traffic"):
        v = parse_maxspeed(tags.get(key))
        if not math.isnan(v):
            return v
    return math.nan


def way_speeds(tags: Any, highway: str, defaults: dict[str, float]) -> tuple[float, float, float,
                                                                              float]:
    """(speed forward, speed backward, maxspeed forward, maxspeed backward) in km/h.

    Speed = the tagged limit of that direction, else the implicit zone limit, else the class
    default; maxspeed is the tagged limit or NaN (as stored in the compact format).
    """
    base = parse_maxspeed(tags.get("maxspeed"))
    if math.isnan(base):
        base = _implicit_speed(tags)
    fwd = parse_maxspeed(tags.get("maxspeed:forward"))
    bwd = parse_maxspeed(tags.get("maxspeed:backward"))
    fwd = base if math.isnan(fwd) else fwd
    bwd = base if math.isnan(bwd) else bwd
    default = defaults.get(highway, FALLBACK_SPEED)
    return (default if math.isnan(fwd) else fwd, default if math.isnan(bwd) else bwd, fwd, bwd)


def ferry_carries_cars(tags: Any) -> bool:
    """A ``route=ferry`` way that private cars can take."""
    for key in ("motorcar", "motor_vehicle"):
        v = (tags.get(key) or "").strip().lower()
        if v:
            return v in _ACCESS_OPEN
    return tags.get("highway") is not None and motor_access(tags)


@dataclass(frozen=True)
class WayRule:
    """What the tag rules decided for one way."""

    highway: str
    oneway: int
    speed_fwd: float
    speed_bwd: float
    maxspeed_fwd: float
    maxspeed_bwd: float
    ferry_duration_s: float = math.nan  # tagged crossing + wait; NaN -> from length
    ferry_wait_s: float = math.nan


def classify_way(tags: Any, defaults: dict[str, float] | None = None) -> WayRule | None:
    """The :class:`WayRule` of a way with these tags, or ``None`` if cars cannot use it."""
    if defaults is None:
        defaults = DUTCH_HWY_SPEEDS
    if (tags.get("route") or "") == "ferry":
        if not ferry_carries_cars(tags):
            return None
        crossing = parse_duration_s(tags.get("duration"))
        interval = parse_duration_s(tags.get("interval"))
        wait = interval / 2 if not math.isnan(interval) else FERRY_WAIT_S
        return WayRule("ferry", 0, FERRY_KMH, FERRY_KMH, math.nan, math.nan, crossing, wait)
    hw = tags.get("highway")
    if hw not in DRIVABLE:
        return None
    if (tags.get("area") or "") == "yes" or not motor_access(tags):
        return None
    if hw == "service" and (tags.get("service") or "") in SERVICE_DROPPED:
        return None
    direction = oneway_direction(tags)
    if direction == 2:
        return None
    return WayRule(hw, direction, *way_speeds(tags, hw, defaults))


# --------------------------------------------------------------------------------------
# the streamed network
# --------------------------------------------------------------------------------------
@dataclass
class RoadArrays:
    """A directed road network as flat arrays (the result of :func:`read_osm`).

    Nodes ``i`` have ``node_id[i]`` (OSM id), ``x[i]``, ``y[i]`` (m, ``crs``) and ``lon``,
    ``lat``; directed edges ``u[k] -> v[k]`` (positions) carry ``length`` (m), ``travel_time``
    (s), ``speed_kph``, ``maxspeed`` (km/h tagged, NaN if untagged), ``highway`` (code into
    :data:`HIGHWAY_CLASSES`), ``oneway`` (bool, osmnx meaning) and ``osmid`` (way id).
    """

    node_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    travel_time: np.ndarray
    speed_kph: np.ndarray
    maxspeed: np.ndarray
    highway: np.ndarray
    oneway: np.ndarray
    osmid: np.ndarray
    crs: str = "EPSG:28992"
    meta: dict = field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        return len(self.node_id)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    def to_networkx(self):
        """The osmnx-style ``MultiDiGraph`` (node ``x, y, lon, lat``; edge ``osmid, highway,
        oneway, length, maxspeed, speed_kph, travel_time``). Python objects per node: for
        regional extracts; the CLI writes country networks straight from the arrays."""
        import networkx as nx

        G = nx.MultiDiGraph(crs=self.crs, name=self.meta.get("name", "osm"), simplified=True)
        ids = self.node_id.tolist()
        G.add_nodes_from(
            (n, {"x": a, "y": b, "lon": lo, "lat": la})
            for n, a, b, lo, la in zip(ids, self.x.tolist(), self.y.tolist(),
                                       self.lon.tolist(), self.lat.tolist())
        )
        names = HIGHWAY_CLASSES
        G.add_edges_from(
            (ids[a], ids[b], {
                "osmid": w, "highway": names[h], "oneway": bool(o), "length": ln,
                "maxspeed": ms, "speed_kph": sp_, "travel_time": tt,
            })
            for a, b, w, h, o, ln, ms, sp_, tt in zip(
                self.u.tolist(), self.v.tolist(), self.osmid.tolist(), self.highway.tolist(),
                self.oneway.tolist(), self.length.tolist(), self.maxspeed.tolist(),
                self.speed_kph.tolist(), self.travel_time.tolist())
        )
        return G


def _haversine(lon1, lat1, lon2, lat2) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


class _Ways:
    """Growing flat buffers of the kept ways (pass 1)."""

    def __init__(self) -> None:
        self.refs = array("q")
        self.start = array("q")
        self.osmid = array("q")
        self.code = array("b")
        self.oneway = array("b")
        self.speed_f = array("f")
        self.speed_b = array("f")
        self.max_f = array("f")
        self.max_b = array("f")
        self.ferry_crossing = array("f")
        self.ferry_wait = array("f")

    def add(self, way_id: int, refs: list[int], rule: WayRule) -> None:
        self.start.append(len(self.refs))
        self.refs.extend(refs)
        self.osmid.append(way_id)
        self.code.append(_CODE[rule.highway])
        self.oneway.append(rule.oneway)
        self.speed_f.append(rule.speed_fwd)
        self.speed_b.append(rule.speed_bwd)
        self.max_f.append(rule.maxspeed_fwd)
        self.max_b.append(rule.maxspeed_bwd)
        self.ferry_crossing.append(rule.ferry_duration_s)
        self.ferry_wait.append(rule.ferry_wait_s)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {k: np.frombuffer(getattr(self, k), dtype=getattr(self, k).typecode)
               for k in ("refs", "start", "osmid", "code", "oneway", "speed_f", "speed_b",
                         "max_f", "max_b", "ferry_crossing", "ferry_wait")}
        return out


def _check_input(path: Path) -> None:
    name = path.name.lower()
    if not name.endswith((".pbf", ".osm", ".osm.bz2", ".osm.gz", ".xml", ".xml.bz2")):
        raise ValueError(f"{path}: expected .osm.pbf, .osm or .osm.bz2")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")


def read_osm(
    path: str | Path, hwy_speeds: dict[str, float] | None = None, to_crs: str = "EPSG:28992",
    largest_component: bool = True,
) -> RoadArrays:
    """Stream ``path`` (``.osm.pbf``, ``.osm``, ``.osm.bz2``) into the drivable network.

    Parameters
    ----------
    path
        The OSM extract.
    hwy_speeds
        Default km/h per highway class where no limit is tagged (default
        :data:`DUTCH_HWY_SPEEDS`).
    to_crs
        CRS of ``x``, ``y`` (default EPSG:28992, RD New).
    largest_component
        Keep only the largest strongly connected component (as osmnx).

    Raises
    ------
    ValueError
        Unreadable file or no drivable road in it.
    """
    import osmium  # the PBF/XML reader: only when an OSM file is read

    path = Path(path)
    _check_input(path)
    defaults = dict(DUTCH_HWY_SPEEDS if hwy_speeds is None else hwy_speeds)
    ways = _Ways()
    restrictions = 0
    ways_seen = 0
    try:
        # pass 1: ways (and restriction relations, counted only)
        fp = osmium.FileProcessor(str(path), osmium.osm.WAY | osmium.osm.RELATION)
        fp = fp.with_filter(osmium.filter.KeyFilter("highway", "route", "restriction"))
        for obj in fp:
            if obj.is_relation():
                if (obj.tags.get("type") or "") == "restriction":
                    restrictions += 1
                continue
            ways_seen += 1
            rule = classify_way(obj.tags, defaults)
            if rule is None:
                continue
            refs = [n.ref for n in obj.nodes]
            if len(refs) >= 2:
                ways.add(obj.id, refs, rule)
        w = ways.arrays()
        del ways
        if len(w["start"]) == 0:
            raise ValueError(f"{path}: the OSM data contains no drivable roads")
        refs_sorted = np.sort(w["refs"])
        keep = np.ones(len(refs_sorted), bool)
        keep[1:] = refs_sorted[1:] != refs_sorted[:-1]
        node_ids = refs_sorted[keep]
        del refs_sorted, keep
        # pass 2: coordinates of the needed nodes only; the id filter and the location store
        # run in C++ (no Python object per node of the file)
        wanted = node_ids.tolist()
        store = osmium.index.create_map("sparse_mem_array")
        reader = osmium.io.Reader(str(path), osmium.osm.NODE)
        try:
            osmium.apply(reader, osmium.filter.IdFilter(wanted),
                         osmium.NodeLocationsForWays(store))
        finally:
            reader.close()
    except RuntimeError as error:  # libosmium: corrupt or truncated input
        raise ValueError(f"{path}: not a readable OSM file ({error})") from None
    lon = np.full(len(wanted), np.nan)
    lat = np.full(len(wanted), np.nan)
    get = store.get
    for k, nid in enumerate(wanted):
        try:
            loc = get(nid)
        except KeyError:  # not in the extract (a way crossing its boundary)
            continue
        if loc.valid():
            lon[k] = loc.lon
            lat[k] = loc.lat
    del wanted, store
    present = ~np.isnan(lon)
    node_ids, lon, lat = node_ids[present], lon[present], lat[present]
    net = _topology(w, node_ids, lon, lat, largest_component)
    if net.n_edges == 0:
        raise ValueError(f"{path}: no drivable road of the OSM data has node coordinates in "
                         "the file")
    net.meta.update({
        "name": path.name, "source": "osm", "ways_read": ways_seen,
        "ways_kept": int(len(w["start"])), "turn_restrictions_ignored": restrictions,
    })
    _project(net, to_crs)
    return net


def _topology(w: dict[str, np.ndarray], node_ids: np.ndarray, lon: np.ndarray,
              lat: np.ndarray, largest_component: bool) -> RoadArrays:
    """Way node runs -> simplified directed edges between graph nodes (numpy only)."""
    refs = w["refs"]
    starts = w["start"]
    n_refs = len(refs)
    lengths = np.diff(np.append(starts, n_refs))
    way_of = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    pos = np.searchsorted(node_ids, refs)
    pos = np.minimum(pos, max(len(node_ids) - 1, 0))
    found = (node_ids[pos] == refs) if len(node_ids) else np.zeros(n_refs, bool)
    idx = np.nonzero(found)[0]
    p = pos[idx]
    wy = way_of[idx]
    del pos, found, way_of
    # a new piece where the way changes, a node is missing in the extract, or the way
    # repeats a node straight after itself (zero-length segment)
    new_piece = np.ones(len(idx), bool)
    if len(idx) > 1:
        new_piece[1:] = (wy[1:] != wy[:-1]) | (idx[1:] - idx[:-1] != 1)
        dup = ~new_piece[1:] & (p[1:] == p[:-1])
        if dup.any():
            keep = np.ones(len(idx), bool)
            keep[1:][dup] = False
            idx, p, wy = idx[keep], p[keep], wy[keep]
            new_piece = new_piece[keep]
    piece = np.cumsum(new_piece) - 1
    last_of_piece = np.ones(len(p), bool)
    last_of_piece[:-1] = new_piece[1:]
    count = np.bincount(p, minlength=len(node_ids))
    cut = new_piece | last_of_piece | (count[p] >= 2)
    same = np.zeros(len(p), bool)  # segment i -> i+1 inside one piece
    same[:-1] = ~new_piece[1:]
    seg = np.zeros(len(p))
    if len(p) > 1:
        seg[:-1] = _haversine(lon[p[:-1]], lat[p[:-1]], lon[p[1:]], lat[p[1:]]) * same[:-1]
    cum = np.concatenate([[0.0], np.cumsum(seg)])[: len(p)]
    c = np.nonzero(cut)[0]
    pair = piece[c[:-1]] == piece[c[1:]]
    a, b = c[:-1][pair], c[1:][pair]
    eu, ev = p[a], p[b]
    elen = cum[b] - cum[a]
    eway = wy[a]
    piece_len = np.bincount(piece, weights=seg, minlength=int(piece[-1]) + 1 if len(p) else 0)
    e_piece_len = piece_len[piece[a]]
    del refs, idx, p, wy, piece, cut, same, seg, cum, c, a, b, new_piece, last_of_piece, count
    loop = eu == ev
    eu, ev, elen, eway, e_piece_len = (arr[~loop] for arr in (eu, ev, elen, eway, e_piece_len))

    code = w["code"][eway]
    oneway = w["oneway"][eway]
    ferry = code == FERRY_CODE
    # ferry: crossing (tagged, or at FERRY_KMH) + wait, shared by length over its edges
    crossing = w["ferry_crossing"][eway].astype(np.float64)
    by_length = e_piece_len / (FERRY_KMH / 3.6)
    # a duration that would mean a ferry faster than FERRY_MAX_KMH is a tagging error
    crossing = np.where(np.isnan(crossing) | (e_piece_len > crossing * FERRY_MAX_KMH / 3.6),
                        by_length, crossing)
    share = np.divide(elen, e_piece_len, out=np.ones_like(elen), where=e_piece_len > 0)
    ferry_time = (crossing + w["ferry_wait"][eway]) * share

    fwd = oneway >= 0
    bwd = oneway <= 0
    U = np.concatenate([eu[fwd], ev[bwd]])
    V = np.concatenate([ev[fwd], eu[bwd]])
    L = np.concatenate([elen[fwd], elen[bwd]])
    S = np.concatenate([w["speed_f"][eway][fwd], w["speed_b"][eway][bwd]]).astype(np.float64)
    M = np.concatenate([w["max_f"][eway][fwd], w["max_b"][eway][bwd]]).astype(np.float64)
    H = np.concatenate([code[fwd], code[bwd]]).astype(np.int8)
    OW = np.concatenate([oneway[fwd] != 0, oneway[bwd] != 0])
    W = np.concatenate([w["osmid"][eway][fwd], w["osmid"][eway][bwd]])
    F = np.concatenate([ferry[fwd], ferry[bwd]])
    FT = np.concatenate([ferry_time[fwd], ferry_time[bwd]])
    T = np.where(F, FT, L / (S / 3.6))
    S = np.where(F & (T > 0), L / np.maximum(T, 1e-9) * 3.6, S)
    # a zero-length edge (two nodes at one position) still takes a moment
    T = np.maximum(T, 0.1)
    del eu, ev, elen, eway, code, oneway, ferry, ferry_time, crossing, share, e_piece_len

    used, inv = np.unique(np.concatenate([U, V]), return_inverse=True)
    U, V = inv[: len(U)].astype(np.int32), inv[len(U):].astype(np.int32)
    dropped = 0
    if largest_component and len(used):
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components

        g = sp.csr_matrix((np.ones(len(U), np.int8), (U, V)), shape=(len(used),) * 2)
        _, label = connected_components(g, directed=True, connection="strong")
        big = np.argmax(np.bincount(label))
        keep_node = label == big
        dropped = int((~keep_node).sum())
        keep_edge = keep_node[U] & keep_node[V]
        remap = np.cumsum(keep_node) - 1
        used = used[keep_node]
        U, V = remap[U[keep_edge]].astype(np.int32), remap[V[keep_edge]].astype(np.int32)
        L, T, S, M, H, OW, W = (arr[keep_edge] for arr in (L, T, S, M, H, OW, W))
    return RoadArrays(
        node_id=node_ids[used], x=np.empty(0), y=np.empty(0), lon=lon[used], lat=lat[used],
        u=U, v=V, length=L, travel_time=T, speed_kph=S.astype(np.float32),
        maxspeed=M.astype(np.float32), highway=H, oneway=OW, osmid=W,
        meta={"nodes_outside_largest_component": dropped},
    )


def _project(net: RoadArrays, to_crs: str) -> None:
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:4326", to_crs, always_xy=True)
    x, y = t.transform(net.lon, net.lat)
    net.x = np.asarray(x, dtype=np.float64)
    net.y = np.asarray(y, dtype=np.float64)
    net.crs = to_crs
