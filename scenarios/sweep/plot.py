"""Trade-off plots of a sweep: extra travel against providers kept, per region.

One PNG per region (``out_dir/plots/sweep_<region_id>.png``): every solved scenario is a point
at (providers kept after reallocation, extra travel minutes per patient), once for the mean and
once for the 90th percentile; the Pareto front (fewest extra minutes for as many providers kept
as possible) is drawn as a step line and its points are ringed. Points carry a number; the key
beside the axes says which scenario each number is.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from herschik.geo.maps import slug
from herschik.optimiser.status import SolveStatus

from herschik.atomic import atomic_path

__all__ = ["pareto_front", "plot_sweep"]

_SOLVED = (SolveStatus.OPTIMAL.value, SolveStatus.FEASIBLE.value)


def pareto_front(providers: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """Boolean mask of Pareto-optimal points: maximise ``providers``, minimise ``extra``.

    A point is dominated when another has at least as many providers and at most as much extra
    travel, and is strictly better in one of the two. Equal points are all on the front.
    """
    providers = np.asarray(providers, dtype=float)
    extra = np.asarray(extra, dtype=float)
    n = len(providers)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        better_or_equal = (providers >= providers[i]) & (extra <= extra[i])
        strictly = (providers > providers[i]) | (extra < extra[i])
        if np.any(better_or_equal & strictly):
            mask[i] = False
    return mask


def _short_label(row: pd.Series) -> str:
    name = str(row.get("scenario", ""))
    match = re.search(r"\[(.*)\]$", name)
    return match.group(1).replace(",", ", ") if match else name


def _save_png(fig: object, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")  # type: ignore[attr-defined]


def _plot_region(region: str, runs: pd.DataFrame, path: Path) -> None:
    # matplotlib only with --plot: the sweep runner imports this module for every sweep
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    solved = runs[runs["status"].isin(_SOLVED)].copy()
    not_solved = len(runs) - len(solved)
    fig, (ax, key_ax) = plt.subplots(1, 2, figsize=(11, 6), gridspec_kw={"width_ratios": [3, 1.4]})
    key_ax.axis("off")
    if solved.empty:
        ax.text(0.5, 0.5, "no solved scenario", ha="center", va="center", transform=ax.transAxes)
    else:
        providers = solved["providers_after_total"].to_numpy(dtype=float)
        numbers = np.arange(1, len(solved) + 1)
        for column, marker, colour, text in (
            ("mean_extra_min", "o", "tab:blue", "mean extra travel"),
            ("p90_extra_min", "^", "tab:orange", "p90 extra travel"),
        ):
            extra = solved[column].to_numpy(dtype=float)
            ok = np.isfinite(extra) & np.isfinite(providers)
            ax.scatter(
                providers[ok], extra[ok], marker=marker, color=colour, s=36, label=text, zorder=3
            )
            front = np.zeros(len(extra), dtype=bool)
            front[ok] = pareto_front(providers[ok], extra[ok])
            if front.any():
                order = np.argsort(providers[front])
                fx, fy = providers[front][order], extra[front][order]
                ax.step(fx, fy, where="post", color=colour, alpha=0.6, linewidth=1.2, zorder=2)
                ax.scatter(
                    fx,
                    fy,
                    s=130,
                    facecolors="none",
                    edgecolors=colour,
                    linewidths=1.4,
                    zorder=4,
                    label=f"Pareto front ({text.split()[0]})",
                )
            for number, x, y in zip(numbers[ok], providers[ok], extra[ok], strict=True):
                ax.annotate(
                    str(number),
                    (x, y),
                    textcoords="offset points",
                    xytext=(5, 4),
                    fontsize=8,
                    color=colour,
                )
        lines = [
            f"{n:>2}  {_short_label(row)}"
            for n, (_, row) in zip(numbers, solved.iterrows(), strict=True)
        ]
        key_ax.text(
            0.0,
            1.0,
            "\n".join(lines),
            va="top",
            ha="left",
            family="monospace",
            fontsize=7 if len(lines) > 20 else 8,
            transform=key_ax.transAxes,
        )
        ax.legend(loc="best", fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xlabel("providers kept (sum over treatments)")
    ax.set_ylabel("extra travel per patient (minutes)")
    title = f"{region}: extra travel vs providers kept"
    if not_solved:
        title += f" ({not_solved} scenario(s) infeasible or failed, not shown)"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    try:
        _save_png(fig, path)
    finally:
        plt.close(fig)


def plot_sweep(runs_df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Draw one trade-off PNG per region of ``runs_df`` (the sweep's runs table).

    Returns the written paths (``out_dir/plots/sweep_<region_id>.png``), sorted by region.
    """
    out_dir = Path(out_dir)
    paths: list[Path] = []
    if runs_df.empty:
        return paths
    for region, runs in runs_df.groupby("region_id", sort=True):
        path = out_dir / "plots" / f"sweep_{slug(str(region))}.png"  # an id is never a path
        _plot_region(str(region), runs, path)
        paths.append(path)
    return paths
