"""The pilot that tunes the tilt: multi-level cross-entropy on seeds of its own.

Rubinstein & Kroese, *The Cross-Entropy Method* (2004), ch. 3: each round draws
``simulation.rare_pilot_paths`` paths under the current tilt (no defensive share), ranks
them by how close they came to the event, and sets the tilt to the maximum-likelihood fit
of the best :data:`ELITE_SHARE` of them (of the paths in the event once at least that
many are), weighted by their likelihood ratios:

- the shift of the normals: the weighted mean over the whole horizon, over each block of
  steps (:data:`BLOCKS` equal parts of the horizon) where it differs from the horizon's
  by more than :data:`SIGNIFICANCE` standard errors, and over each step where it differs
  from its block's by more than that (a gap's step decides a cascade alone);
- ``student_t``: the scale of the mixing variable, one for the whole horizon: the weighted
  mean of ``W_t / dof`` (the gamma scale's estimate), kept where it differs from 1 by
  more than :data:`SIGNIFICANCE` standard errors. (Per step or per block it is not: a
  heavy tail's move is made by one small mixing draw at a step that differs from path to
  path, which no per-step scale targets; measured, per-step scales gave estimates a
  tenth of the truth with too small an error.)
- ``merton``: the intensity multiplier, the weighted count of jumps over its plain
  expectation, and the shift of the jump normals, their weighted mean.

The ranking key is, in order: in the event or not; the event's column, oriented towards
the event (for ``insurance_fund_end``, what the fund paid out: fees raise the fund's end);
then the path's bad debt, liquidated notional and number of liquidations; then the losses
of the book's accounts at the final prices (so that a book that never liquidates in the
pilot still has a direction). Round ``r`` draws from ``SeedSequence(seed, spawn_key=
(PILOT_SPAWN_KEY, r))``, never a chunk's seed.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from simulator.book.build import Book
from simulator.config.rare import RareEvent
from simulator.config.scenario import Scenario
from simulator.errors import ScenarioError
from simulator.margin import EngineRules, replay
from simulator.margin.engine import BookIndex
from simulator.paths import PathInputs, bridge_extremes, generate_paths, oracle_args, oracle_arrays
from simulator.rare.tilt import Tilt
from simulator.results import tables

#: share of the pilot's paths that make the elite of a round
ELITE_SHARE = 0.1
#: rounds of the pilot at most
MAX_ROUNDS = 20
#: standard errors by which a cross-entropy mean must differ from its default to be kept
SIGNIFICANCE = 3.0
#: the horizon's steps are split into at most this many blocks of equal length
BLOCKS = 24
#: first entry of the pilot rounds' seed spawn keys (chunks use ``(i,)``, their behaviour
#: draws ``(i, 2**31)``)
PILOT_SPAWN_KEY = 2**31 + 1
#: paths replayed at once in a pilot round
PILOT_SLICE = 500
#: bounds of the mixing scale and of the jump intensity multiplier (a scale at or below 1/2
#: gives the tilted paths' weights an infinite variance: E[exp(W (1 - c) / (2 c))] diverges
#: for a chi-square W)
MIX_SCALE_BOUNDS = (0.55, 2.0)
JUMP_INTENSITY_BOUNDS = (0.05, 50.0)


def _weighted_mean_se(x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean over the first axis and its standard error, ``sqrt(sum p**2 (x -
    mean)**2)`` (the delta method of a weighted mean with ``sum p = 1``)."""
    mean = np.tensordot(p, x, axes=1)
    return mean, np.sqrt(np.tensordot(p**2, (x - mean) ** 2, axes=1))


def cross_entropy_shift(x: np.ndarray, p: np.ndarray, block: np.ndarray) -> np.ndarray:
    """The cross-entropy update of a per-step mean from the elite's draws.

    Parameters
    ----------
    x : ndarray, shape (m, steps, A)
        The elite paths' draws, centred on their plain mean (normals; mixing scales - 1).
    p : ndarray, shape (m,)
        Their likelihood ratios, normalised to sum to 1.
    block : ndarray of int, shape (steps,)
        The block of each step.

    Returns
    -------
    ndarray, shape (steps, A)
        A hierarchy of weighted means, each level kept only where it differs from the
        level above by more than :data:`SIGNIFICANCE` standard errors: the mean over the
        whole horizon (against 0; over the blocks within that many errors of the median
        block, so that one block's shift does not leak into every step), then each
        block's (against the horizon's), then each step's (against its block's: a gap's
        step decides a cascade alone). The least detail the elite supports, so the
        weights pay for no noise.
    """
    steps = x.shape[1]
    n_blocks = int(block[-1]) + 1
    counts = np.bincount(block, minlength=n_blocks)
    xb = np.zeros((x.shape[0], n_blocks, x.shape[2]))
    np.add.at(xb, (slice(None), block), x)
    xb /= counts[None, :, None]
    block_mean, block_se = _weighted_mean_se(xb, p)  # (blocks, A)
    # the horizon's mean over the blocks that agree with the median block (a gap's block
    # is an outlier: its shift must not leak into every other step)
    typical = np.abs(block_mean - np.median(block_mean, axis=0)) <= SIGNIFICANCE * block_se
    share = typical * counts[:, None]
    per_path = (xb * share[None]).sum(axis=1) / np.maximum(share.sum(axis=0), 1)[None]
    whole, whole_se = _weighted_mean_se(per_path, p)  # (A,)
    whole = np.where(np.abs(whole) > SIGNIFICANCE * whole_se, whole, 0.0)
    block_mean = np.where(np.abs(block_mean - whole) > SIGNIFICANCE * block_se, block_mean,
                          whole)
    base = block_mean[block]
    step_mean, step_se = _weighted_mean_se(x, p)  # (steps, A)
    out = np.where(np.abs(step_mean - base) > SIGNIFICANCE * step_se, step_mean, base)
    return out.reshape(steps, x.shape[2])


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


class _Draws:
    """One pilot round's outputs of the path generator, for the cross-entropy update."""

    def __init__(self, inputs: PathInputs, n: int) -> None:
        self.log_ratio = np.zeros(n)
        self.normals = np.empty((n, inputs.steps, inputs.n_assets))
        self.mix = np.empty((n, inputs.steps)) if inputs.model == "student_t" else None
        self.jumps = np.empty((n, 3)) if inputs.model == "merton" else None

    def outputs(self) -> dict[str, np.ndarray | None]:
        return {"log_weight": self.log_ratio, "normals": self.normals,
                "mix_out": self.mix, "jump_out": self.jumps}


def _replay_columns(exo: np.ndarray, inputs: PathInputs, book: Book, rules: EngineRules,
                    index: BookIndex, scenario: Scenario, seq: np.random.SeedSequence,
                    bridge: np.ndarray | None = None, oracle: np.ndarray | None = None,
                    noise: np.ndarray | None = None
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The ``paths/`` columns and final prices of a pilot round, replayed in slices of
    :data:`PILOT_SLICE` paths (the events of a whole round would hold far more memory
    than a chunk's); ``bridge``: the intrastep extremes of the paths; ``oracle``,
    ``noise``: their oracle's index or its readings' noise factors."""
    key = int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1))
    parts: list[dict[str, np.ndarray]] = []
    finals = []
    for lo in range(0, exo.shape[0], PILOT_SLICE):
        res = replay(exo[lo:lo + PILOT_SLICE], inputs.depth_usd, book, rules, index=index,
                     rng_key=key + lo,
                     bridge=None if bridge is None else bridge[lo:lo + PILOT_SLICE],
                     oracle=None if oracle is None else oracle[lo:lo + PILOT_SLICE],
                     oracle_noise=None if noise is None else noise[lo:lo + PILOT_SLICE])
        table = tables.paths_table(res, lo, scenario.market.symbols, breaker=rules.breaker)
        parts.append({name: table.column(name).to_numpy(zero_copy_only=False)
                      for name in table.column_names})
        finals.append(res.final_price)
    cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return cols, np.concatenate(finals)


def _update(tilt: Tilt, draws: _Draws, elite: np.ndarray, inputs: PathInputs,
            block: np.ndarray) -> Tilt:
    """The next round's tilt from the elite."""
    lw = draws.log_ratio[elite]
    p = np.exp(lw - lw.max())
    p /= p.sum()
    theta = cross_entropy_shift(draws.normals[elite], p, block)
    mix = jump = None
    if draws.mix is not None:
        dof = inputs.params.dof
        u, u_se = _weighted_mean_se(draws.mix[elite].mean(axis=1) / dof - 1.0, p)
        scale = 1.0 + (u if abs(u) > SIGNIFICANCE * u_se else 0.0)
        mix = np.full(inputs.steps, math.log(np.clip(scale, *MIX_SCALE_BOUNDS)))
    if draws.jumps is not None:
        par = inputs.params
        lam_dt = par.intensity * inputs.dt_years
        series = inputs.steps * (1 if par.common else inputs.n_assets)
        count, n_normals, total = p @ draws.jumps[elite]
        kappa = np.clip(count / (series * lam_dt), *JUMP_INTENSITY_BOUNDS) if lam_dt > 0 \
            else 1.0
        jump = np.array([math.log(kappa), total / n_normals if n_normals > 0 else 0.0])
    return Tilt(tilt.event, theta, tilt.defensive_share, mix, jump)


def tune_tilt(scenario: Scenario, inputs: PathInputs, book: Book, rules: EngineRules,
              index: BookIndex, acct_navk: np.ndarray, notice: bool = False) -> Tilt:
    """Tune the tilt towards ``scenario.simulation.rare_event`` (see the module notes).

    Raises
    ------
    ScenarioError
        When no pilot path reaches the event: the message names the event, the closest
        value reached and what to try.
    """
    sim = scenario.simulation
    tilt = Tilt.zero(scenario)
    event = tilt.event
    n = sim.rare_pilot_paths
    n_elite = max(1, math.ceil(ELITE_SHARE * n))
    block = np.arange(inputs.steps) * min(BLOCKS, inputs.steps) // inputs.steps
    rounds: list[dict[str, Any]] = []
    best = -np.inf
    index_args = oracle_args(scenario)
    for r in range(MAX_ROUNDS):
        seq = np.random.SeedSequence(sim.seed, spawn_key=(PILOT_SPAWN_KEY, r))
        draws = _Draws(inputs, n)
        rng = np.random.default_rng(seq)
        exo = generate_paths(inputs, n, rng, **tilt.path_args(), **draws.outputs())
        bridge = (bridge_extremes(inputs, exo, rng) if sim.intrastep == "bridge" else None)
        oracle, noise = oracle_arrays(exo, rng, index_args)
        cols, final_prices = _replay_columns(exo, inputs, book, rules, index, scenario, seq,
                                             bridge, oracle, noise)
        del exo, bridge, oracle, noise
        cols["fund_depleted"] = cols["fund_depleted"].astype(float)
        hit = event.holds(cols[event.column])
        closeness = _oriented(event, cols, scenario.venue.insurance_fund_usd)
        best = max(best, float(closeness.max()))
        n_hit = int(hit.sum())
        final = n_hit >= n_elite
        if final:
            elite = np.flatnonzero(hit)
        else:
            keys = (_book_losses(acct_navk, inputs.s0, final_prices),
                    cols["n_liquidations"].astype(float), cols["liquidated_notional"],
                    cols["bad_debt"], closeness, hit)
            elite = np.lexsort(keys)[-n_elite:]
        tilt = _update(tilt, draws, elite, inputs, block)
        level = _level(event, cols[event.column][elite])
        rounds.append({"hits": n_hit, "level": level,
                       "tilt_norm": float(np.sqrt((tilt.theta**2).sum()))})
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
            f"{_closest(event, best)}): choose a less extreme threshold, raise "
            "simulation.rare_pilot_paths, or check that the book can reach it"))
    return Tilt(event, tilt.theta, sim.rare_defensive_share, tilt.mix_log_scale, tilt.jump,
                n, tuple(rounds))


def _level(event: RareEvent, values: np.ndarray) -> float:
    """The elite's worst value of the event's column."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan
    return float(v.min() if event.upward else v.max())


def _arrow(event: RareEvent) -> str:
    return ">=" if event.upward else "<="


def _closest(event: RareEvent, best: float) -> str:
    if event.column == "insurance_fund_end":
        return f"a fund draw of {best:,.6g} USD"
    value = best if event.upward else -best
    return f"{event.column} = {value:,.6g}"

