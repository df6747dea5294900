"""marginsim: Monte Carlo stress testing of margin account risk.

Public API: :func:`load_scenario`, :func:`prepare`, :func:`run`, :func:`sweep`,
:class:`Scenario`, :class:`Prepared`, :class:`RunResult`, :class:`SweepResult`.

Examples
--------
>>> from simulator import load_scenario, run
>>> scenario = load_scenario("two-asset-crash", ["simulation.paths=500"])
>>> result = run(scenario, "runs/example", jobs=2)  # doctest: +SKIP
>>> result.summary["metrics"]["bad_debt_es_99"]  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from simulator._version import __version__

#: public name -> the module that defines it; imported on first use (PEP 562), so that
#: ``import simulator`` and ``marginsim --help`` load no numba, pyarrow or joblib
_PUBLIC = {"MarginsimError": "errors", "ScenarioError": "errors",
           "RunResult": "execution.runner", "run": "execution.runner",
           "Prepared": "execution.prepare", "prepare": "execution.prepare",
           "Scenario": "config.scenario", "load_scenario": "config.scenario",
           "SweepResult": "sweeps.sweep", "sweep": "sweeps.sweep"}

__all__ = ["MarginsimError", "Prepared", "RunResult", "Scenario", "ScenarioError",
           "SweepResult", "__version__", "load_scenario", "prepare", "run", "sweep"]

if TYPE_CHECKING:  # pragma: no cover
    from simulator.config.scenario import Scenario, load_scenario
    from simulator.errors import MarginsimError, ScenarioError
    from simulator.execution.prepare import Prepared, prepare
    from simulator.execution.runner import RunResult, run
    from simulator.sweeps.sweep import SweepResult, sweep


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from importlib import import_module

        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
