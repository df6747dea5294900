"""The prepare step: a scenario turned into everything the replay needs, built in one place.

Every caller that simulates (the runner, ``marginsim validate``, the benchmarks, the tests)
gets its book, path inputs, rules and liquidation index from :func:`prepare`, so the
sequence ``build_book`` -> ``prepare_path_inputs`` -> ``EngineRules.for_scenario`` ->
``BookIndex.build`` -> ``account_nav_coefficients`` is written once.

Examples
--------
>>> import numpy as np
>>> from simulator import load_scenario, prepare
>>> from simulator.margin import replay
>>> from simulator.paths import generate_paths
>>> prep = prepare(load_scenario("deterministic-gap"))
>>> exo = generate_paths(prep.inputs, 1, np.random.default_rng(0))
>>> result = replay(exo, prep.inputs.depth_usd, prep.book, prep.rules, index=prep.index)
>>> int(result.path_i.shape[0])
1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.book.build import Book, build_book
from simulator.config.scenario import Scenario
from simulator.margin.index import BookIndex
from simulator.margin.rules import EngineRules
from simulator.margin.slack_form import account_nav_coefficients
from simulator.paths import PathInputs, prepare_path_inputs

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True)
class Prepared:
    """A scenario made ready to simulate.

    Attributes
    ----------
    scenario : Scenario
        What was prepared.
    book : Book
        The accounts as flat arrays (:func:`simulator.book.build.build_book`).
    inputs : PathInputs
        The path generator's inputs (:func:`simulator.paths.prepare_path_inputs`).
    rules : EngineRules
        Venue, liquidity and behaviour rules in the kernel's form.
    index : BookIndex
        The liquidation index of ``book`` at the initial prices.
    acct_navk : ndarray, shape (n_accounts, n_assets + 1)
        Each account's initial NAV as a linear function of the final marks
        (:func:`simulator.margin.slack_form.account_nav_coefficients`).
    """

    scenario: Scenario
    book: Book
    inputs: PathInputs
    rules: EngineRules
    index: BookIndex
    acct_navk: np.ndarray


def prepare(scenario: Scenario, *, full_scan: bool = False) -> Prepared:
    """Build the book, path inputs, rules and index of ``scenario``.

    Parameters
    ----------
    scenario : Scenario
        From :func:`simulator.load_scenario`.
    full_scan : bool
        Check every margin unit at every step instead of only those the index flags
        (slow; the reference the index is tested against).

    Returns
    -------
    Prepared
    """
    book = build_book(scenario)
    inputs = prepare_path_inputs(scenario)
    rules = EngineRules.for_scenario(scenario, full_scan=full_scan)
    index = BookIndex.build(book, rules, inputs.s0, scenario.simulation.steps, inputs.gap_log)
    return Prepared(scenario=scenario, book=book, inputs=inputs, rules=rules, index=index,
                    acct_navk=account_nav_coefficients(book))
