"""The importance-sampling tilt: what it shifts and how a path's weight follows.

The tilt shifts the standard normals of step ``t`` by ``theta[t]`` (one entry per asset,
before correlation): under the tilted measure a path's innovations are ``eps_t +
theta[t]``, and the log likelihood ratio of its normals ``x`` is ``sum_t (-theta[t] . x_t
+ |theta[t]|**2 / 2)`` (:mod:`simulator.paths._kernels`). For ``student_t`` it also
scales each step's chi-square mixing variable by ``c_t`` (``mix_log_scale``, ``log
c_t``), for ``merton`` it multiplies the jump intensity by ``kappa`` and shifts the jump
normals by ``eta`` (``jump``: ``log kappa, eta``); the kernels add their log ratios.

A defensive share ``s`` of the paths (every ``1 / s``-th path id) is drawn without the
tilt, and every path is weighted by the mixture's likelihood ratio ``p / (s p + (1 - s)
q)`` (the balance heuristic of multiple importance sampling; Owen & Zhou, "Safe and
effective importance sampling", JASA 95, 2000): unbiased, the weights at most ``1 / s``,
and the figures away from the event as sharp as a plain run of ``s n`` paths.

The weights do not depend on the market's or the venue's parameters, so every grid point
of a sweep that shares the seed and the tilt sees the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.config.rare import RareEvent, parse_event
from simulator.config.scenario import Scenario


@dataclass(frozen=True)
class Tilt:
    """A fixed importance-sampling tilt.

    Attributes
    ----------
    event : RareEvent
    theta : ndarray, shape (steps, A)
        Shift of each step's standard normals (before correlation).
    defensive_share : float
        Share of the paths drawn without the tilt (``simulation.rare_defensive_share``).
    mix_log_scale : ndarray, shape (steps,), or None
        ``student_t``: ``log c_t``, the log scale of each step's mixing variable (the
        pilot sets one value for every step).
    jump : ndarray, shape (2,), or None
        ``merton``: ``log kappa`` (intensity multiplier) and ``eta`` (jump-normal shift).
    pilot_paths : int
        Paths of each pilot round (0: given, not tuned).
    rounds : tuple of dict
        Per pilot round: ``hits`` (paths in the event), ``level`` (the elite's worst value
        of the event's column), ``tilt_norm``.
    """

    event: RareEvent
    theta: np.ndarray
    defensive_share: float = 0.0
    mix_log_scale: np.ndarray | None = None
    jump: np.ndarray | None = None
    pilot_paths: int = 0
    rounds: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def kernel_theta(self) -> np.ndarray:
        """The shift of each step, shape (steps, A), as the path kernels take it."""
        return np.ascontiguousarray(self.theta, dtype=np.float64)

    def path_args(self) -> dict[str, np.ndarray | None]:
        """The tilt's keyword arguments of :func:`simulator.paths.generate_paths`."""
        return {"theta": self.kernel_theta(),
                "mix_tilt": _c64(self.mix_log_scale), "jump_tilt": _c64(self.jump)}

    @classmethod
    def zero(cls, scenario: Scenario) -> Tilt:
        """A tilt that shifts nothing (to compile the tilted kernels)."""
        sim = scenario.simulation
        event = parse_event(sim.rare_event, scenario.market.symbols, scenario.source)
        model = scenario.market.model
        return cls(event, np.zeros((sim.steps, len(scenario.market.symbols))),
                   mix_log_scale=np.zeros(sim.steps) if model == "student_t" else None,
                   jump=np.zeros(2) if model == "merton" else None)

    def shifted(self, first_path: int, n_paths: int) -> np.ndarray:
        """Which of paths ``first_path .. first_path + n_paths - 1`` the tilt applies to:
        all but an even share ``defensive_share`` of them (path ``k`` is plain when
        ``floor((k + 1) s) > floor(k s)``), the same whatever the chunking."""
        k = np.arange(first_path, first_path + n_paths, dtype=np.float64)
        s = self.defensive_share
        return np.floor((k + 1.0) * s) == np.floor(k * s)

    def weights(self, log_ratio: np.ndarray) -> np.ndarray:
        """The paths' weights from the kernels' ``log(p / q)`` of each path's draws: the
        mixture's likelihood ratio ``p / (s p + (1 - s) q)``, at most ``1 / s``;
        ``exp(log_ratio)`` when ``s = 0``."""
        s = self.defensive_share
        if s <= 0.0:
            return np.exp(log_ratio)
        return np.exp(-np.logaddexp(np.log(s), np.log1p(-s) - log_ratio))

    def record(self) -> dict[str, Any]:
        """What ``manifest.json`` and ``summary.json`` keep of it (JSON; enough to rebuild
        it with :meth:`from_record`, bit for bit)."""
        out: dict[str, Any] = {
            "method": "importance", "event": self.event.text,
            "condition": self.event.condition, "theta": self.theta.tolist(),
            "defensive_share": self.defensive_share}
        if self.mix_log_scale is not None:
            out["mix_log_scale"] = self.mix_log_scale.tolist()
        if self.jump is not None:
            out["jump_log_intensity"], out["jump_shift"] = map(float, self.jump)
        out.update({"pilot_paths": self.pilot_paths, "pilot_rounds": list(self.rounds)})
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any], symbols: tuple[str, ...], steps: int,
                    source: str) -> Tilt:
        """Rebuild a tilt from :meth:`record` (a resumed run keeps its tilt)."""
        event = parse_event(str(record["event"]), symbols, source)
        theta = np.array(record["theta"], dtype=float)
        if theta.shape != (steps, len(symbols)):
            raise ValueError(f"the recorded tilt has shape {theta.shape}; the scenario has "
                             f"{steps} steps of {len(symbols)} assets")
        mix = record.get("mix_log_scale")
        jump = (np.array([record["jump_log_intensity"], record["jump_shift"]], dtype=float)
                if "jump_log_intensity" in record else None)
        return cls(event, theta, float(record.get("defensive_share", 0.0)),
                   None if mix is None else np.array(mix, dtype=float), jump,
                   int(record.get("pilot_paths", 0)), tuple(record.get("pilot_rounds", ())))


def _c64(x: np.ndarray | None) -> np.ndarray | None:
    return None if x is None else np.ascontiguousarray(x, dtype=np.float64)
