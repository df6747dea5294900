"""Writing ``report.html`` for a run or a sweep directory, atomically."""

from __future__ import annotations

import os
from pathlib import Path

from simulator.errors import MarginsimError
from simulator.report._widgets import (
    _page,
)
from simulator.report.html import _run_page


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html``, a self-contained HTML report of a run or a sweep.

    Parameters
    ----------
    run_dir : pathlib.Path
        A run directory (with ``summary.json``) or a sweep directory (with
        ``sweep.parquet``).

    Returns
    -------
    pathlib.Path
        The path of ``report.html``. It is written to a hidden temporary file in the same
        folder and renamed into place, so a reader never sees a partial page.

    Raises
    ------
    MarginsimError
        When matplotlib is not installed, when ``run_dir`` is neither a run nor a sweep
        directory, or when one of its files cannot be read.
    """
    run_dir = Path(run_dir)
    _require_matplotlib()
    if (run_dir / "sweep.parquet").is_file():
        from simulator.report.sweep_page import sweep_page

        title, meta, body = sweep_page(run_dir)
    elif (run_dir / "summary.json").is_file():
        title, meta, body = _run_page(run_dir)
    elif (run_dir / "manifest.json").is_file() or (run_dir / "sweep.json").is_file():
        raise MarginsimError(f"{run_dir}: the run or sweep is incomplete (no summary.json or "
                             "sweep.parquet yet); finish it with --resume (a run) or rerun it, "
                             "then report")
    else:
        raise MarginsimError(f"{run_dir}: not a run directory (no summary.json) nor a sweep "
                             "directory (no sweep.parquet)")
    page = _page(title, meta, body)
    out = run_dir / "report.html"
    tmp = run_dir / f".report.html.{os.getpid()}.tmp"
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise MarginsimError(f"{out}: cannot write the report: {exc}") from None
    return out


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MarginsimError('the HTML report needs matplotlib: pip install "marginsim[report]"'
                             ) from None
