"""Does a road network fit the region it is used for? Snap distances and edge-time sanity.

Two checks, run for every network (the embedded default, a built OSM network, any file):

* :func:`check_edge_times` (when a network file is read): every edge time is finite and
  positive, implied speeds are at most :data:`MAX_KMH` (:data:`MAX_FERRY_KMH` on ferries) and
  at least the lower bound of the edge's road class (:data:`MIN_KMH_BY_CLASS`)
  and no edge inside the RD New domain is shorter than the straight line between its ends
  (coordinates scaled or swapped after the lengths were computed).
* :func:`check_snap` (when areas and sites are put on the network): every area and site lies
  within :data:`MAX_SNAP_M` of a network node. A network of another part of the world, or
  one with scaled coordinates, fails for (nearly) every point.

Both raise :class:`CoverageError` (a :class:`herschik.errors.DataError`, so the CLI exits 2 with
one line) with counts and the first names.
"""

from __future__ import annotations

import numpy as np

from herschik.errors import DataError

#: Largest allowed distance (m) from an area or site point to its nearest network node. A
#: district centroid or hospital lies within a few hundred metres of a drivable road in the
#: Netherlands; 5 km leaves room for coarse networks (the embedded default snaps every site
#: within 2.4 km) while refusing a network that does not cover the region.
MAX_SNAP_M = 5_000.0
#: Highest plausible implied speed (km/h) of a road edge, and of a ferry edge.
MAX_KMH = 200.0
MAX_FERRY_KMH = 80.0
#: Lowest plausible implied speed (km/h) per road class (edges over 50 m): a motorway or trunk
#: road is driven at walking pace by no planner's network; other roads (5 km/h parking lanes
#: exist) and ferries (waiting included) only have to move at all. Issue 27: a network with
#: every edge 1000 x slower was accepted.
MIN_KMH_BY_CLASS = {"motorway": 30.0, "trunk": 15.0, "motorway_link": 5.0, "trunk_link": 5.0,
                    "primary": 5.0, "secondary": 5.0, "ferry": 1.0}
MIN_KMH = 2.0
#: Extent (m) of EPSG:28992 (RD New) where its distances are true to scale.
RD_DOMAIN = (-7_000.0, 289_000.0, 300_000.0, 629_000.0)
#: How many names an error message lists.
N_EXAMPLES = 5


class CoverageError(DataError, ValueError):
    """The network does not cover the points, or its edge times are implausible."""

    def __init__(self, file: str, field: str | None, message: str, count: int = 0,
                 names: list[str] | None = None) -> None:
        self.count = count
        self.names = list(names or [])
        super().__init__(file, None, field, message)

    def __reduce__(self):  # picklable across process pools
        return (CoverageError, (self.file, self.field, self.message, self.count, self.names))


def _examples(names: list[str]) -> str:
    more = len(names) - N_EXAMPLES
    return ", ".join(names[:N_EXAMPLES]) + (f" and {more} more" if more > 0 else "")


def check_edge_times(arrays: dict[str, np.ndarray], source: str = "network") -> None:
    """Refuse non-finite, zero or negative edge times and implausible speeds or lengths.

    ``arrays`` holds ``x, y, u, v, travel_time`` and optionally ``length`` (m), ``highway``
    (codes) with ``highway_names``.
    """
    tt = np.asarray(arrays["travel_time"], dtype=np.float64)
    u = np.asarray(arrays["u"], dtype=np.int64)
    v = np.asarray(arrays["v"], dtype=np.int64)
    ids = np.asarray(arrays.get("node_id", np.arange(len(arrays["x"]))))
    m = len(tt)
    if m == 0:
        raise CoverageError(source, "travel_time", "the network has no edges")

    def edge_names(mask: np.ndarray) -> list[str]:
        k = np.nonzero(mask)[0][:N_EXAMPLES]
        return [f"{ids[u[i]]}->{ids[v[i]]} ({tt[i]:g} s)" for i in k]

    bad = ~np.isfinite(tt) | (tt <= 0)
    if bad.any():
        n = int(bad.sum())
        raise CoverageError(
            source, "travel_time",
            f"{n} of {m} edges have a travel time that is not a positive number, e.g. "
            f"{_examples(edge_names(bad))}", n, edge_names(bad))
    x = np.asarray(arrays["x"], dtype=np.float64)
    y = np.asarray(arrays["y"], dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise CoverageError(source, "x", "the network has node coordinates that are not finite")
    length = arrays.get("length")
    if length is None:
        return
    length = np.asarray(length, dtype=np.float64)
    known = np.isfinite(length)
    ferry = np.zeros(m, bool)
    min_kmh = np.full(m, MIN_KMH)
    if "highway" in arrays and "highway_names" in arrays:
        names = [str(h) for h in np.asarray(arrays["highway_names"]).tolist()]
        if "ferry" in names:
            ferry = np.asarray(arrays["highway"]) == names.index("ferry")
        by_code = np.array([MIN_KMH_BY_CLASS.get(n, MIN_KMH) for n in names] or [MIN_KMH])
        codes = np.asarray(arrays["highway"], dtype=np.int64)
        min_kmh = by_code[np.clip(codes, 0, len(by_code) - 1)]
    kmh = np.where(known, length / tt * 3.6, 0.0)
    slow = known & (length > 50) & (kmh < min_kmh)
    if slow.any():
        n = int(slow.sum())
        raise CoverageError(
            source, "travel_time",
            f"{n} of {m} edges imply an implausibly low speed for their road class (below "
            f"{MIN_KMH_BY_CLASS['motorway']:g} km/h on motorways, {MIN_KMH:g} km/h on any road; "
            f"times in minutes instead of seconds?), e.g. {_examples(edge_names(slow))}",
            n, edge_names(slow))
    fast = (kmh > np.where(ferry, MAX_FERRY_KMH, MAX_KMH)) & (length > 50)
    if fast.any():
        n = int(fast.sum())
        raise CoverageError(
            source, "travel_time",
            f"{n} of {m} edges imply an implausible speed (above {MAX_KMH:g} km/h, ferries "
            f"{MAX_FERRY_KMH:g}), e.g. {_examples(edge_names(fast))}", n, edge_names(fast))
    # RD New is true to scale (within 0.01 %) only over its own domain; a network elsewhere
    # (another country, scaled coordinates) is refused by the snap check instead, by name
    x0, y0, x1, y1 = RD_DOMAIN
    inside = (x[u] >= x0) & (x[u] <= x1) & (y[u] >= y0) & (y[u] <= y1)
    inside &= (x[v] >= x0) & (x[v] <= x1) & (y[v] >= y0) & (y[v] <= y1)
    crow = np.hypot(x[u] - x[v], y[u] - y[v])
    short = known & inside & (length < 0.97 * crow - 5.0)
    if short.any():
        n = int(short.sum())
        raise CoverageError(
            source, "length",
            f"{n} of {m} edges are shorter than the straight line between their ends "
            f"(coordinates scaled or in another CRS?), e.g. {_examples(edge_names(short))}",
            n, edge_names(short))


def check_snap(
    kind: str,
    names: list[str],
    snap_m: np.ndarray,
    source: str = "road network",
    max_snap_m: float = MAX_SNAP_M,
) -> None:
    """Refuse points (``kind`` = "area" or "site") further than ``max_snap_m`` from the network.

    ``names`` label the points in the message (e.g. ``"GM0363 Amsterdam"``).
    """
    snap_m = np.asarray(snap_m, dtype=np.float64)
    far = np.nonzero(~(snap_m <= max_snap_m))[0]
    if len(far) == 0:
        return
    order = far[np.argsort(-snap_m[far], kind="stable")]
    shown = [f"{names[i]} ({snap_m[i] / 1000:.1f} km)" for i in order]
    raise CoverageError(
        source, f"{kind}s",
        f"{len(far)} of {len(snap_m)} {kind}s lie more than {max_snap_m / 1000:g} km from the "
        f"nearest network node, e.g. {_examples(shown)}: the network does not cover them",
        len(far), [names[i] for i in order])
