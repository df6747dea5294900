"""The importance-sampling tilt and the pilot that tunes it.

The tilt shifts the standard normals of step ``t`` by ``theta[t]`` (one entry per asset,
before correlation; constant over blocks of :data:`BLOCKS` equal parts of the horizon):
under the tilted measure each path's innovations are ``eps_t + theta[t]``, and its weight
is the likelihood ratio ``exp(sum_t (-theta[t] . eps_t - |theta[t]|**2 / 2))``
(:mod:`simulator.paths._kernels`). The weights do not depend on the market's parameters,
so every grid point of a sweep that shares the seed and the tilt sees the same weights.
Blocks let the tilt act where the event is decided (the hour after a gap, say) and not
pay for a shift where it is not; with a block of 12 steps and 200 elite paths the
cross-entropy estimate of each entry has a standard error of about 0.02.

The pilot is multi-level cross-entropy (Rubinstein & Kroese, *The Cross-Entropy Method*,
2004, ch. 3; the Gaussian mean-shift family): each round draws ``rare_pilot_paths`` paths
under the current tilt, ranks them by how close they came to the event, and sets the tilt
of each block to the likelihood-ratio-weighted mean of the innovations of the best
``ELITE_SHARE`` of them (of the paths in the event, once at least that many are). The
ranking key is, in order: in the event or not; the event's column, oriented towards the
event (for ``insurance_fund_end``, what the fund paid out); then the path's bad debt,
liquidated notional and number of liquidations; then the losses of the book's accounts
at the final prices (so that a book that never liquidates in the pilot still has a
direction). The rounds use seeds of their own, never a chunk's.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.book.build import Book
from simulator.config.rare import RareEvent, parse_event
from simulator.config.scenario import Scenario
from simulator.errors import ScenarioError
from simulator.margin import EngineRules, replay
from simulator.margin.engine import BookIndex
from simulator.paths import PathInputs, generate_paths
from simulator.results import tables

#: share of the pilot's paths that make the elite of a round
ELITE_SHARE = 0.1
#: rounds of the pilot at most
MAX_ROUNDS = 20
#: standard errors by which a cross-entropy mean must differ from its default to be kept
SIGNIFICANCE = 3.0
#: the horizon's steps are split into at most this many blocks of equal length, each with
#: its own shift
BLOCKS = 24
#: first entry of the pilot rounds' seed spawn keys (chunks use ``(i,)``, their behaviour
#: draws ``(i, 2**31)``)
PILOT_SPAWN_KEY = 2**31 + 1


@dataclass(frozen=True)
class Tilt:
    """A fixed importance-sampling tilt.

    Attributes
    ----------
    event : RareEvent
    theta : ndarray, shape (steps, A)
        Shift of each step's standard normals (before correlation).
    defensive_share : float
        Share of the paths drawn without the shift (a defensive mixture, spread evenly
        over the run by path id; ``simulation.rare_defensive_share``).
    pilot_paths : int
        Paths of each pilot round (0: given, not tuned).
    rounds : tuple of dict
        Per pilot round: ``hits`` (paths in the event), ``level`` (the elite's worst value
        of the event's column), ``theta``.
    """

    event: RareEvent
    theta: np.ndarray
    defensive_share: float = 0.0
    pilot_paths: int = 0
    rounds: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def kernel_theta(self) -> np.ndarray:
        """The shift of each step, shape (steps, A), as the path kernels take it."""
        return np.ascontiguousarray(self.theta, dtype=np.float64)

    @classmethod
    def zero(cls, scenario: Scenario) -> Tilt:
        """A tilt that shifts nothing (to compile the tilted kernels)."""
        sim = scenario.simulation
        event = parse_event(sim.rare_event, scenario.market.symbols, scenario.source)
        return cls(event, np.zeros((sim.steps, len(scenario.market.symbols))))

    def shifted(self, first_path: int, n_paths: int) -> np.ndarray:
        """Which of paths ``first_path .. first_path + n_paths - 1`` the shift applies to:
        all but an even share ``defensive_share`` of them (path ``k`` is plain when
        ``floor((k + 1) s) > floor(k s)``), the same whatever the chunking."""
        k = np.arange(first_path, first_path + n_paths, dtype=np.float64)
        s = self.defensive_share
        return np.floor((k + 1.0) * s) == np.floor(k * s)

    def weights(self, log_ratio: np.ndarray) -> np.ndarray:
        """The paths' weights from the kernels' ``log(p / q)`` of each path's normals: the
        mixture's likelihood ratio ``p / (s p + (1 - s) q)`` (the balance heuristic of
        multiple importance sampling; Owen & Zhou, *Safe and effective importance
        sampling*, JASA 2000), at most ``1 / s``; ``exp(log_ratio)`` when ``s = 0``."""
        s = self.defensive_share
        if s <= 0.0:
            return np.exp(log_ratio)
        return np.exp(-np.logaddexp(np.log(s), np.log1p(-s) - log_ratio))

    def record(self) -> dict[str, Any]:
        """What ``manifest.json`` and ``summary.json`` keep of it (JSON; enough to rebuild
        it with :meth:`from_record`, bit for bit)."""
        return {"method": "importance", "event": self.event.text,
                "condition": self.event.condition, "theta": self.theta.tolist(),
                "defensive_share": self.defensive_share, "pilot_paths": self.pilot_paths,
                "pilot_rounds": list(self.rounds)}

    @classmethod
    def from_record(cls, record: dict[str, Any], symbols: tuple[str, ...], steps: int,
                    source: str) -> Tilt:
        """Rebuild a tilt from :meth:`record` (a resumed run keeps its tilt)."""
        event = parse_event(str(record["event"]), symbols, source)
        theta = np.array(record["theta"], dtype=float)
        if theta.shape != (steps, len(symbols)):
            raise ValueError(f"the recorded tilt has shape {theta.shape}; the scenario has "
                             f"{steps} steps of {len(symbols)} assets")
        return cls(event, theta, float(record.get("defensive_share", 0.0)),
                   int(record.get("pilot_paths", 0)), tuple(record.get("pilot_rounds", ())))


def _oriented(event: RareEvent, cols: dict[str, np.ndarray], fund_usd: float) -> np.ndarray:
    """The event's column, larger = closer to the event."""
    if event.column == "insurance_fund_end":  # what the fund paid out (fees raise the end)
        x = fund_usd + cols["fees"] - cols["insurance_fund_end"]
        return x if not event.upward else -x
    x = np.nan_to_num(cols[event.column].astype(float), nan=-np.inf if event.upward else np.inf)
    return x if event.upward else -x


def _book_losses(book_navk: np.ndarray, s0: np.ndarray, final: np.ndarray) -> np.ndarray:
    """Per path, the summed losses of the accounts that lose at the final prices (linear
    part of their books), in blocks of accounts."""
    out = np.zeros(final.shape[0])
    move = (s0 - final).T  # (A, n)
    for start in range(0, book_navk.shape[0], 512):
        out += np.maximum(book_navk[start:start + 512] @ move, 0.0).sum(axis=0)
    return out


def tune_tilt(scenario: Scenario, inputs: PathInputs, book: Book, rules: EngineRules,
              index: BookIndex, acct_navk: np.ndarray, notice: bool = False) -> Tilt:
    """Tune the tilt towards ``scenario.simulation.rare_event`` with the pilot (see the
    module notes).

    Raises
    ------
    ScenarioError
        When no pilot path reaches the event: the message names the event, the closest
        value reached and what to try.
    """
    sim = scenario.simulation
    event = parse_event(sim.rare_event, scenario.market.symbols, scenario.source)
    n = sim.rare_pilot_paths
    n_elite = max(1, math.ceil(ELITE_SHARE * n))
    steps = inputs.steps
    block = np.arange(steps) * min(BLOCKS, steps) // steps  # block of each step
    theta = np.zeros((steps, inputs.n_assets))
    rounds: list[dict[str, Any]] = []
    best = -np.inf
    for r in range(MAX_ROUNDS):
        seq = np.random.SeedSequence(sim.seed, spawn_key=(PILOT_SPAWN_KEY, r))
        rng = np.random.default_rng(seq)
        logw, znorm = np.zeros(n), np.empty((n, steps, inputs.n_assets))
        exo = generate_paths(inputs, n, rng, theta=theta, log_weight=logw, normals=znorm)
        res = replay(exo, inputs.depth_usd, book, rules, index=index,
                     rng_key=int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1)))
        table = tables.paths_table(res, 0, scenario.market.symbols)
        cols = {name: table.column(name).to_numpy(zero_copy_only=False)
                for name in table.column_names}
        cols["fund_depleted"] = cols["fund_depleted"].astype(float)
        hit = event.holds(cols[event.column])
        closeness = _oriented(event, cols, scenario.venue.insurance_fund_usd)
        best = max(best, float(closeness.max()))
        n_hit = int(hit.sum())
        final = n_hit >= n_elite
        if final:
            elite = np.flatnonzero(hit)
        else:
            keys = (_book_losses(acct_navk, inputs.s0, res.final_price),
                    cols["n_liquidations"].astype(float), cols["liquidated_notional"],
                    cols["bad_debt"], closeness, hit)
            elite = np.lexsort(keys)[-n_elite:]
        w = np.exp(logw[elite] - logw[elite].max())
        theta = cross_entropy_shift(znorm[elite], w / w.sum(), block)
        del exo, znorm
        level = _level(event, cols[event.column][elite])
        rounds.append({"hits": n_hit, "level": level,
                       "tilt_norm": float(np.sqrt((theta**2).sum()))})
        if notice:
            elite_level = ("" if event.column == "fund_depleted" else
                           f", elite {event.column} {_arrow(event)} {level:g}")
            sys.stderr.write(f"rare-event pilot: round {r + 1}, {n_hit} of {n:,} paths in "
                             f"{event.text}{elite_level}\n")
            sys.stderr.flush()
        if final:
            break
    if rounds[-1]["hits"] == 0:
        raise ScenarioError(scenario.source, "simulation.rare_event", (
            f"the event {event.text!r} ({event.condition}) never happened in the pilot "
            f"({len(rounds)} rounds of {n:,} paths; the closest path came to "
            f"{_closest(event, best, scenario.venue.insurance_fund_usd)}): choose a less "
            f"extreme threshold, raise simulation.rare_pilot_paths, or check that the book "
            f"can reach it"))
    return Tilt(event, theta, sim.rare_defensive_share, n, tuple(rounds))


def cross_entropy_shift(x: np.ndarray, p: np.ndarray, block: np.ndarray) -> np.ndarray:
    """The cross-entropy update of the shift from the elite's normals.

    Parameters
    ----------
    x : ndarray, shape (m, steps, A)
        The elite paths' shifted normals.
    p : ndarray, shape (m,)
        Their likelihood ratios, normalised to sum to 1.
    block : ndarray of int, shape (steps,)
        The block of each step.

    Returns
    -------
    ndarray, shape (steps, A)
        Per block, the weighted mean of the block's normals where it differs from 0 by
        more than :data:`SIGNIFICANCE` standard errors (else 0); and per step, the step's
        own weighted mean where it differs from its block's value by more than that (a
        gap's step decides a cascade alone). Standard errors ``sqrt(sum p**2 (x -
        mean)**2)``, the delta method of the weighted mean.
    """
    n_blocks = int(block[-1]) + 1
    counts = np.bincount(block, minlength=n_blocks)
    step_mean = np.tensordot(p, x, axes=1)  # (steps, A)
    step_se = np.sqrt(np.tensordot(p**2, (x - step_mean) ** 2, axes=1))
    xb = np.zeros((x.shape[0], n_blocks, x.shape[2]))
    np.add.at(xb, (slice(None), block), x)
    xb /= counts[None, :, None]
    block_mean = np.tensordot(p, xb, axes=1)  # (blocks, A)
    block_se = np.sqrt(np.tensordot(p**2, (xb - block_mean) ** 2, axes=1))
    block_mean = np.where(np.abs(block_mean) > SIGNIFICANCE * block_se, block_mean, 0.0)
    base = block_mean[block]
    return np.where(np.abs(step_mean - base) > SIGNIFICANCE * step_se, step_mean, base)


def _level(event: RareEvent, values: np.ndarray) -> float:
    """The elite's worst value of the event's column."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan
    return float(v.min() if event.upward else v.max())


def _arrow(event: RareEvent) -> str:
    return ">=" if event.upward else "<="


def _closest(event: RareEvent, best: float, fund_usd: float) -> str:
    if event.column == "insurance_fund_end":
        return f"a fund draw of {best:,.6g} USD"
    value = best if event.upward else -best
    return f"{event.column} = {value:,.6g}"
