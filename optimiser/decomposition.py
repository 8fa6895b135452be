"""Which treatments can be solved apart: the coupling of the row families.

A constraint that spans treatments of one site (``max_loss_share``) or bundles of treatments
joins them into one sub-problem; every other treatment is an independent sub-problem.
"""

from __future__ import annotations

from .instance import Instance
from .params import SolveParams


def treatment_components(instance: Instance, params: SolveParams) -> tuple[list[list[int]], str]:
    """Connected components of treatments under the coupling constraints, and why.

    Returns the components (lists of treatment indices, sorted, in order of their first
    treatment) and a one-sentence explanation for summary.json.
    """
    n_treat = len(instance.treatments)
    if n_treat == 0:
        return [], "no treatments to optimise"
    if params.max_loss_share is not None and params.max_loss_share < 1.0:
        return [list(range(n_treat))], (
            "one joint model: max_loss_share couples all treatments of a site")
    parent = list(range(n_treat))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index = {tid: i for i, tid in enumerate(instance.treatment_ids)}
    coupled = False
    for bundle in params.bundles:
        members = [index[t] for t in bundle if t in index]
        for m in members[1:]:
            ra, rb = find(members[0]), find(m)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
                coupled = True
    groups: dict[int, list[int]] = {}
    for t in range(n_treat):
        groups.setdefault(find(t), []).append(t)
    comps = sorted(groups.values(), key=lambda g: g[0])
    n = len(comps)
    if n == 1 and n_treat > 1:
        return comps, "one joint model: bundles couple all treatments"
    if n == 1:
        return comps, "one model (a single treatment)"
    if coupled:
        joined = [",".join(instance.treatment_ids[t] for t in g) for g in comps if len(g) > 1]
        return comps, (f"split into {n} independent sub-problems; bundles join "
                       f"{'; '.join(joined)}")
    return comps, f"split into {n} independent sub-problems (no coupling constraint)"
