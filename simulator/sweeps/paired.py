"""Paired differences between the points of a sweep, on common random numbers.

Every point of a sweep replays the same random numbers, so a path of one point and the
path of the same ``path_id`` at another point differ by the parameters only (as long as the
swept keys leave the price model alone, they see the same prices). The difference of a
figure's mean between a point and the first one is then best estimated path by path: the
mean of the per-path differences, whose standard error is that of those differences. When
two policies move a figure in the same direction on the same paths, that error is far
smaller than the two points' own errors combined, and a difference of a few percent can be
told from noise with paths that could not tell the points apart one by one.

The per-path differences are independent from path to path whatever the swept keys do, so
the standard error holds even when the paths are not shared (then it is simply the error of
a difference of two independent means). Rare-event sweeps tune one tilt for every point, so
a path has the same weight at every point; the difference is then the weighted mean of the
per-path differences (:func:`simulator.results.risk.wmean_se`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from simulator.results import read
from simulator.results.risk import wmean_se

__all__ = ["DIFF_SUFFIX", "paired_columns", "paired_differences"]

#: suffix of a sweep column holding a metric's difference from the first point
DIFF_SUFFIX = "_diff"


def paired_columns(row: dict[str, Any], path_columns: list[str]) -> list[str]:
    """The path columns whose mean is a summary metric of ``row`` (``<column>_mean``)."""
    return [c for c in path_columns if c not in ("path_id", "weight") and f"{c}_mean" in row]


def _load(out_dir: Path, row: dict[str, Any], columns: list[str]) -> dict[str, np.ndarray]:
    table = read.paths(out_dir / str(row["point_dir"]), columns=["path_id", "weight",
                                                                 *columns], as_="arrow")
    data = {c: np.asarray(table[c].to_pandas(), dtype=float) for c in table.column_names}
    order = np.argsort(data["path_id"], kind="stable")
    return {c: v[order] for c, v in data.items()}


def paired_differences(out_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    """Add to every row, for each path figure ``c`` with a mean metric ``c_mean``, the
    difference from the first row, ``c_mean_diff``, and its standard error,
    ``c_mean_diff_stderr`` (in place; the first row's are 0).

    A figure with missing values on some path (such as ``first_liquidation_step``) gets
    no difference, and neither does a point whose ``path_id`` differ from the first's.

    Parameters
    ----------
    out_dir : str or Path
        The sweep directory; ``row["point_dir"]`` is relative to it.
    rows : list of dict
        The sweep's rows (grid values, ``point_dir``, metrics), the baseline first.
    """
    if not rows:
        return
    out_dir = Path(out_dir)
    first = rows[0]
    names = read.paths(out_dir / str(first["point_dir"]), as_="dataset").schema.names
    columns = paired_columns(first, names)
    base = _load(out_dir, first, columns)
    for row in rows:
        here = base if row is first else _load(out_dir, row, columns)
        same = (here["path_id"].shape == base["path_id"].shape
                and bool(np.array_equal(here["path_id"], base["path_id"])))
        for c in columns:
            est = se = math.nan
            if same and c in here and np.all(np.isfinite(here[c])) \
                    and np.all(np.isfinite(base[c])):
                d = here[c] - base[c]
                est, se = wmean_se(d, here["weight"])  # (weights 1 without a tilt)
            row[f"{c}_mean{DIFF_SUFFIX}"] = est
            row[f"{c}_mean{DIFF_SUFFIX}_stderr"] = se
