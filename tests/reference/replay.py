"""The public entry point of the reference: :func:`naive_replay`, every path of a replay
through the margin engine of ``docs/engine.md``, slowly."""

from __future__ import annotations

import math
from typing import Any

from .behaviour import Behaviour
from .book import Book
from .inputs import (
    ADL_RANKINGS,
    BREAKER_HALTS,
    CALL_ACTIONS,
    INVERSE,
    LINEAR,
    MODES,
    Venue,
    check_brackets,
    floats1,
    floats2,
    floats3,
    ints1,
)
from .marks import PRICE_RULES
from .options import CALL, PUT, NaiveOptions
from .path import PathRun


def naive_replay(
    exo: Any,
    depth: Any,
    haircut: Any,
    mmr: Any,
    unit_account: Any,
    unit_usd: Any,
    unit_coll: Any,
    pos_unit: Any,
    pos_asset: Any,
    pos_qty: Any,
    pos_entry: Any,
    *,
    n_accounts: int,
    fee_rate: float,
    partial: bool = False,
    target: float,
    fund0: float,
    adl: bool,
    max_rounds: int,
    alpha: float,
    decay: float,
    brackets: tuple[Any, Any, Any] | None = None,
    mode: str | None = None,
    step_fraction: float = 0.0,
    step_min_usd: float = 0.0,
    step_max_usd: float = math.inf,
    full_below_usd: float = 0.0,
    backstop_ratio: float = 0.0,
    adl_ranking: str = "pnl_margin_ratio",
    adl_max_notional_per_step_usd: float = math.inf,
    lending: bool = False,
    close_factor: float = 0.5,
    full_close_below_hf: float = 0.95,
    full_close_below_usd: float = 0.0,
    bonus: float = 0.0,
    protocol_share: float = 0.0,
    funding_interval: int = 0,
    funding_rate: float = 0.0,
    funding_premium: bool = False,
    funding_cap: float = 0.0,
    call_ratio: float = 0.0,
    call_prob: float = 0.0,
    call_delay: int = 1,
    call_action: str = "top_up",
    call_target: float = 2.0,
    reserve: Any = None,
    rng_key: int = 0,
    pos_kind: Any = None,
    options: NaiveOptions | None = None,
    bridge: Any = None,
    breaker_band: float = 0.0,
    breaker_steps: int = 5,
    breaker_halts: str = "liquidations",
    vault_disposal: str = "instant",
    vault_disposal_share: float = 0.2,
    vault_depth_share: float = 0.1,
    index: Any = None,
    price_rule: Any = None,
    ema_weight: float = 0.0,
    oracle_rule: Any = None,
    oracle_noise: Any = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Replay every path through the margin engine of ``docs/engine.md``, slowly.

    Every path starts from the same initial book (copied per path).

    Parameters
    ----------
    exo : array_like of float, shape (n_paths, steps + 1, A)
        Exogenous prices.
    depth : array_like of float, shape (steps + 1, A)
        Depth in USD per step and asset.
    haircut : array_like of float, shape (A,)
        Collateral haircut per asset (on a lending venue, 1 - liquidation threshold).
    mmr : array_like of float, shape (A,), or None
        Flat maintenance margin rate per asset: one bracket ``cap = +inf``,
        ``rate = mmr[a]``, ``cum = 0``. Ignored (may be None) when ``brackets`` is given.
    unit_account : array_like of int, shape (U,)
        Account index of each margin unit.
    unit_usd : array_like of float, shape (U,)
        USD balance of each unit (negative: a USD debt).
    unit_coll : array_like of float, shape (U, A)
        Collateral amounts of each unit.
    pos_unit : array_like of int, shape (P,)
        Unit of each position (non-decreasing).
    pos_asset : array_like of int, shape (P,)
        Asset of each position.
    pos_qty : array_like of float, shape (P,)
        Signed quantity of each position (on a lending venue a debt: ``qty < 0``).
    pos_entry : array_like of float, shape (P,)
        Entry price of each position (on a lending venue 0).
    n_accounts : int
        Number of accounts.
    fee_rate : float
        Liquidation fee rate.
    partial : bool, default False
        Legacy switch, used only when ``mode`` is None: ``True`` for partial mode,
        ``False`` for full mode.
    target : float
        Partial-liquidation target ratio (> 1).
    fund0 : float
        Initial insurance fund in USD.
    adl : bool
        Whether auto-deleveraging covers uncovered deficits (ignored on a lending venue).
    max_rounds : int
        Maximum cascade rounds per step.
    alpha : float
        Impact exponent: ``0.0`` means impact kind ``none``, ``1.0`` linear, ``0.5`` sqrt.
    decay : float
        Per-step factor on the accumulated log impact.
    brackets : tuple of three array_like of float, each shape (A, K), optional
        ``(cap, rate, cum)`` maintenance bracket tables; replaces ``mmr``.
    mode : {"full", "partial", "incremental"}, optional
        Liquidation mode; default ``"partial" if partial else "full"``.
    step_fraction, step_min_usd, step_max_usd, full_below_usd : float
        Incremental mode: each round closes ``min(max(step_fraction * N, step_min_usd),
        step_max_usd)`` of the notional ``N``, all of it when ``N <= full_below_usd``.
    backstop_ratio : float, default 0.0
        A liquidatable unit with ``E < backstop_ratio * MM`` goes to the backstop vault
        (0 = no vault).
    adl_ranking : str
        One of ``pnl_margin_ratio``, ``profit_leverage``, ``bybit``, ``pro_rata``,
        ``leverage_pro_rata``: order of the ADL candidates, or how the quantity is shared
        between them.
    adl_max_notional_per_step_usd : float, default inf
        Most ADL notional per step (inf: no cap).
    lending : bool, default False
        Lending venue: lending rounds instead of derivatives rounds.
    close_factor : float, default 0.5
        Lending: share of the debt one liquidation repays.
    full_close_below_hf : float, default 0.95
        Lending: below this health factor the whole debt may be repaid.
    full_close_below_usd : float, default 0.0
        Lending: with collateral or debt value below this, the whole debt may be repaid.
    bonus : float, default 0.0
        Lending: liquidation bonus on the seized collateral.
    protocol_share : float, default 0.0
        Lending: share of the bonus paid to the fund.
    funding_interval : int, default 0
        Funding every ``funding_interval`` steps, at the steps that are multiples of it
        (0 = no funding). Derivatives venues only.
    funding_rate : float, default 0.0
        Funding rate ``phi`` per interval (longs pay shorts when the rate is positive).
    funding_premium : bool, default False
        Premium funding: ``rate[a] = min(max(phi + (M[a] / exo[t, a] - 1), -c), c)``;
        otherwise constant, ``rate[a] = phi``.
    funding_cap : float, default 0.0
        Cap ``c`` of the premium rate.
    call_ratio : float, default 0.0
        Margin-call ratio ``kappa``: an armed live unit with ``MM <= E < kappa * MM`` is
        called (0 = no margin calls, else > 1). Derivatives venues only.
    call_prob : float, default 0.0
        Answer probability ``pi``: a called unit answers when its draw is below it.
    call_delay : int, default 1
        Steps ``d >= 1`` between a call and its answer.
    call_action : {"top_up", "reduce"}, default "top_up"
        How a called unit answers: a deposit from its reserve, or a cut of every position.
    call_target : float, default 2.0
        Target ratio ``tau`` (>= ``kappa``) the answer aims for.
    reserve : array_like of float, shape (U,), optional
        USD each unit may deposit when it answers (zeros if None).
    rng_key : int, default 0
        Key of the answer draws (see :func:`draw`).
    pos_kind : array_like of int, shape (P,), optional
        Kind of each position: ``0`` linear (``qty`` in coins, PnL in USD) or ``1``
        inverse (``qty`` in USD contracts, entry in USD per coin, PnL paid in the coin);
        all linear when None. Derivatives venues only.
    bridge : array_like of float, shape (n_paths, steps + 1, A, 2), optional
        Intrastep extremes (``docs/engine.md``, "Between the steps"): the lowest and the
        highest exogenous price of each asset inside each step; before each step's close
        the marks sweep the lows and then the highs (the highs first on a step whose log
        returns sum to less than 0), each sweep a cascade of its own.
    breaker_band : float, default 0.0
        Circuit breaker (``docs/engine.md``, "Circuit breaker"): a step whose marks move
        more than this fraction from the previous close pauses (0 = no breaker; not with
        ``bridge``).
    breaker_steps : int, default 5
        Steps ``K >= 1`` a trip pauses, its own included.
    breaker_halts : {"liquidations", "trading"}, default "liquidations"
        What a pause stops: margin calls and liquidation rounds, or also the marks (they
        stay at the last close), funding and answers to margin calls.
    vault_disposal : {"instant", "gradual"}, default "instant"
        What the backstop vault does with what it takes over (``docs/engine.md``, "The
        backstop vault's inventory"): closed at the mark, or held and sold through the
        market at the start of each later step.
    vault_disposal_share, vault_depth_share : float
        Gradual disposal: per step and asset the vault sells ``min(vault_disposal_share x
        base, vault_depth_share x depth / M, |inventory|)``.
    index : array_like of float, shape (n_paths, steps + 1, A), optional
        The oracle's index (``docs/engine.md``, "Oracle, index and mark"); None: the
        exogenous price.
    price_rule : sequence of str, optional
        Per asset the price it is valued at: ``book``, ``index`` or ``median``; None: every
        asset at the venue's book.
    ema_weight : float, default 0.0
        Weight of a step's close in the EMA of the basis book - index (``median``).
    oracle_rule : tuple of float, optional
        ``(heartbeat_steps, deviation, lag_steps)``: the oracle reads the venue's book (a
        lending venue's) and publishes at each step's start (``index`` is then not used).
    oracle_noise : array_like of float, shape (n_paths, steps + 1, A), optional
        The noise factors of that oracle's readings.

    Returns
    -------
    paths : list of dict
        One record per path: ``n_liquidations``, ``liquidated_notional``,
        ``max_cascade_rounds``, ``bad_debt``, ``insurance_fund_end``, ``adl_notional``,
        ``socialised_loss``, ``fees``, ``fund_depleted``, ``first_liquidation_step``,
        ``min_price`` and ``final_price`` (lists of A floats), and the vault's
        ``vault_pnl``, ``vault_drawdown``, ``vault_inventory_end_usd``, ``vault_takeovers``.
    events : list of dict
        Events in the order produced, path after path: ``path``, ``step``, ``round``,
        ``account``, ``kind`` (``liquidation``, ``adl``, ``backstop``, ``socialised``,
        ``top_up``, ``reduce``; the last two, answers to margin calls, have round 0),
        ``instrument`` (``perp``, ``inverse``, ``collateral``, ``debt``), ``asset``
        (``-1``: USD),
        ``qty``, ``mark_price``, ``exec_price``, ``notional``, ``fee``, ``bad_debt``,
        ``fund_paid``.
    accounts : dict
        ``liquidated`` and ``bankrupt`` (``[path][account]`` bools) and ``pnl``
        (``[path][account]`` floats: final NAV minus initial NAV minus top-ups).

    Raises
    ------
    ValueError
        On an unknown mode, ranking or call action, inconsistent ``partial`` / ``mode``,
        bracket tables that break the specification, (lending) a position that is not a
        debt, position kinds other than 0 / 1 (or an inverse position on a lending venue,
        or with an entry price that is not positive), or behaviour parameters outside
        their ranges.
    """
    exo_l = floats3(exo)
    depth_l = floats2(depth)
    haircut_l = floats1(haircut)
    unit_account_l = ints1(unit_account)
    unit_usd_l = floats1(unit_usd)
    unit_coll_l = floats2(unit_coll)
    pos_unit_l = ints1(pos_unit)
    pos_asset_l = ints1(pos_asset)
    pos_qty_l = floats1(pos_qty)
    pos_entry_l = floats1(pos_entry)
    pos_kind_l = [LINEAR] * len(pos_qty_l) if pos_kind is None else ints1(pos_kind)
    n_assets = len(haircut_l)

    if mode is None:
        mode = "partial" if partial else "full"
    elif partial and mode != "partial":
        raise ValueError(f"partial=True contradicts mode={mode!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if adl_ranking not in ADL_RANKINGS:
        raise ValueError(f"adl_ranking must be one of {ADL_RANKINGS}, got {adl_ranking!r}")

    if brackets is None:
        mmr_l = floats1(mmr)
        cap_l = [[math.inf] for _ in range(n_assets)]
        rate_l = [[mmr_l[a]] for a in range(n_assets)]
        cum_l = [[0.0] for _ in range(n_assets)]
    else:
        cap_l, rate_l, cum_l = (floats2(table) for table in brackets)
    if not (len(cap_l) == len(rate_l) == len(cum_l) == n_assets):
        raise ValueError("the bracket tables need one row per asset")
    check_brackets(cap_l, rate_l, cum_l)

    if len(pos_kind_l) != len(pos_qty_l):
        raise ValueError("pos_kind needs one value per position")
    for p, kind in enumerate(pos_kind_l):
        if kind not in (LINEAR, INVERSE, CALL, PUT):
            raise ValueError(f"position {p}: kind must be 0 (linear), 1 (inverse), 2 (call) "
                             f"or 3 (put), got {kind}")
        if kind in (CALL, PUT) and options is None:
            raise ValueError(f"position {p} is an option: pass options=NaiveOptions(...)")
        if kind == INVERSE and lending:
            raise ValueError(f"lending venue: position {p} cannot be inverse")
        if kind == INVERSE and not pos_entry_l[p] > 0.0:
            raise ValueError(f"inverse position {p} needs a positive entry price")
    if lending:
        for p in range(len(pos_qty_l)):
            if not (pos_qty_l[p] <= 0.0 and pos_entry_l[p] == 0.0):
                raise ValueError(
                    f"lending venue: position {p} must be a debt (qty <= 0, entry = 0)"
                )

    if price_rule is not None and (len(price_rule) != n_assets
                                   or any(r not in PRICE_RULES for r in price_rule)):
        raise ValueError(f"price_rule needs one of {PRICE_RULES} per asset")
    reserve_l = [0.0] * len(unit_usd_l) if reserve is None else floats1(reserve)
    if len(reserve_l) != len(unit_usd_l):
        raise ValueError("reserve needs one value per unit")
    if breaker_halts not in BREAKER_HALTS:
        raise ValueError(f"breaker_halts must be one of {BREAKER_HALTS}, got {breaker_halts!r}")
    if breaker_band > 0.0 and (int(breaker_steps) < 1 or bridge is not None):
        raise ValueError("a circuit breaker needs breaker_steps >= 1 and no bridge")
    if call_action not in CALL_ACTIONS:
        raise ValueError(f"call_action must be one of {CALL_ACTIONS}, got {call_action!r}")
    if int(funding_interval) < 0:
        raise ValueError(f"funding_interval must be >= 0, got {funding_interval!r}")
    if call_ratio != 0.0:
        if not call_ratio > 1.0:
            raise ValueError(f"call_ratio must be 0 or above 1, got {call_ratio!r}")
        if int(call_delay) < 1:
            raise ValueError(f"call_delay must be >= 1, got {call_delay!r}")
        if not call_target >= call_ratio:
            raise ValueError(f"call_target {call_target!r} is below call_ratio {call_ratio!r}")
    # Funding and margin calls apply on derivatives venues only.
    behaviour = Behaviour(
        funding_interval=0 if lending else int(funding_interval),
        funding_rate=float(funding_rate),
        funding_premium=bool(funding_premium),
        funding_cap=float(funding_cap),
        call_ratio=0.0 if lending else float(call_ratio),
        call_prob=float(call_prob),
        call_delay=int(call_delay),
        call_action=call_action,
        call_target=float(call_target),
        reserve=reserve_l,
        rng_key=int(rng_key),
    )

    venue = Venue(
        lending=bool(lending),
        mode=mode,
        fee_rate=float(fee_rate),
        target=float(target),
        step_fraction=float(step_fraction),
        step_min_usd=float(step_min_usd),
        step_max_usd=float(step_max_usd),
        full_below_usd=float(full_below_usd),
        backstop_ratio=float(backstop_ratio),
        fund0=float(fund0),
        adl=bool(adl),
        adl_ranking=adl_ranking,
        max_rounds=int(max_rounds),
        alpha=float(alpha),
        decay=float(decay),
        close_factor=float(close_factor),
        full_close_below_hf=float(full_close_below_hf),
        full_close_below_usd=float(full_close_below_usd),
        bonus=float(bonus),
        protocol_share=float(protocol_share),
        adl_cap=float(adl_max_notional_per_step_usd),
        breaker_band=float(breaker_band),
        breaker_steps=int(breaker_steps),
        breaker_halts=breaker_halts,
        vault_disposal=vault_disposal,
        vault_disposal_share=float(vault_disposal_share),
        vault_depth_share=float(vault_depth_share),
    )
    if vault_disposal not in ("instant", "gradual"):
        raise ValueError(f"vault_disposal must be instant or gradual, got {vault_disposal!r}")

    paths: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    liquidated: list[list[bool]] = []
    bankrupt: list[list[bool]] = []
    pnl: list[list[float]] = []
    for path_index, path_exo in enumerate(exo_l):
        book = Book(
            haircut_l,
            cap_l,
            rate_l,
            cum_l,
            unit_usd_l,
            unit_coll_l,
            pos_unit_l,
            pos_asset_l,
            pos_qty_l,
            pos_entry_l,
            pos_kind_l,
            options,
        )
        run = PathRun(
            path_index,
            path_exo,
            depth_l,
            book,
            unit_account_l,
            int(n_accounts),
            venue,
            events,
            behaviour,
            None if bridge is None else [[[float(x) for x in pair] for pair in row]
                                         for row in bridge[path_index]],
            None if index is None else floats2(index[path_index]),
            None if price_rule is None else [str(r) for r in price_rule],
            float(ema_weight),
            None if oracle_rule is None else tuple(float(x) for x in oracle_rule),
            None if oracle_noise is None else floats2(oracle_noise[path_index]),
        )
        record, acc_liq, acc_bank, acc_pnl = run.run()
        paths.append(record)
        liquidated.append(acc_liq)
        bankrupt.append(acc_bank)
        pnl.append(acc_pnl)

    accounts = {"liquidated": liquidated, "bankrupt": bankrupt, "pnl": pnl}
    return paths, events, accounts
