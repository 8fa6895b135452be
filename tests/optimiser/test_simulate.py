"""``herschik simulate`` and optimiser/simulation.py: simulated years of a plan.

The sampler draws each hospital's volume from the thinned Poisson (or gamma-mixed) model; here
it is checked against an explicit simulation that draws every area's patients and splits them
multinomially, against the exact Poisson odds, and end to end on the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.optimiser.confidence import p_meet_norm
from herschik.optimiser.simulation import PlanRoutes, simulate_volumes, summarise
from herschik.scenarios.cli.main import main


def _plan(seed: int, n_areas: int = 30, n_sites: int = 4) -> PlanRoutes:
    """Areas split over one to three hospitals with random shares."""
    rng = np.random.default_rng(seed)
    area, site, patients = [], [], []
    for a in range(n_areas):
        demand = rng.uniform(0.5, 6.0)
        chosen = rng.choice(n_sites, size=int(rng.integers(1, 4)), replace=False)
        shares = rng.dirichlet(np.ones(len(chosen)))
        for s, share in zip(chosen, shares, strict=True):
            area.append(a)
            site.append(int(s))
            patients.append(demand * share)
    return PlanRoutes(np.array(area), np.array(site), np.array(patients), n_sites)


def _explicit(routes: PlanRoutes, years: int, rng: np.random.Generator, phi: float
              ) -> np.ndarray:
    """The model written out: each area's yearly count (gamma-mixed when phi > 0), split over
    its hospitals by a multinomial draw with the plan's shares."""
    out = np.zeros((years, routes.n_sites), dtype=np.int64)
    for a in np.unique(routes.area):
        pairs = np.nonzero(routes.area == a)[0]
        demand = routes.patients[pairs].sum()
        mean = np.full(years, demand)
        if phi > 0:
            mean = mean * rng.gamma(1 / phi, phi, size=years)
        counts = rng.poisson(mean)
        split = rng.multinomial(counts, routes.patients[pairs] / demand)
        for column, p in enumerate(pairs):
            out[:, routes.site[p]] += split[:, column]
    return out


@pytest.mark.parametrize("phi", [0.0, 0.3])
def test_sampler_matches_an_explicit_area_split(phi: float) -> None:
    routes = _plan(3)
    years = 40_000
    fast = simulate_volumes(routes, years, np.random.default_rng(1), phi)
    slow = _explicit(routes, years, np.random.default_rng(2), phi)
    expected = np.bincount(routes.site, routes.patients, minlength=routes.n_sites)
    # mean and variance: the model's, in both (variance mu + phi sum_a mu_as^2)
    square = np.bincount(routes.site, routes.patients ** 2, minlength=routes.n_sites)
    variance = expected + phi * square
    for sample in (fast, slow):
        assert np.all(np.abs(sample.mean(axis=0) - expected)
                      <= 4 * np.sqrt(variance / years))
        assert np.allclose(sample.var(axis=0), variance, rtol=0.05)
    # the probability of reaching a norm near the mean agrees between the two
    norms = np.round(expected)
    fast_p = (fast >= norms).mean(axis=0)
    slow_p = (slow >= norms).mean(axis=0)
    se = np.sqrt(fast_p * (1 - fast_p) / years + slow_p * (1 - slow_p) / years)
    assert np.all(np.abs(fast_p - slow_p) <= 4 * se + 1e-9)


@pytest.mark.parametrize("years_per_period", [1, 3])
def test_shares_below_the_norm_match_the_exact_odds(years_per_period: int) -> None:
    routes = _plan(5, n_areas=60, n_sites=5)
    expected = np.bincount(routes.site, routes.patients, minlength=routes.n_sites)
    norms = np.round(expected * np.array([0.8, 0.9, 1.0, 1.05, np.nan]))
    volumes = simulate_volumes(routes, 60_000, np.random.default_rng(11))
    stats = summarise(volumes, norms, years_per_period)
    exact = p_meet_norm(expected, norms, years_per_period)
    blocks = 60_000 // years_per_period
    below = stats.share_periods_below_norm
    se = np.sqrt(exact * (1 - exact) / blocks)
    has = ~np.isnan(norms)
    assert np.all(np.abs((1 - below[has]) - exact[has]) <= 4 * se[has] + 1e-9)
    assert np.isnan(below[~has]).all() and np.isnan(stats.share_years_below_norm[~has]).all()
    # quantiles are ordered and bracket the mean
    q = stats.quantiles
    assert np.all(q["p05"] <= q["p50"]) and np.all(q["p50"] <= q["p95"])


def test_overdispersion_widens_and_lowers_the_odds_above_the_norm() -> None:
    routes = _plan(8)
    expected = np.bincount(routes.site, routes.patients, minlength=routes.n_sites)
    norms = np.floor(expected * 0.85)
    plain = summarise(simulate_volumes(routes, 20_000, np.random.default_rng(0)), norms)
    wide = summarise(simulate_volumes(routes, 20_000, np.random.default_rng(0), 0.5), norms)
    assert np.all(wide.std > plain.std)
    assert np.all(wide.share_years_below_norm >= plain.share_years_below_norm)


def test_sampler_is_deterministic_and_validates() -> None:
    routes = _plan(4)
    a = simulate_volumes(routes, 2500, np.random.default_rng(9), 0.2)
    b = simulate_volumes(routes, 2500, np.random.default_rng(9), 0.2)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, simulate_volumes(routes, 2500, np.random.default_rng(10), 0.2))
    empty = PlanRoutes(np.zeros(0, int), np.zeros(0, int), np.zeros(0), 3)
    assert simulate_volumes(empty, 5, np.random.default_rng(0)).shape == (5, 3)
    with pytest.raises(ValueError):
        simulate_volumes(routes, 0, np.random.default_rng(0))
    with pytest.raises(ValueError):
        simulate_volumes(routes, 5, np.random.default_rng(0), -1.0)
    with pytest.raises(ValueError):
        PlanRoutes(np.array([0]), np.array([0]), np.array([np.nan]), 1)


# --- the command ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def confident_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("simulate") / "run"
    code = main(["solve", "--region", "example", "--out", str(out), "--norm-confidence", "0.8",
                 "--norm-period-years", "3", "--no-maps", "--no-report"])
    assert code == 0
    return out


def test_simulate_writes_tables_and_charts(confident_run: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", str(confident_run), "--years", "4000", "--seed", "3",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "simulation.csv", dtype={"site_id": str})
    settings = json.loads((out / "simulation.json").read_text())
    assert settings["years"] == 4000 and settings["seed"] == 3
    assert settings["norm_period_years"] == 3
    sv = pd.read_csv(confident_run / "site_volumes.csv", dtype={"site_id": str})
    kept = sv[sv["kept_after"] & (sv["volume_after"] > 0)]
    merged = table.merge(kept, on=["site_id", "intervention_id"], suffixes=("", "_sv"))
    assert len(merged) == len(table) == len(kept)
    # the plan's expected volumes and exact odds, as the solve wrote them
    assert np.allclose(merged["expected_volume"], merged["volume_after"], atol=1e-5)
    normed = merged[merged["norm"].notna()]
    assert np.allclose(normed["p_meet_norm_period"], normed["p_meet_norm_period_sv"],
                       atol=2e-6)
    # planned at 80 % over 3 years: the simulated periods below the norm are near 20 % or less
    assert (normed["share_periods_below_norm"] <= 0.2 + 4 * np.sqrt(0.16 / 1333)).all()
    for treatment in set(table["intervention_id"]):
        png = out / f"fan_{treatment}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "simulated years" in capsys.readouterr().out


def test_simulate_is_deterministic(confident_run: Path, tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert main(["simulate", str(confident_run), "--years", "500", "--seed", str(seed),
                     "--overdispersion", "0.1", "--out", str(tmp_path / name)]) == 0
        runs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert runs[0] == runs[1]
    assert runs[0]["simulation.csv"] != runs[2]["simulation.csv"]


@pytest.mark.parametrize("args, message", [
    (["simulate", "{missing}"], "not a folder"),
    (["simulate", "{empty}"], "not a result folder (no summary.json)"),
    (["simulate", "{run}", "--years", "0"], "must be >= 1"),
    (["simulate", "{run}", "--years", "many"], "not a whole number"),
    (["simulate", "{run}", "--seed", "-1"], "must be >= 0"),
    (["simulate", "{run}", "--overdispersion", "-0.5"], "must be a number >= 0"),
    (["simulate", "{run}", "--overdispersion", "nan"], "must be a number >= 0"),
    (["simulate", "{run}", "--out", "{foreign}"], "was not written by herschik"),
])
def test_simulate_bad_input_is_one_line_exit_2(confident_run: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mine.txt").write_text("the user's file")
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "run": confident_run,
             "foreign": tmp_path / "foreign"}
    argv = [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "foreign" / "mine.txt").read_text() == "the user's file"


def test_simulate_refuses_an_infeasible_run(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "infeasible"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"status": "infeasible", "region_id": "x"}))
    assert main(["simulate", str(run)]) == 2
    assert "the run is infeasible: no plan to simulate" in capsys.readouterr().err
