"""Rare-event mode's part of a run: tuning the tilt with the pilot on the run's prepared
book, and reading back the tilt a run directory records (a resumed run keeps it)."""

from __future__ import annotations

from pathlib import Path

from simulator._version import __version__
from simulator.config.scenario import Scenario
from simulator.errors import MarginsimError, RunDirectoryError
from simulator.execution.chunk import ChunkContext
from simulator.rare import Tilt, tune_tilt
from simulator.results import atomic as output


def tune_rare_tilt(scenario: Scenario, ctx: ChunkContext | None = None,
                   notice: bool = False) -> Tilt:
    """Tune the importance-sampling tilt of ``scenario.simulation.rare_event`` with the
    pilot (:func:`simulator.rare.tune_tilt`) on the prepared book of ``ctx`` (prepared
    here when not given)."""
    if ctx is None:
        ctx = ChunkContext.build(scenario, Path("."), 0, __version__)
    return tune_tilt(scenario, ctx.inputs, ctx.book, ctx.rules, ctx.index, ctx.acct_navk,
                     notice)


def recorded_tilt(out_dir: Path, scenario: Scenario, given: Tilt | None) -> Tilt | None:
    """The tilt the manifest of the run in ``out_dir`` records, which a resumed run keeps
    (``given`` when the manifest records none: a run that stopped before its manifest).

    Raises
    ------
    RunDirectoryError
        When the record cannot be read back, or ``given`` differs from it: the chunks
        written so far used the recorded one.
    """
    path = out_dir / "manifest.json"
    if not path.is_file():
        return given
    manifest = output.read_json(path)
    record = manifest.get("rare_event") if isinstance(manifest, dict) else None
    if record is None:
        return given
    try:
        recorded = Tilt.from_record(record, scenario.market.symbols, scenario.simulation.steps,
                                    scenario.source)
    except (ValueError, TypeError, KeyError, MarginsimError) as exc:
        raise RunDirectoryError(f"{path}: cannot read the recorded rare-event tilt back "
                                f"({exc}); the run cannot be resumed") from None
    if given is not None and given.record() != recorded.record():
        raise RunDirectoryError(f"{path}: the run was written with another rare-event tilt "
                                "than the one given; resume it without one")
    return recorded
