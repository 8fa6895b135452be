"""Doubly constrained spatial interaction: who goes where, given demand, volumes and travel.

``T[a, s] = A[a] O[a] B[s] D[s] exp(-beta * minutes[a, s])`` with the balancing factors A, B
found by Furness iteration (iterative proportional fitting) so that every area's patients sum to
its demand ``O`` and every hospital's to its volume ``D``. The distance decay ``beta`` (per
minute) is fitted by maximum likelihood of the observed hospital volumes under the origin
constrained model in which hospitals of one group (UMC, cancer centre, general hospital) are
equally attractive: the decay that best explains how patients spread over the providers given
where they live (docs/decisions/volume-import.md). A doubly
constrained model reproduces the volumes at any ``beta``, so the volumes cannot identify it
there; the origin constrained fit is the standard way to get it from totals alone.

Pure numpy; the choice over PySAL ``spint`` and ``ipfn`` is measured in
docs/decisions/volume-import.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

#: relative tolerance of the balanced margins
BALANCE_TOL = 1e-10
MAX_ITERATIONS = 10_000
#: search range of the decay (per minute): 0 = no decay ... 1 = e^-1 per extra minute
DECAY_BOUNDS = (0.0, 1.0)


@dataclass(frozen=True)
class Block:
    """One region x treatment: demand per area, volume per site, minutes (areas x sites)."""

    demand: np.ndarray
    volume: np.ndarray
    minutes: np.ndarray
    #: per site, the index of its attractiveness group (e.g. UMC / general); None: one group
    group: np.ndarray | None = None


def _kernel(minutes: np.ndarray, beta: float) -> np.ndarray:
    finite = np.isfinite(minutes)
    # shift by each row's nearest site: the factor cancels in every row-normalised quantity and
    # keeps exp() away from underflow for remote areas and steep decays
    nearest = np.where(finite, minutes, np.inf).min(axis=1, keepdims=True)
    nearest = np.where(np.isfinite(nearest), nearest, 0.0)
    return np.where(finite, np.exp(-beta * (np.where(finite, minutes, 0.0) - nearest)), 0.0)


def balance(demand: np.ndarray, volume: np.ndarray, minutes: np.ndarray, beta: float
            ) -> np.ndarray:
    """Flows (areas x sites) with row sums ``demand`` and column sums ``volume``.

    The two totals must be equal (relative 1e-9). Raises ``ValueError`` when the margins
    cannot be met (a site no area with demand can reach, or no convergence).
    """
    demand = np.asarray(demand, float)
    volume = np.asarray(volume, float)
    total = float(demand.sum())
    if abs(total - float(volume.sum())) > 1e-9 * max(1.0, total):
        raise ValueError(f"demand {total:g} and volume {float(volume.sum()):g} differ")
    flows = np.zeros((demand.size, volume.size))
    if total <= 0:
        return flows
    rows = demand > 0
    cols = volume > 0
    kernel = _kernel(minutes[np.ix_(rows, cols)], beta)
    if (kernel.sum(axis=1) <= 0).any() or (kernel.sum(axis=0) <= 0).any():
        raise ValueError("an area with patients or a hospital with volume has no route")
    o, d = demand[rows], volume[cols]
    b = np.ones(d.size)
    for _ in range(MAX_ITERATIONS):
        a = o / (kernel @ b)
        b = d / (kernel.T @ a)
        row_sums = a * (kernel @ b)
        if np.abs(row_sums - o).max() <= BALANCE_TOL * max(1.0, float(o.max())):
            break
    else:
        raise ValueError("the spatial interaction model did not balance (volumes unreachable "
                         "from the demand within the travel times)")
    flows[np.ix_(rows, cols)] = a[:, None] * kernel * b[None, :]
    return flows


def origin_constrained_volumes(block: Block, beta: float,
                               attractiveness: np.ndarray | None = None) -> np.ndarray:
    """Hospital totals when every area spreads its demand over the providers by decay and
    group attractiveness only (``attractiveness[g]`` of group g; default all 1)."""
    providers = block.volume > 0
    kernel = _kernel(block.minutes[:, providers], beta)
    if attractiveness is not None and block.group is not None:
        kernel = kernel * attractiveness[block.group[providers]][None, :]
    share = kernel / np.maximum(kernel.sum(axis=1, keepdims=True), 1e-300)
    out = np.zeros(block.volume.size)
    out[providers] = block.demand @ share
    return out


def misfit(blocks: Sequence[Block], beta: float,
           attractiveness: np.ndarray | None = None) -> float:
    """Kullback-Leibler divergence (patients) of the observed volumes from the origin
    constrained prediction, summed over blocks: minus the log-likelihood up to a constant."""
    total = 0.0
    for block in blocks:
        predicted = origin_constrained_volumes(block, beta, attractiveness)
        seen = block.volume > 0
        total += float(np.sum(block.volume[seen]
                              * np.log(block.volume[seen] / np.maximum(predicted[seen], 1e-300))))
    return total


def misallocated_share(blocks: Sequence[Block], beta: float,
                       attractiveness: np.ndarray | None = None) -> float:
    """Share of patients the origin constrained model puts at another hospital than observed."""
    moved = sum(0.5 * float(np.abs(origin_constrained_volumes(b, beta, attractiveness)
                                   - b.volume).sum()) for b in blocks)
    total = sum(float(b.volume.sum()) for b in blocks)
    return moved / total if total else 0.0


@dataclass(frozen=True)
class DecayFit:
    """The fitted decay (per minute) and the attractiveness of each site group (group 0 = 1)."""

    beta: float
    attractiveness: np.ndarray


def fit_decay(blocks: Sequence[Block], n_groups: int = 1) -> DecayFit:
    """Decay and group attractiveness maximising the likelihood of the observed volumes.

    Sites of one group (e.g. all general hospitals) are taken as equally attractive, so the
    differences in their volumes are explained by where patients live: that identifies the
    decay. Bounded L-BFGS-B from a fixed start, deterministic.
    """
    usable = [b for b in blocks if (b.volume > 0).sum() > 1 and b.demand.sum() > 0]
    if not usable:  # one provider per block: every decay fits; the value does not matter
        return DecayFit(0.1, np.ones(n_groups))

    def objective(x: np.ndarray) -> float:
        weights = np.exp(np.concatenate([[0.0], x[1:]]))
        return misfit(usable, float(x[0]), weights)

    start = np.concatenate([[0.05], np.zeros(n_groups - 1)])
    bounds = [DECAY_BOUNDS] + [(-5.0, 5.0)] * (n_groups - 1)
    result = minimize(objective, start, method="L-BFGS-B", bounds=bounds,
                      options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 500})
    x = result.x
    return DecayFit(float(x[0]), np.exp(np.concatenate([[0.0], x[1:]])))


def nearest_share(flows: np.ndarray, minutes: np.ndarray, volume: np.ndarray) -> float:
    """Share of the flows that go to the area's nearest provider (sites with volume > 0)."""
    providers = np.nonzero(volume > 0)[0]
    total = float(flows.sum())
    if total <= 0 or providers.size == 0:
        return float("nan")
    sub = np.where(np.isfinite(minutes[:, providers]), minutes[:, providers], np.inf)
    nearest = providers[np.argmin(sub, axis=1)]
    return float(flows[np.arange(flows.shape[0]), nearest].sum()) / total
