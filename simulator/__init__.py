"""marginsim: Monte Carlo stress testing of margin account risk.

Public API: :func:`load_scenario`, :func:`run`, :class:`Scenario`, :class:`RunResult`.
"""

from .errors import MarginsimError, ScenarioError
from .scenario import Scenario, load_scenario

__version__ = "0.1.0"

__all__ = ["MarginsimError", "Scenario", "ScenarioError", "__version__", "load_scenario"]
