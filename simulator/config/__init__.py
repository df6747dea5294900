"""Scenario configuration: TOML text -> frozen, validated dataclasses.

Owns everything that knows the scenario file: TOML parsing and depth limits
(:mod:`~simulator.config.toml`), ``--set`` overrides (:mod:`~simulator.config.overrides`),
the section readers (simulation, market, venue and its presets, accounts and accounts
files, population, behaviour, price models) and every numeric limit
(:mod:`~simulator.config.limits`). It is the only package that reads TOML or names key
paths; every error it raises is a :class:`simulator.errors.ScenarioError` naming the file,
the key path and what is valid.

May import: :mod:`simulator.errors`, :mod:`simulator.input_files`,
:mod:`simulator.price_files` (the replay model's price file), numpy. Nothing else in
``simulator``.
"""
