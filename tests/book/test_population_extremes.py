"""Population draws stay finite at the loader's extremes: a Pareto with a tiny tail index
and no ``max`` overflows numpy to inf, and every draw is clipped to 1e15 (the loader's
bound on distribution parameters and collateral), so such a scenario runs end to end with
finite outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import cli
from simulator.book.population import draw_distribution
from simulator.config.population import Distribution

from ..support.json_checks import assert_json_finite

CEILING = 1e15  # README: every draw is at most 1e15

SCENARIO = """\
name = "heavy-tail"
[simulation]
paths = 40
seed = 3
steps = 8
chunk_paths = 20
[market]
model = "gbm"
[[market.assets]]
symbol = "BTC"
price = 60000.0
vol = 0.8
depth_usd = 2.0e7
haircut = 0.1
[[market.assets]]
symbol = "ETH"
price = 3000.0
vol = 1.0
depth_usd = 1.0e7
[[shocks]]
kind = "gap"
step = 2
asset = "*"
size = -0.3
[population]
count = 60
max_positions = 2
inverse_share = 0.3
collateral = { USD = 1, BTC = 1 }
notional_usd = { dist = "pareto", scale = 1000.0, alpha = 0.001 }
leverage = { dist = "pareto", scale = 2.0, alpha = 0.001 }
"""


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_numpy_pareto_with_a_tiny_tail_index_overflows():
    """The hazard the ceiling removes: scale * (1 + Lomax(0.001)) is inf for most draws
    (P(Lomax > 1e308) = (1 + 1e308)**-0.001, about 0.49)."""
    raw = 1000.0 * (1.0 + np.random.default_rng(1).pareto(0.001, 2000))
    assert np.isinf(raw).mean() > 0.4


def test_draws_are_clipped_to_the_ceiling():
    dist = Distribution("pareto", (("scale", 1000.0), ("alpha", 0.001)), 0.0, math.inf)
    values = draw_distribution(dist, 2000, np.random.default_rng(1))
    assert np.isfinite(values).all()
    assert values.max() == CEILING and values.min() >= 1000.0
    # P(draw >= 1e15) = P(1 + Lomax >= 1e12) = 1e12**-0.001 = 0.9727; 4 SE on 2000 draws
    share = (values == CEILING).mean()
    p = 1e12 ** -0.001
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / 2000)
    # a min above the ceiling cannot lift draws past it
    high_min = Distribution("fixed", (("value", 1e15),), 2e15, math.inf)
    assert draw_distribution(high_min, 3, np.random.default_rng(1)).tolist() == [CEILING] * 3


def _numeric_columns_finite(table: pa.Table) -> None:
    """No NaN or infinity in any float column; nulls only where the README documents them
    (``*_stderr`` of an ES whose tail is one path; ``liq_price_<SYM>`` where an account has
    no liquidation price in the price band)."""
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_floating(column.type):
            if column.null_count:
                assert name.endswith("_stderr") or name.startswith("liq_price_"), name
            values = column.drop_null().to_numpy()
            assert np.isfinite(values).all(), name


@pytest.mark.parametrize("notional", ["", 'notional_usd = 1e15'])
def test_heavy_tailed_population_runs_with_finite_outputs(tmp_path, capsys, notional):
    """Accounts at the 1e15 ceiling (the Pareto draws, or a plain notional_usd = 1e15) run
    end to end: finite outputs, nulls only in the documented ``*_stderr`` columns (the ES
    of a one-path tail at 40 paths)."""
    text = SCENARIO
    if notional:
        text = "\n".join(notional if line.startswith("notional_usd") else line
                         for line in SCENARIO.splitlines()) + "\n"
        assert "notional_usd = 1e15" in text
    path = tmp_path / "heavy.toml"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    assert cli.main(["run", str(path), "--out", str(out), "--quiet"]) == 0, \
        capsys.readouterr().err
    _numeric_columns_finite(pq.read_table(out / "paths"))
    _numeric_columns_finite(pq.read_table(out / "accounts.parquet"))
    events = pq.read_table(out / "events")
    assert events.num_rows > 0  # the accounts at the ceiling are liquidated
    _numeric_columns_finite(events)

    assert_json_finite(out / "summary.json")
    assert_json_finite(out / "manifest.json")
