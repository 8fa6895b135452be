"""`herschik network build` on the real Amsterdam extract, a solve on it, and refusals.

The user dataset is made from the embedded default: the districts and sites of
noord_holland_flevoland within 3 km (areas) / 5 km (sites) of the extract's roads
(Amsterdam-Oost), their real demand, and baseline volumes re-split over the kept sites.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from herschik.geo.coverage import MAX_SNAP_M
from herschik.geo.osm import read_osm
from herschik.scenarios.cli.main import main
from scipy.spatial import cKDTree

from tests.support.paths import TESTS_DATA

OSM_DIR = TESTS_DATA / "osm_samples"  # copied in, see its README.md
AMSTERDAM = OSM_DIR / "amsterdam.osm.pbf"
OAKLAND = OSM_DIR / "West-Oakland.osm.bz2"
REGION = "noord_holland_flevoland"


@pytest.fixture(scope="module")
def amsterdam_net(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("net") / "amsterdam.npz"
    assert main(["network", "build", "--osm", str(AMSTERDAM), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def amsterdam_data(tmp_path_factory) -> Path:
    """A user dataset: the region's areas and sites around the extract."""
    folder = tmp_path_factory.mktemp("data") / "oost"
    assert main(["data", "export", "--out", str(folder)]) == 0
    roads = read_osm(AMSTERDAM)
    tree = cKDTree(np.c_[roads.x, roads.y])
    areas = pd.read_csv(folder / "areas.csv", dtype=str)
    sites = pd.read_csv(folder / "sites.csv", dtype=str)
    da, _ = tree.query(areas[["x", "y"]].astype(float).to_numpy())
    ds, _ = tree.query(sites[["x", "y"]].astype(float).to_numpy())
    areas = areas[(areas.region_id == REGION) & (da <= 3000)]
    sites = sites[(sites.region_id == REGION) & (ds <= MAX_SNAP_M)]
    assert len(areas) >= 10 and len(sites) >= 2
    demand = pd.read_csv(folder / "demand.csv", dtype={"area_id": str})
    demand = demand[demand.area_id.isin(areas.area_id)]
    base = pd.read_csv(folder / "baseline_volumes.csv", dtype={"site_id": str})
    base = base[base.site_id.isin(sites.site_id)]
    # today's patients of the kept areas go to the kept sites in proportion to their volumes
    total = demand.groupby("intervention_id").patients.sum()
    treated = base.groupby("intervention_id").volume.sum()
    keep = total.index.intersection(treated[treated > 0].index)
    demand = demand[demand.intervention_id.isin(keep)]
    base = base[base.intervention_id.isin(keep)].copy()
    base["volume"] = base.volume / base.intervention_id.map(treated) * \
        base.intervention_id.map(total)
    areas.to_csv(folder / "areas.csv", index=False)
    sites.to_csv(folder / "sites.csv", index=False)
    demand.to_csv(folder / "demand.csv", index=False)
    base.to_csv(folder / "baseline_volumes.csv", index=False)
    regions = pd.read_csv(folder / "regions.csv")
    regions[regions.region_id == REGION].to_csv(folder / "regions.csv", index=False)
    import geopandas as gpd

    shapes = gpd.read_file(folder / "areas.gpkg", layer="areas")
    shapes[shapes.area_id.isin(areas.area_id)].to_file(folder / "areas.gpkg", layer="areas")
    meta = json.loads((folder / "dataset.json").read_text())
    meta.update(name="amsterdam-oost", baseline="user")
    (folder / "dataset.json").write_text(json.dumps(meta))
    return folder


def test_build_writes_a_compact_network(amsterdam_net, capsys):
    z = np.load(amsterdam_net)
    meta = json.loads(str(z["meta"]))
    assert meta["format"] == "herschik-network" and meta["crs"] == "EPSG:28992"
    assert len(z["x"]) >= 6 and len(z["u"]) >= 10
    assert (z["travel_time"] > 0).all()


def test_solve_on_the_amsterdam_extract(amsterdam_net, amsterdam_data, tmp_path):
    out = tmp_path / "run"
    code = main(["solve", "--region", REGION, "--data", str(amsterdam_data),
                 "--network", str(amsterdam_net), "--out", str(out), "--no-maps",
                 "--no-report"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["network"] == "amsterdam.npz" and summary["status"] == "optimal"
    assign = pd.read_csv(out / "assignments.csv")
    assert assign.patients.sum() > 0
    # within 3-5 km of one small patch of roads: every trip is short but not zero
    assert (assign.travel_min > 0).all() and assign.travel_min.max() < 30


def test_matrix_on_the_amsterdam_extract(amsterdam_net, amsterdam_data, tmp_path):
    out = tmp_path / "m.csv"
    assert main(["matrix", "--region", REGION, "--data", str(amsterdam_data),
                 "--network", str(amsterdam_net), "--out", str(out)]) == 0
    m = pd.read_csv(out)
    assert len(m) > 0 and (m.minutes > 0).all()


def test_network_that_does_not_cover_the_region_is_refused(amsterdam_net, tmp_path, capsys):
    out = tmp_path / "midden"
    code = main(["solve", "--region", "midden", "--network", str(amsterdam_net),
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "amsterdam.npz" in err and "km from the nearest network node" in err
    # counts and names
    assert " of " in err and "areas" in err and "WK" in err
    assert len(err.strip().splitlines()) == 1


def test_california_network_for_midden_is_refused(tmp_path, capsys):
    net = tmp_path / "oakland.npz"
    assert main(["network", "build", "--osm", str(OAKLAND), "--out", str(net)]) == 0
    capsys.readouterr()
    code = main(["matrix", "--region", "midden", "--network", str(net), "--out",
                 str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "m.csv").exists()
    assert "oakland.npz" in err and "areas lie more than 5 km" in err and "WK" in err


def _rewrite(src: Path, dst: Path, **changes) -> Path:
    z = dict(np.load(src))
    for k, f in changes.items():
        z[k] = f(z[k])
    np.savez(dst, **z)
    return dst


def test_scaled_coordinates_are_refused(amsterdam_net, amsterdam_data, tmp_path, capsys):
    bad = _rewrite(amsterdam_net, tmp_path / "scaled.npz", x=lambda a: a / 1e5,
                   y=lambda a: a / 1e5)
    code = main(["solve", "--region", REGION, "--data", str(amsterdam_data), "--network",
                 str(bad), "--out", str(tmp_path / "r"), "--no-maps", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and "scaled.npz" in err and "from the nearest network node" in err


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_zero_or_negative_times_are_refused(amsterdam_net, amsterdam_data, tmp_path, capsys,
                                            scale):
    bad = _rewrite(amsterdam_net, tmp_path / "times.npz", travel_time=lambda a: a * scale)
    code = main(["solve", "--region", REGION, "--data", str(amsterdam_data), "--network",
                 str(bad), "--out", str(tmp_path / "r"), "--no-maps", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and "not a positive number" in err and "of" in err


def test_build_refuses_bad_inputs(tmp_path, capsys):
    garbage = tmp_path / "g.osm.pbf"
    garbage.write_bytes(b"\x00\x00\x00\x0cgarbage")
    assert main(["network", "build", "--osm", str(garbage), "--out",
                 str(tmp_path / "n.npz")]) == 2
    assert "g.osm.pbf" in capsys.readouterr().err
    assert not (tmp_path / "n.npz").exists()
    assert main(["network", "build", "--osm", str(tmp_path / "missing.osm.pbf"), "--out",
                 str(tmp_path / "n.npz")]) == 2
    wrong = tmp_path / "roads.txt"
    shutil.copy(AMSTERDAM, wrong)
    assert main(["network", "build", "--osm", str(wrong), "--out", str(tmp_path / "n.npz")]) == 2
    assert main(["network", "build", "--osm", str(AMSTERDAM), "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.glob(".n.npz*"))
