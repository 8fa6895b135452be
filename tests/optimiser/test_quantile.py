"""One weighted quantile (optimiser.kpis.weighted_quantile): the lower inverted-CDF quantile,
checked against numpy, with one explicit rule for empty input, used by the KPIs, the verifier
and the report."""

from __future__ import annotations

import ast
import math
from fractions import Fraction

import numpy as np
import pytest
from herschik.optimiser import kpis, verify
from herschik.optimiser.kpis import weighted_quantile
from herschik.scenarios.report import travel as report
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, width=32)
values_lists = st.lists(finite, min_size=1, max_size=40)
quantiles = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def _exact_lower(values: list[float], weights: list[int], q: Fraction) -> float:
    """The definition in exact arithmetic: smallest v with cumulative weight >= q x total."""
    pairs = sorted(zip(values, weights, strict=True), key=lambda p: p[0])
    total = sum(weights)
    running = 0
    for value, weight in pairs:
        running += weight
        if running >= q * total:
            return value
    return pairs[-1][0]


@settings(max_examples=300, deadline=None)
@given(values=values_lists, q=quantiles)
def test_unit_weights_match_numpy_inverted_cdf(values: list[float], q: float) -> None:
    n = len(values)
    # numpy computes n*q in floating point: where that lands within rounding of an integer
    # it may step to the next order statistic, which the exact definition does not
    assume(abs(n * q - round(n * q)) > 1e-9 or n * q == round(n * q) == Fraction(q) * n)
    got = weighted_quantile(np.array(values), np.ones(n), q)
    assert got == float(np.quantile(np.array(values), q, method="inverted_cdf"))


@settings(max_examples=200, deadline=None)
@given(values=values_lists, data=st.data())
def test_integer_weights_equal_repeated_values(values: list[float], data: st.DataObject) -> None:
    weights = data.draw(st.lists(st.integers(0, 5), min_size=len(values), max_size=len(values)))
    assume(sum(weights) > 0)
    k = data.draw(st.integers(0, sum(weights)))
    q = Fraction(k, sum(weights))  # grid quantiles: exact on both sides
    got = weighted_quantile(values, weights, float(q))
    assert got == _exact_lower(values, weights, q)
    repeated = np.repeat(np.array(values, dtype=float), weights)
    if k:  # numpy's inverted_cdf at q = k/N is the k-th order statistic
        assert got == float(np.sort(repeated)[k - 1])


@pytest.mark.parametrize(("values", "weights"), [([], []), ([3.0, 1.0], [0.0, 0.0])])
def test_empty_input_is_undefined_unless_the_caller_says(values: list[float],
                                                         weights: list[float]) -> None:
    assert math.isnan(weighted_quantile(values, weights, 0.9))
    assert weighted_quantile(values, weights, 0.9, empty=0.0) == 0.0


def test_exact_grid_and_shape_checks() -> None:
    ten = np.arange(1.0, 11.0)
    assert weighted_quantile(ten, np.ones(10), 0.9) == 9.0  # 0.9 x 10 is 9 up to rounding
    assert weighted_quantile(ten, np.ones(10), 0.7) == 7.0  # numpy says 8 here (7.000...01)
    assert weighted_quantile(ten, np.ones(10), 0.0) == 1.0
    assert weighted_quantile(ten, np.ones(10), 1.0) == 10.0
    assert weighted_quantile([5.0, 1.0], [0.0, 2.0], 0.5) == 1.0  # zero weight never reached
    with pytest.raises(ValueError, match="shape"):
        weighted_quantile([1.0, 2.0], [1.0], 0.5)


def test_the_kpis_the_verifier_and_the_report_share_it() -> None:
    assert report.weighted_quantile is kpis.weighted_quantile
    assert verify.weighted_quantile is kpis.weighted_quantile
    # nobody displaced: the KPIs and the verifier both say 0, as the KPI definition does
    assert verify._lower_quantile([], [], 0.9) == 0.0
    assert kpis._displaced_figures(np.zeros(0), np.zeros(0), 0.0, 10.0)[
        "displaced_p90_extra_min"] == 0.0


def test_one_quantile_function_in_the_tree() -> None:
    defs = []
    for folder in ("optimiser", "geo", "scenarios", "herschik"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                # a quantile of data; a distribution's (report/charts.poisson_quantile) differs
                if (isinstance(node, ast.FunctionDef) and "quantile" in node.name
                        and not node.name.startswith("poisson_")):
                    defs.append(f"{path.relative_to(ROOT)}::{node.name}")
    # verify's _lower_quantile is a one-line call of the shared function (checked above)
    assert defs == ["optimiser/kpis.py::weighted_quantile", "optimiser/verify.py::_lower_quantile"]
