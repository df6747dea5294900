"""The linear forms of the book at given prices: every unit's margin slack
``E - MM = const + lin @ M`` (options left out) and its NAV, per unit or per account.

They are exact as long as no position changes maintenance bracket; the liquidation index
(:mod:`.index`) and the replay kernel refresh them when one does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from simulator.book.build import Book
from simulator.margin import codes

if TYPE_CHECKING:  # (engine imports this module)
    from simulator.margin.rules import EngineRules


class SlackForm(NamedTuple):
    """Slack form of every unit at some prices, and the per-position terms it sums.

    Attributes
    ----------
    lin : ndarray, shape (U, A)
    const : ndarray, shape (U,)
        ``E - MM = const + lin @ M`` while the brackets hold.
    bracket : ndarray of int64, shape (P,)
        Bracket of every position at the prices.
    rate, cum : ndarray, shape (P,)
        Its bracket's rate and cum, times the unit's maintenance multiplier (0 cum for an
        option or a closed position).
    cost : ndarray, shape (P,)
        What the position cost in USD (``qty entry``; an inverse one's ``qty``).
    """

    lin: np.ndarray
    const: np.ndarray
    bracket: np.ndarray
    rate: np.ndarray
    cum: np.ndarray
    cost: np.ndarray


def position_notional(book: Book, prices: np.ndarray) -> np.ndarray:
    """USD notional of every perpetual at ``prices`` (an inverse one's is its qty); 0 for
    an option (it has no bracket)."""
    size = np.where(book.pos_kind >= codes.POS_CALL, 0.0, np.abs(book.pos_qty))
    return np.where(book.pos_kind == codes.POS_INVERSE, size, size * prices[book.pos_asset])


def position_brackets(book: Book, tiers: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Bracket index of every position at ``prices`` (first cap >= its notional)."""
    notional = position_notional(book, prices)
    k = np.zeros(len(notional), dtype=np.int64)
    for a in range(tiers.shape[0]):
        rows = book.pos_asset == a
        caps = tiers[a, :-1, codes.TIER_CAP]
        k[rows] = np.searchsorted(caps, notional[rows], side="left")
    return k


def coin_qty(book: Book, qty: np.ndarray) -> np.ndarray:
    """Coin exposure per position: ``qty`` (linear), ``qty / entry`` (inverse), 0 (an
    option: outside the linear forms)."""
    inverse = book.pos_kind == codes.POS_INVERSE
    out = np.divide(qty, book.pos_entry, out=np.array(qty, dtype=float), where=inverse)
    out[book.pos_kind >= codes.POS_CALL] = 0.0
    return out


def slack_form(book: Book, rules: EngineRules, prices: np.ndarray,
               mmk: np.ndarray) -> SlackForm:
    """Slack form of every unit with its positions in their brackets at ``prices``.

    Parameters
    ----------
    book : Book
    rules : EngineRules
    prices : ndarray, shape (A,)
    mmk : ndarray, shape (U,)
        Maintenance multiplier of each unit (a margin call's ratio while armed, else 1).

    Returns
    -------
    SlackForm
    """
    pos_unit, pos_asset = book.pos_unit, book.pos_asset
    perp = (book.pos_qty != 0.0) & (book.pos_kind < codes.POS_CALL)
    q = np.where(perp, book.pos_qty, 0.0)  # the linear form leaves options out
    k = position_brackets(book, rules.tiers, prices)
    inverse = book.pos_kind == codes.POS_INVERSE
    rate = rules.tiers[pos_asset, k, codes.TIER_RATE] * mmk[pos_unit]
    cum = np.where(perp, rules.tiers[pos_asset, k, codes.TIER_CUM], 0.0) * mmk[pos_unit]
    # linear: q M - q entry - (|q| M rate - cum); inverse: (q / entry) M - q - (|q| rate - cum)
    exposure = np.zeros((book.n_units, len(prices)))
    np.add.at(exposure, (pos_unit, pos_asset),
              coin_qty(book, q) - np.where(inverse, 0.0, rate * np.abs(q)))
    coll = book.unit_coll
    lin = np.where(coll >= 0, coll * (1.0 - rules.haircut), coll) + exposure
    cost = np.where(inverse, q, q * book.pos_entry)
    fixed_mm = np.where(inverse, rate * np.abs(q), 0.0)
    const = book.unit_usd + np.bincount(pos_unit, cum - cost - fixed_mm,
                                        minlength=book.n_units)
    return SlackForm(np.ascontiguousarray(lin), const, k, rate, cum, cost)


def unit_nav_coefficients(book: Book) -> np.ndarray:
    """``navk`` such that an unchanged unit's NAV moves by ``navk @ dM``; shape (U, A)."""
    navk = book.unit_coll.copy()
    np.add.at(navk, (book.pos_unit, book.pos_asset), coin_qty(book, book.pos_qty))
    return navk


def account_nav_coefficients(book: Book) -> np.ndarray:
    """``K`` such that an untouched account's NAV moves by ``K @ dM``; shape (n_acc, A)."""
    out = np.zeros((book.n_accounts, book.unit_coll.shape[1]))
    np.add.at(out, book.unit_account, unit_nav_coefficients(book))
    return out
