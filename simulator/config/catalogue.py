"""The built-in scenario library: where it lives, its names, and a scenario's description
read without validating the whole file (so ``marginsim scenarios`` starts in a blink).

Imports no numpy: only the standard library, :mod:`simulator.config.toml` and
:mod:`simulator.input_files`.
"""

from __future__ import annotations

from pathlib import Path

from simulator.config.toml import parse_toml
from simulator.errors import ScenarioError
from simulator.input_files import non_regular_kind, read_regular_text

__all__ = ["builtin_dir", "builtin_scenarios", "describe", "resolve_scenario_path"]


def builtin_dir() -> Path:
    """Folder holding the built-in scenarios (the repository's ``scenarios/``)."""
    package = Path(__file__).resolve().parents[1]  # simulator/
    for candidate in (package.parent / "scenarios", package / "_builtin_scenarios"):
        if candidate.is_dir():
            return candidate
    return package.parent / "scenarios"


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenario names and their files."""
    return {p.stem: p for p in sorted(builtin_dir().glob("*.toml"))}


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """Turn a path or a built-in scenario name into a file path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise ScenarioError(str(path), "", "is a directory; give a scenario TOML file or the "
                            "name of a built-in scenario (marginsim scenarios lists them)")
    kind = non_regular_kind(path)
    if kind is not None:  # /dev/zero would be read forever, a FIFO would block
        raise ScenarioError(str(path), "", f"is {kind}, not a regular file (reading it would "
                            "block or never end); give a scenario TOML file or the name of a "
                            "built-in scenario")
    builtins = builtin_scenarios()
    if str(name_or_path) in builtins:
        return builtins[str(name_or_path)]
    valid = ", ".join(builtins) or "(none installed)"
    raise ScenarioError(
        str(name_or_path), "", f"no such file or built-in scenario; built-in scenarios: {valid}"
    )



def describe(path: Path) -> str:
    """The ``description`` of a scenario file ("" when it has none).

    Raises
    ------
    ScenarioError
        When the file cannot be read or is not TOML.
    """
    document = parse_toml(read_regular_text(path), str(path))
    description = document.get("description", "")
    return description if isinstance(description, str) else str(description)
