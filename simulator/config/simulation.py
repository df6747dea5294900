"""The ``[simulation]`` section: paths, steps, chunking, seed and risk levels."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.config._table import Table, fmt_int
from simulator.config.limits import MAX_CHUNKS
from simulator.config.rare import VARIANCE_REDUCTION

#: the choices of ``simulation.events``
EVENT_ROWS = ("all", "liquidations", "none")
#: the choices of ``simulation.intrastep``: liquidations tested at the step closes only,
#: or also at the extremes of a Brownian bridge between them
INTRASTEP = ("none", "bridge")


@dataclass(frozen=True)
class Simulation:
    """Monte Carlo settings (``[simulation]``)."""

    paths: int = 10_000
    seed: int = 0
    steps: int = 288
    horizon_days: float = 1.0
    chunk_paths: int = 4096
    account_tail_budget_mb: float = 64.0
    risk_levels: tuple[float, ...] = (0.95, 0.99, 0.999)
    #: which rows ``events/`` keeps: ``all``, ``liquidations`` (liquidation and backstop
    #: fills, no ADL or socialised-loss rows) or ``none`` (an empty table); paths, accounts
    #: and the summary are the same whichever is chosen
    events: str = "all"
    #: ``none``: accounts are tested at the step closes; ``bridge``: also at each asset's
    #: lowest and highest price inside the step, drawn from the exact law of a Brownian
    #: bridge between the closes (``docs/engine.md``, "Between the steps")
    intrastep: str = "none"
    #: rare-event mode: the event importance sampling aims at (``""``: none; see
    #: :mod:`simulator.config.rare`)
    rare_event: str = ""
    #: ``none`` or ``importance`` (the default when ``rare_event`` is given)
    variance_reduction: str = "none"
    #: paths of each round of the pilot that tunes the tilt
    rare_pilot_paths: int = 2000
    #: share of the paths drawn without the tilt (a defensive mixture: weights at most
    #: 1 / share, so the figures away from the event stay as sharp as a plain run of that
    #: share of the paths)
    rare_defensive_share: float = 0.1

    @property
    def dt_years(self) -> float:
        """Length of one step in years (365-day year: crypto trades every day)."""
        return self.horizon_days / 365.0 / self.steps




def _read_simulation(t: Table) -> Simulation:
    paths = t.integer("paths", Simulation.paths, lo=1)
    chunk_paths = t.integer("chunk_paths", Simulation.chunk_paths, lo=1)
    n_chunks = -(-paths // chunk_paths)
    if n_chunks > MAX_CHUNKS:  # (SeedSequence.spawn(n_chunks) would take it all)
        raise t.error("paths", f"{fmt_int(paths)} paths in chunks of simulation.chunk_paths = "
                      f"{fmt_int(chunk_paths)} make {fmt_int(n_chunks)} chunks; at most "
                      f"{MAX_CHUNKS:,}: lower simulation.paths or raise "
                      "simulation.chunk_paths")
    return Simulation(
        paths=paths,
        seed=t.integer("seed", Simulation.seed, lo=0),
        steps=t.integer("steps", Simulation.steps, lo=1, hi=1_000_000),
        horizon_days=t.number("horizon_days", Simulation.horizon_days, lo=0.0, lo_open=True,
                              hi=36500.0, floor=1e-4),
        chunk_paths=chunk_paths,
        account_tail_budget_mb=t.number("account_tail_budget_mb",
                                        Simulation.account_tail_budget_mb, lo=0.0),
        risk_levels=_read_levels(t),
        events=t.string("events", Simulation.events, choices=EVENT_ROWS),
        intrastep=t.string("intrastep", Simulation.intrastep, choices=INTRASTEP),
        **_read_rare(t),
    )


def _read_rare(t: Table) -> dict[str, object]:
    """``rare_event``, ``variance_reduction``, ``rare_pilot_paths`` and
    ``rare_defensive_share`` (the event's column is checked against the market's symbols
    by the scenario)."""
    event = t.string("rare_event", "").strip()
    default = "importance" if event else "none"
    method = t.string("variance_reduction", default, choices=VARIANCE_REDUCTION)
    if method == "importance" and not event:
        raise t.error("variance_reduction", "importance sampling needs the event to aim at: "
                      "set simulation.rare_event (or --rare EVENT), e.g. fund_depletion or "
                      "bad_debt>1e6")
    if method != "importance" and event:
        raise t.error("variance_reduction", f"{method!r} with simulation.rare_event = "
                      f"{event!r}: rare-event mode is importance sampling; give "
                      "'importance' (or drop rare_event)")
    if method == "sobol":
        chunk = t.integer("chunk_paths", Simulation.chunk_paths, lo=1)
        paths = t.integer("paths", Simulation.paths, lo=1)
        if chunk & (chunk - 1):
            raise t.error("chunk_paths", f"the sobol mode draws each chunk from one Sobol "
                          f"point set, whose balance needs a power of 2; got {chunk:,} "
                          f"(try {1 << (chunk.bit_length() - 1):,} or "
                          f"{1 << chunk.bit_length():,})")
        if paths % chunk:
            raise t.error("paths", f"the sobol mode's chunks are independent scrambles of "
                          f"equal size: {paths:,} paths is not a multiple of chunk_paths = "
                          f"{chunk:,}")
        if paths < 2 * chunk:
            raise t.error("paths", f"the sobol mode's standard errors come from the spread "
                          f"of independent scrambles, one per chunk: {paths:,} paths in "
                          f"chunks of {chunk:,} make fewer than 2 (8 or more is better)")
    pilot = t.integer("rare_pilot_paths", Simulation.rare_pilot_paths, lo=100,
                      hi=1_000_000)
    share = t.number("rare_defensive_share", Simulation.rare_defensive_share, lo=0.0,
                     hi=1.0, hi_open=True)
    return {"rare_event": event, "variance_reduction": method, "rare_pilot_paths": pilot,
            "rare_defensive_share": share}


def _read_levels(t: Table) -> tuple[float, ...]:
    """``risk_levels``: VaR/ES confidence levels in (0.5, 1), 0.99 always among them."""
    raw = t.raw("risk_levels", None)
    if raw is None:
        return Simulation.risk_levels
    if not isinstance(raw, list) or not raw:
        raise t.error("risk_levels", f"expected a non-empty list of levels such as "
                                     f"[0.95, 0.99, 0.999], got {raw!r}")
    for i, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.5 < v < 1.0:
            raise t.error(f"risk_levels[{i}]", f"must be a number in (0.5, 1), got {v!r}")
    return tuple(sorted({float(v) for v in raw} | {0.99}))
