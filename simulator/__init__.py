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

from .errors import MarginsimError, ScenarioError  # noqa: E402
from .runner import RunResult, run  # noqa: E402
from .scenario import Scenario, load_scenario  # noqa: E402
from .sweep import SweepResult, sweep  # noqa: E402

__all__ = ["MarginsimError", "RunResult", "Scenario", "ScenarioError", "SweepResult",
           "__version__", "load_scenario", "run", "sweep"]
