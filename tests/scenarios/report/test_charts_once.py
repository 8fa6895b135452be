"""The report's odds figure and fan charts are drawn once and cropped to what is drawn
(scenarios/report/charts.py ``_tight_png``), instead of savefig's two layouts for
``bbox_inches="tight"``: the same box as savefig's within a pixel, nothing cut off, the same
bytes for the same input, and a name too long for the spare room still fully shown."""

from __future__ import annotations

import io

import matplotlib.figure
import numpy as np
import pytest
from herschik.scenarios.report import charts
from PIL import Image


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return np.asarray(image.convert("RGB")).astype(int)


def _ink_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Rows and columns of the first and last non-white pixel."""
    ink = (pixels < 250).any(axis=2)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _with_savefig_tight(monkeypatch: pytest.MonkeyPatch, draw: object) -> bytes:
    """The chart as savefig(bbox_inches="tight") draws it (the old way)."""
    def old_way(fig: matplotlib.figure.Figure, dpi: float, pad_inches: float = 0.1) -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None},
                    bbox_inches="tight", pad_inches=pad_inches)
        return buffer.getvalue()

    with monkeypatch.context() as patch:
        patch.setattr(charts, "_tight_png", old_way)
        return draw()  # type: ignore[operator]


CHARTS = {
    "odds": lambda: charts.odds_png(
        [f"Ziekenhuis {i} · {'carotid_intervention' if i % 2 else 'og_resection'}"
         for i in range(23)], np.linspace(0.31, 0.999, 23), 3),
    "fan": lambda: charts.fan_chart_png(
        ["Universitair Medisch Centrum Utrecht", "Meander MC", "Ziekenhuis Gelderse Vallei",
         "St. Antonius Ziekenhuis Nieuwegein"],
        {"p05": [3, 5, 8, 10], "p25": [5, 7, 10, 14], "p50": [6, 8, 12, 16],
         "p75": [7, 10, 14, 18], "p95": [9, 12, 17, 22]}, [10, 10, 20, 20],
        "og_resection: yearly volume of each kept hospital (Poisson)"),
    "one hospital": lambda: charts.fan_chart_png(
        ["Meander MC"], {"p05": [3], "p25": [5], "p50": [6], "p75": [7], "p95": [9]},
        [float("nan")], "hn_flap"),
}


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_a_chart_drawn_once_shows_what_savefig_tight_shows(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[object] = []
    with monkeypatch.context() as patch:  # drawn once: savefig's tight box not needed
        patch.setattr(matplotlib.figure.Figure, "savefig",
                      lambda *args, **kwargs: saved.append(args))
        once = CHARTS[name]()
    assert not saved
    assert once == CHARTS[name]()  # the same input, the same bytes
    tight = _with_savefig_tight(monkeypatch, CHARTS[name])
    new, old = _pixels(once), _pixels(tight)
    # the same box within 2 pixels (savefig rounds the box, the crop widens it outwards)
    assert abs(new.shape[0] - old.shape[0]) <= 2 and abs(new.shape[1] - old.shape[1]) <= 2
    # nothing cut off: the ink as large, and as far from every edge within 2 pixels
    margins = [_margins(pixels) for pixels in (new, old)]
    assert all(abs(a - b) <= 2 for a, b in zip(*margins, strict=True))
    assert min(margins[0]) >= 5
    top, bottom, left, right = _ink_box(new)
    old_box = _ink_box(old)
    assert abs((bottom - top) - (old_box[1] - old_box[0])) <= 1
    assert abs((right - left) - (old_box[3] - old_box[2])) <= 1


def _margins(pixels: np.ndarray) -> tuple[int, int, int, int]:
    top, bottom, left, right = _ink_box(pixels)
    return top, pixels.shape[0] - 1 - bottom, left, pixels.shape[1] - 1 - right


def test_a_name_longer_than_the_spare_room_is_shown_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    long_name = "Stichting " + "Zeer Lang Genaamd Ziekenhuis " * 12 + "· og_resection"
    draws = []
    real = charts.FigureCanvasAgg.draw

    def counted(self: object) -> None:
        draws.append(1)
        real(self)  # type: ignore[arg-type]

    monkeypatch.setattr(charts.FigureCanvasAgg, "draw", counted)
    png = charts.odds_png([long_name, "Meander MC · og_resection"], [0.4, 0.9], 1)
    assert draws  # drawn once, found too wide, then saved as savefig's tight box
    pixels = _pixels(png)
    assert pixels.shape[1] > 100 * (7.0 + charts._ROOM)  # wider than the canvas with room
    top, bottom, left, right = _ink_box(pixels)
    assert left >= 8 and pixels.shape[1] - 1 - right >= 8
