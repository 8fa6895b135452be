"""Who goes from which hospital of today to which hospital after: the transfers of a plan.

The baseline (``Instance.baseline_flow``) and the plan (``Solution.flow``) are both flows from
areas to sites; neither says which of an area's patients of today goes where after. Per area
and treatment the decomposition is exact and the one the displaced-patient KPIs already use
(optimiser/kpis.py):

* ``stay[s] = min(flow[s], baseline[s])`` patients stay at site ``s``;
* ``out[s] = baseline[s] - stay[s]`` of today's patients leave ``s``; ``in[s'] = flow[s'] -
  stay[s']`` arrive at ``s'``;
* the leavers of every site are spread over the arrivals in proportion to them: ``out[s] *
  in[s'] / max(Σ out, Σ in)`` patients go from ``s`` to ``s'``. With today's demand Σ out =
  Σ in and every leaver goes somewhere; with growth (Σ in > Σ out) the rest of the arrivals
  are new patients (no site of today); with a shrinking demand the rest of the leavers have
  no site after.

So, per area and treatment, the rows add up to the plan's flow per site after and to the
baseline flow per site of today, and the patient-weighted extra minutes of the leavers of a
site are exactly the KPIs' "mean travel of the area's arrivals minus today's trip".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .instance import Instance
from .tolerances import FLOW_EPS

#: no site (of today for new patients, after for patients whose demand disappeared)
NO_SITE = -1


@dataclass(frozen=True)
class Transfers:
    """One entry per (area, treatment, site of today, site after) with patients > 0.

    ``site_before`` / ``site_after`` are site indices, :data:`NO_SITE` where there is none;
    ``patients`` per year. Entries are sorted by (area, treatment, site after, site before),
    with NO_SITE first.
    """

    area: np.ndarray
    treatment: np.ndarray
    site_before: np.ndarray
    site_after: np.ndarray
    patients: np.ndarray

    def __len__(self) -> int:
        return int(self.area.shape[0])


def transfers(instance: Instance, flow: np.ndarray) -> Transfers:
    """The transfers of a plan with flows ``flow[a, s, t]`` (module docstring)."""
    bf = instance.baseline_flow
    f = np.where(flow > FLOW_EPS, flow, 0.0)
    b = np.where(bf > FLOW_EPS, bf, 0.0)
    stay = np.minimum(f, b)
    out = b - stay
    arrive = f - stay
    out = np.where(out > FLOW_EPS, out, 0.0)
    arrive = np.where(arrive > FLOW_EPS, arrive, 0.0)
    rows: list[tuple[int, int, int, int, float]] = []
    # stays: (a, s, s, t)
    for a, s, t in zip(*np.nonzero(stay > FLOW_EPS), strict=True):
        rows.append((int(a), int(t), int(s), int(s), float(stay[a, s, t])))
    leaving = out.sum(axis=1)  # (A, T)
    arriving = arrive.sum(axis=1)
    for a, t in zip(*np.nonzero((leaving > 0) | (arriving > 0)), strict=True):
        o, r = out[a, :, t], arrive[a, :, t]
        total_out, total_in = float(o.sum()), float(r.sum())
        scale = max(total_out, total_in)
        pairs = np.outer(o, r) / scale  # (S before, S after)
        for s, s2 in zip(*np.nonzero(pairs > 0), strict=True):
            rows.append((int(a), int(t), int(s), int(s2), float(pairs[s, s2])))
        if total_in > total_out:  # growth: arrivals without a site of today
            for s2 in np.nonzero(r > 0)[0]:
                rows.append((int(a), int(t), NO_SITE, int(s2),
                             float(r[s2] * (total_in - total_out) / scale)))
        elif total_out > total_in:  # shrinking demand: leavers without a site after
            for s in np.nonzero(o > 0)[0]:
                rows.append((int(a), int(t), int(s), NO_SITE,
                             float(o[s] * (total_out - total_in) / scale)))
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return Transfers(empty, empty.copy(), empty.copy(), empty.copy(), np.zeros(0))
    table = np.array(rows, dtype=float)
    area, treatment = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    before, after = table[:, 2].astype(np.int64), table[:, 3].astype(np.int64)
    order = np.lexsort((before, after, treatment, area))
    return Transfers(area[order], treatment[order], before[order], after[order],
                     table[order, 4])
