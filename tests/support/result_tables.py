"""A Solution rebuilt from the contract tables a run wrote, so that the independent verifier
(optimiser/verify.py) can re-check the files on disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
from herschik.optimiser.instance import Instance
from herschik.optimiser.solution import Solution
from herschik.optimiser.status import SolveStatus
from herschik.optimiser.tolerances import PROVIDES_MIN


def solution_from_tables(
    instance: Instance, site_volumes: pd.DataFrame, assignments: pd.DataFrame
) -> Solution:
    """Rebuild a Solution from the written contract tables, to re-check result files.

    ``kept_after`` of treatments without a norm is not in site_volumes.csv, so for those the
    keep flag is derived from the assigned volume.
    """
    a_index = {area_id: a for a, area_id in enumerate(instance.area_ids)}
    s_index = {site_id: s for s, site_id in enumerate(instance.site_ids)}
    t_index = {tid: t for t, tid in enumerate(instance.treatment_ids)}
    flow = np.zeros(instance.shape)
    for row in assignments.itertuples(index=False):
        flow[a_index[row.area_id], s_index[row.site_id], t_index[row.intervention_id]] += float(
            row.patients
        )
    keep = flow.sum(axis=0) > PROVIDES_MIN
    for row in site_volumes.itertuples(index=False):
        kept = row.kept_after
        if isinstance(kept, str):
            kept = kept.strip().lower() == "true"
        keep[s_index[row.site_id], t_index[row.intervention_id]] = bool(kept)
    return Solution(status=SolveStatus.FEASIBLE, solver="tables", keep=keep, flow=flow)
