"""marginsim: Monte Carlo stress testing of margin account risk.

Public API: :func:`load_scenario`, :func:`run`, :func:`sweep`, :class:`Scenario`,
:class:`RunResult`, :class:`SweepResult`.

Examples
--------
>>> from simulator import load_scenario, run
>>> scenario = load_scenario("two-asset-crash", ["simulation.paths=500"])
>>> result = run(scenario, "runs/example", jobs=2)  # doctest: +SKIP
>>> result.summary["metrics"]["bad_debt_es_99"]  # doctest: +SKIP
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

#: public name -> the module that defines it; imported on first use (PEP 562), so that
#: ``import simulator`` and ``marginsim --help`` load no numba, pyarrow or joblib
_PUBLIC = {"MarginsimError": "errors", "ScenarioError": "errors", "RunResult": "runner",
           "run": "runner", "Scenario": "scenario", "load_scenario": "scenario",
           "SweepResult": "sweep", "sweep": "sweep"}

__all__ = ["MarginsimError", "RunResult", "Scenario", "ScenarioError", "SweepResult",
           "__version__", "load_scenario", "run", "sweep"]

if TYPE_CHECKING:  # pragma: no cover
    from .errors import MarginsimError, ScenarioError
    from .runner import RunResult, run
    from .scenario import Scenario, load_scenario
    from .sweep import SweepResult, sweep


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        from importlib import import_module

        value = getattr(import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
