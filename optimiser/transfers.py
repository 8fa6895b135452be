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
    # only the (area, site, treatment) entries with a flow today or after (a few percent of
    # the dense array): the same element-wise values as on the whole array, without its passes
    _, n_sites, n_treatments = flow.shape
    flat_f = np.ravel(flow)
    flat_b = np.ravel(instance.baseline_flow)
    entries = np.flatnonzero((flat_f > FLOW_EPS) | (flat_b > FLOW_EPS))
    a_all, s_all, t_all = np.unravel_index(entries, flow.shape)
    f = flat_f[entries]
    b = flat_b[entries]
    f = np.where(f > FLOW_EPS, f, 0.0)
    b = np.where(b > FLOW_EPS, b, 0.0)
    stay = np.minimum(f, b)
    out = b - stay
    arrive = f - stay
    out = np.where(out > FLOW_EPS, out, 0.0)
    arrive = np.where(arrive > FLOW_EPS, arrive, 0.0)
    parts: list[tuple[np.ndarray, ...]] = []
    # stays: (a, s, s, t)
    staying = stay > FLOW_EPS
    parts.append((a_all[staying], t_all[staying], s_all[staying], s_all[staying],
                  stay[staying]))
    # the (area, treatment) rows with movers, in (area, treatment) order
    moving = (out > 0) | (arrive > 0)
    row_keys, row_of = np.unique(a_all[moving] * n_treatments + t_all[moving],
                                 return_inverse=True)
    k_area, k_treat = row_keys // n_treatments, row_keys % n_treatments
    # one row per (area, treatment) with movers: out / arrivals per site; a C-contiguous
    # row's sum is numpy's pairwise sum of that row, the same bits as the sum of the 1-d
    # slice out[a, :, t] the loop took before (tests compare the two bit for bit)
    outs = np.zeros((len(row_keys), n_sites))  # (K, S)
    ins = np.zeros((len(row_keys), n_sites))
    outs[row_of, s_all[moving]] = out[moving]
    ins[row_of, s_all[moving]] = arrive[moving]
    total_out, total_in = outs.sum(axis=1), ins.sum(axis=1)
    scale = np.maximum(total_out, total_in)
    o_k, o_s = np.nonzero(outs > 0)  # leavers, sorted by k
    i_k, i_s = np.nonzero(ins > 0)  # arrivals, sorted by k
    # every (leaver site, arrival site) pair of the same row: outer(o, r) / scale
    n_in = np.bincount(i_k, minlength=len(k_area))
    first_in = np.concatenate(([0], np.cumsum(n_in)[:-1])) if len(k_area) else n_in
    repeat = n_in[o_k]
    left = np.repeat(np.arange(len(o_k)), repeat)
    right = (first_in[o_k].repeat(repeat)
             + np.arange(int(repeat.sum())) - np.repeat(np.cumsum(repeat) - repeat, repeat))
    k = o_k[left]
    moved = outs[k, o_s[left]] * ins[k, i_s[right]] / scale[k]
    positive = moved > 0
    parts.append((k_area[k][positive], k_treat[k][positive], o_s[left][positive],
                  i_s[right][positive], moved[positive]))
    # growth: arrivals without a site of today; shrinking demand: leavers without a site after
    grows = total_in > total_out
    mine = grows[i_k]
    kk = i_k[mine]
    parts.append((k_area[kk], k_treat[kk], np.full(len(kk), NO_SITE), i_s[mine],
                  ins[kk, i_s[mine]] * (total_in[kk] - total_out[kk]) / scale[kk]))
    shrinks = total_out > total_in
    mine = shrinks[o_k]
    kk = o_k[mine]
    parts.append((k_area[kk], k_treat[kk], o_s[mine], np.full(len(kk), NO_SITE),
                  outs[kk, o_s[mine]] * (total_out[kk] - total_in[kk]) / scale[kk]))
    area, treatment, before, after, patients = (
        np.concatenate([part[i] for part in parts]) for i in range(5))
    area, treatment = area.astype(np.int64), treatment.astype(np.int64)
    before, after = before.astype(np.int64), after.astype(np.int64)
    order = np.lexsort((before, after, treatment, area))
    return Transfers(area[order], treatment[order], before[order], after[order],
                     patients[order].astype(float))
