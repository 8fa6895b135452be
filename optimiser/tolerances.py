"""Every numerical tolerance of the optimiser, its results and its verifier, one per meaning.

Units are patients per year unless a name says otherwise. The values are the ones the code has
always used (outputs depend on them byte for byte); where two meanings have different values
the docstring of each says why. Change one only with the determinism tests and a look at
docs/decisions/.
"""

from __future__ import annotations

# --- statuses ---------------------------------------------------------------------------------
#: a sub-problem is reported "optimal" only when the solver's real relative gap is at most this
#: (the default ``mip_gap``); a larger ``--mip-gap`` that stops earlier gives "feasible"
PROVEN_OPTIMAL_GAP = 1e-4
#: ... and an optimum below 1 in absolute value (a relative gap means nothing at 0) when its
#: absolute gap is at most this (HiGHS' default mip_abs_gap)
PROVEN_OPTIMAL_ABS = 1e-6
#: the relative gap's denominator is at least this, as HiGHS defines it (an objective of 0)
GAP_DENOMINATOR_MIN = 1e-9
#: HiGHS' reported objective and that of its solution point (c @ x) agree within this, relative
#: (at least 1 in the denominator); else the point's objective counts (optimiser/backends.py)
OBJECTIVE_AGREEMENT_TOL = 1e-6

# --- when a flow counts -----------------------------------------------------------------------
#: a solver's flow column below this is its feasibility noise (HiGHS and CBC work to ~1e-7)
#: and is set to 0 when a solution is decoded; no decoded flow lies in (FLOW_EPS, this)
SOLVER_FLOW_NOISE = 1e-7
#: a decoded or baseline flow counts ("patients go there") only above this: KPIs, the
#: assignments table, the verifier's displaced patients, the baseline LP's zeros
FLOW_EPS = 1e-9
#: a site provides a treatment without a norm when it treats more than this many patients
#: (the stray remainder of a closed site's linking bound is far smaller)
PROVIDES_MIN = 1e-5

# --- rules of the model -----------------------------------------------------------------------
#: minutes: a travel time equal to a limit up to rounding is within it
TRAVEL_TOL_MIN = 1e-9
#: a kept site this many patients below its required volume is "below_norm" (solver noise aside)
BELOW_NORM_TOL = 1e-6
#: a site's own usable patients reach its required volume up to rounding (self-sufficient,
#: may keep the treatment alone)
REACHES_REQUIRED_TOL = 1e-9
#: a shortfall (patients) that a diagnosis reason reports is larger than this (rounding aside)
DIAGNOSIS_TOL = 1e-6
#: floating-point noise of a value that is rounded down or shown as a whole number
ROUNDING_TOL = 1e-9
#: a margin equals another up to floating-point rounding (diagnosis of the largest margin)
MARGIN_TOL = 1e-12
#: a binary keep column above this is "kept" (the solver returns 0/1 up to its tolerance)
KEEP_THRESHOLD = 0.5

# --- the independent verifier -----------------------------------------------------------------
#: absolute tolerance (patients) of every recomputed constraint, relative where scaled by the
#: row's size; looser than the solvers' ~1e-7 so that only real violations are reported
VERIFY_TOL = 1e-5
#: minutes: the verifier's max_extra_travel check (its baseline travel is recomputed
#: independently, so it allows a little more rounding than TRAVEL_TOL_MIN)
VERIFY_EXTRA_TRAVEL_TOL_MIN = 1e-6
#: relative tolerance of a reported KPI against its recomputation (KPIs are rounded to 6
#: decimals and summed in another order)
KPI_TOL = 1e-3

# --- warm starts and what-if steps ------------------------------------------------------------
#: a known plan is feasible in a new model when it meets every row and bound to this (scaled by
#: the row's right-hand side; the solver's own tolerance is 1e-7, a plan is rounded to 6 decimals)
FEASIBILITY_TOL = 1e-6
#: an integer column is integral when it is this close to an integer
INTEGRALITY_TOL = 1e-6
#: row / bound tolerance of the greedy planner start (patients)
GREEDY_TOL = 1e-7
#: slack of the phase-2 row "unnecessary moves <= phase-1 optimum": solver tolerance only, so
#: that phase 1's own solution stays feasible for phase 2 (absolute and relative parts)
MOVES_SLACK_ABS = 1e-7
MOVES_SLACK_REL = 1e-9
#: a phase-1 optimum at or below this is "no unnecessary move" (phase 2 then uses the tighter
#: per-flow form)
ZERO_MOVES = 1e-9

# --- LP and model plumbing --------------------------------------------------------------------
#: column generation of the baseline LP: a pair enters when its reduced cost is below
#: -this x (1 + |cost|) (LP optimality noise aside)
REDUCED_COST_TOL = 1e-9
#: a model without columns is feasible when every row range contains 0 up to this
EMPTY_ROW_TOL = 1e-9
#: a row whose lower and upper bounds differ by at most this is an equality
EQUALITY_TOL = 1e-12
#: two objective vectors are the same up to this relative difference (a what-if step keeps an
#: optimum only when the objective did not change)
SAME_OBJECTIVE_RTOL = 1e-12

# --- statistics -------------------------------------------------------------------------------
#: relative slack of a weighted quantile's threshold, so that a cumulative weight equal to
#: q x total up to floating-point rounding reaches it
QUANTILE_REL_TOL = 1e-12

# --- exact feasibility from keep sets (optimiser/feasibility.py) ------------------------------
#: relative slack of Hall's condition "required volume <= reachable demand": a keep set that
#: passes with it but not without it (or the reverse) is left to the solver, so the test never
#: decides a case that the solvers' own tolerance (~1e-7) could decide the other way
KEEP_SET_TOL = 1e-6
#: probabilities of meeting a norm (verifier vs the KPIs, which round them to 1e-6): two
#: independent computations (scipy.special.gammainc and scipy.stats.poisson) agree far closer
ODDS_TOL = 2e-6
#: width at which the diagnosis' bisection for the largest feasible norm_confidence stops (the
#: answer is then rounded down to 0.01, and stays feasible)
CONFIDENCE_BISECTION_WIDTH = 0.005
