"""Plain modules shared by the tests (builders, comparisons and checks); no tests here.

``DATA`` is the folder of the tests' data files (``tests/data``).
"""

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"
