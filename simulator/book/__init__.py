"""The book: a scenario's accounts as flat arrays the engine replays.

Owns the translation of explicit accounts, accounts files and synthetic populations
(positions, collateral, lending debt, options) into :class:`~simulator.book.build.Book`,
a frozen set of numpy arrays indexed by account, margin unit and position.

May import: :mod:`simulator.config`, :mod:`simulator._kernels`, :mod:`simulator.options`,
:mod:`simulator.errors`, numpy.
"""
