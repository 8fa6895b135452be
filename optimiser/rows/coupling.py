"""Families that couple treatments of a site: ``bundle`` and ``loss_share``.

* ``bundle``: y[s, t1] = y[s, tk] for the members of a bundle that have a norm at s; a site that
  is a candidate for only part of a bundle keeps none of it (a bundle is kept or lost whole).
* ``loss_share``: Σ_t Σ_a flow[a, s, t] >= (1 - max_loss_share)·B_s, B_s over all treatments.
"""

from __future__ import annotations

import numpy as np

from herschik.i18n import _

from ..tolerances import DIAGNOSIS_TOL
from .base import (
    MAX_LISTED,
    Build,
    CheckContext,
    DiagnosisContext,
    Family,
    Finding,
    Reason,
    fmt,
)
from .checking import TOL


def _bundle_members(b: Build, bundle: list[str]) -> list[int]:
    index = {tid: i for i, tid in enumerate(b.instance.treatment_ids)}
    return sorted({index[t] for t in bundle if t in index} & set(b.treatments))


def build_bundle(b: Build) -> None:
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for bundle in b.params.bundles:
        members = _bundle_members(b, bundle)
        if len(members) < 2:
            continue
        for s in range(len(b.instance.sites)):
            # bundles act on the keep decisions of the members that have a norm at this site
            normed = [t for t in members if b.has_norm[s, t]]
            if len(normed) < 2:
                continue
            present = [int(b.y_col[s, t]) for t in normed if b.y_col[s, t] >= 0]
            if len(present) < len(normed):
                for col in present:
                    b.y_upper[col - b.y_start] = 0.0
                continue
            for col in present[1:]:
                row = len(rows) // 2
                rows += [row, row]
                cols += [present[0], col]
                vals += [1.0, -1.0]
    n_b = len(rows) // 2
    b.add_rows("bundle", np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64),
               np.array(vals, dtype=float), np.zeros(n_b), np.zeros(n_b))


def check_bundle(ctx: CheckContext) -> list[str]:
    index = {treatment_id: t for t, treatment_id in enumerate(ctx.treatment_ids)}
    problems = []
    for bundle in ctx.params.bundles:
        members = [index[tid] for tid in bundle if tid in index]
        for s in range(len(ctx.instance.sites)):
            if len({bool(ctx.keep[s, t]) for t in members}) > 1:
                problems.append(f"site {ctx.site_labels[s]}: bundle {bundle} kept only in part")
    return problems


def reason_bundle(ctx: DiagnosisContext) -> Finding | None:
    """A site forced to keep part of a bundle that it may not provide in full."""
    index = {tid: i for i, tid in enumerate(ctx.instance.treatment_ids)}
    notes = []
    for bundle in ctx.params.bundles:
        members = [index[t] for t in bundle if t in index]
        for s in range(len(ctx.instance.sites)):
            if ctx.force_keep[s, members].any() and not ctx.candidate[s, members].all():
                missing = [ctx.instance.treatment_ids[t] for t in members
                           if not ctx.candidate[s, t]]
                notes.append(_("{site} is forced to keep part of bundle {bundle} but may not "
                               "provide {missing}", site=ctx.slabel(s), bundle="+".join(bundle),
                               missing=", ".join(missing)))
    return Finding(notes[0], "bundle_conflicts", notes) if notes else None


def build_loss_share(b: Build) -> None:
    share = b.params.max_loss_share
    if share is None or share >= 1.0:
        b.add_no_rows("loss_share")
        return
    b_tot = b.instance.baseline_volume.sum(axis=1)
    sites = np.nonzero(b_tot > 0)[0]
    l_row = np.full(b_tot.shape[0], -1, dtype=np.int64)
    l_row[sites] = np.arange(sites.shape[0])
    xr = l_row[b.x_site]
    xc = np.nonzero(xr >= 0)[0]
    lo = (1.0 - share) * b_tot[sites]
    b.add_rows("loss_share", xr[xc], xc, b.x_scale[xc], lo, np.full(lo.shape[0], np.inf))


def check_loss_share(ctx: CheckContext) -> list[str]:
    share = ctx.params.max_loss_share
    if share is None:
        return []
    before = ctx.instance.baseline_volume.sum(axis=1)
    after = ctx.volume.sum(axis=1)
    problems = []
    for s in np.nonzero(before > 0)[0]:
        lost = before[s] - after[s]
        if lost > share * before[s] + TOL * max(1.0, before[s]):
            problems.append(f"site {ctx.site_labels[s]} loses {lost:.2f} of {before[s]:.2f} "
                            f"patients, more than max_loss_share {share}")
    return problems


def reason_loss_share(ctx: DiagnosisContext) -> Finding | None:
    """A site that cannot keep enough volume even taking everything in reach."""
    share = ctx.params.max_loss_share
    if share is None or share >= 1.0:
        return None
    b_tot = ctx.instance.baseline_volume.sum(axis=1)
    need = (1.0 - share) * b_tot
    most = ctx.usable.sum(axis=1)
    short = np.nonzero((b_tot > 0) & (most < need - DIAGNOSIS_TOL))[0]
    if not short.size:
        if ctx.reasons:
            return None
        return Finding(_("max_loss_share {share} forces sites to keep volumes that, together "
                         "with the norms, cannot all be met", share=format(share, "g")))
    sids = ctx.instance.site_ids
    listed = [{"site_id": sids[s], "must_keep": round(float(need[s]), 3),
               "at_most": round(float(most[s]), 3)} for s in short[:MAX_LISTED]]
    s = short[0]
    return Finding(_("{site} must keep {need} patients/yr (max_loss_share {share}) but at most "
                     "{most} can reach it", site=ctx.slabel(s), need=fmt(need[s]),
                     share=format(share, "g"), most=fmt(most[s])),
                   "loss_share_conflicts", listed)


BUNDLE = Family("bundle", "rows", ("bundles",), build_bundle, check_bundle,
                (Reason(60, reason_bundle),),
                doc="a site keeps or loses the treatments of a bundle together")
LOSS_SHARE = Family("loss_share", "rows", ("max_loss_share",), build_loss_share,
                    check_loss_share, (Reason(70, reason_loss_share),),
                    doc="no site loses more than max_loss_share of its total volume")
