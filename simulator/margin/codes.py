"""Integer codes shared by the margin kernels and the Python layer (usable inside Numba).

Changing a value here requires clearing the Numba cache (``NUMBA_CACHE_DIR``): kernels
bake these constants in when they compile.
"""

# event kinds and instruments
KIND_LIQUIDATION = 0
KIND_ADL = 1
KIND_BACKSTOP = 2      # taken over by a backstop vault at the mark
KIND_SOCIALISED = 3    # uncovered loss spread over the venue
KIND_TOP_UP = 4        # an account's answer to a margin call: a deposit
KIND_REDUCE = 5        # an account's answer to a margin call: it cuts its positions
KIND_VAULT_SALE = 6    # the backstop vault sells inventory it took over ("gradual" disposal)
KIND_NAMES = ("liquidation", "adl", "backstop", "socialised", "top_up", "reduce", "vault_sale")
INSTRUMENT_PERP = 0
INSTRUMENT_COLLATERAL = 1
INSTRUMENT_DEBT = 2    # a lending venue's debt (asset -1: USD)
INSTRUMENT_INVERSE = 3  # an inverse (coin-margined) perpetual: qty in USD contracts
INSTRUMENT_CALL = 4    # a European call: qty in options on one coin
INSTRUMENT_PUT = 5     # a European put
INSTRUMENT_NAMES = ("perp", "collateral", "debt", "inverse", "call", "put")

# position kinds (``pos_kind``); the instrument code of a position is ``POS_INSTRUMENT[kind]``
POS_LINEAR = 0         # qty in coins, PnL qty * (M - entry) in USD
POS_INVERSE = 1        # qty in USD contracts, PnL qty * (1/entry - 1/M) in the coin
POS_CALL = 2           # qty options, value qty * BS call(M, strike = pos_entry, ...)
POS_PUT = 3            # qty options, value qty * BS put
POS_KIND_NAMES = ("perp", "inverse", "call", "put")
N_POS_KINDS = len(POS_KIND_NAMES)
POS_INSTRUMENT = (INSTRUMENT_PERP, INSTRUMENT_INVERSE, INSTRUMENT_CALL, INSTRUMENT_PUT)

# option rules (``OP_RULE`` of the option parameters)
OPTION_STANDARD, OPTION_RISK_MATRIX = 0, 1
OPTION_RULE_NAMES = ("standard", "risk_matrix")
# option parameters ``opt_par``
(OP_RULE, OP_STEP_YEARS, OP_FEE_RATE, OP_RANGE, OP_N_BUCKETS, OP_VOL_UP, OP_VOL_DOWN,
 OP_EXT_WEIGHT, OP_MAX_WINDOW) = range(9)
N_OP = 9
#: extended moves of the risk matrix, stored in ``opt_par[N_OP:N_OP + N_EXT]``
N_EXT = 8
N_PAR = N_OP + N_EXT
# members of the option tuple ``oc`` (simulator.margin.option_setup.option_context)
OC_POS, OC_ASSET, OC_IVMULT, OC_IVNEXT, OC_UNIT_OPT, OC_PAR = range(6)

# columns of the integer event buffer
EI_PATH, EI_STEP, EI_ROUND, EI_UNIT, EI_KIND, EI_INSTRUMENT, EI_ASSET = range(7)
N_EI = 7
# columns of the float event buffer
EF_QTY, EF_MARK, EF_EXEC, EF_NOTIONAL, EF_FEE, EF_BAD_DEBT, EF_FUND_PAID = range(7)
N_EF = 7

# columns of the per-path float record
PF_LIQUIDATED_NOTIONAL, PF_BAD_DEBT, PF_FUND_END, PF_ADL_NOTIONAL, PF_SOCIALISED, PF_FEES = range(6)
# the backstop vault: its PnL (while the path runs: the equity it kept), largest drawdown
# and inventory left at the final marks (USD)
PF_VAULT_PNL, PF_VAULT_DRAWDOWN, PF_VAULT_INV_END = range(6, 9)
N_PF = 9
# columns of the per-path integer record
(PI_N_LIQUIDATIONS, PI_MAX_ROUNDS, PI_FIRST_STEP, PI_DEPLETED, PI_N_ADL, PI_N_CASCADE,
 PI_PRICE_BOUNDED, PI_BREAKER_TRIPS, PI_BREAKER_PAUSED) = range(9)
PI_VAULT_TAKEOVERS = 9  # units taken over by the backstop vault
N_PI = 10

# bits of the per-unit flags inside the replay kernel
FLAG_LIQUIDATED = 1
FLAG_BANKRUPT = 2
FLAG_DIRTY = 4      # in this round's list of units to check exactly
FLAG_TOUCHED = 8    # band or state changed on this path: restore at the end of the path
FLAG_CHANGED = 16   # state changed on this path: its account PnL needs a correction
FLAG_PENDING = 32   # to check exactly at the next round
FLAG_MOVED = 64     # state changed on this path (FLAG_CHANGED is also set for options)

# overflow codes returned by the replay kernel
OVERFLOW_EVENTS = 1
OVERFLOW_CORRECTIONS = 2

# float parameters
(FP_FEE_RATE, FP_TARGET, FP_FUND0, FP_ALPHA, FP_DECAY, FP_STEP_FRACTION, FP_STEP_MIN,
 FP_STEP_MAX, FP_FULL_BELOW, FP_BACKSTOP, FP_CLOSE_FACTOR, FP_FULL_CLOSE_HF,
 FP_FULL_CLOSE_USD, FP_BONUS, FP_PROTOCOL_SHARE, FP_CALL_PROB, FP_CALL_TARGET, FP_FUNDING_RATE,
 FP_FUNDING_CAP, FP_BREAKER_BAND) = range(20)
# the backstop vault's gradual disposal: share of the inventory taken over sold per step,
# and cap per step and asset as a share of the step's depth in USD
FP_VAULT_SHARE, FP_VAULT_DEPTH_SHARE = 20, 21
#: ADL notional allowed per step across the venue, USD (inf: no cap)
FP_ADL_CAP = 22
N_FP = 23
# integer parameters
(IP_MODE, IP_ADL, IP_MAX_ROUNDS, IP_FULL_SCAN, IP_LENDING, IP_ADL_RANKING, IP_CALL_DELAY,
 IP_CALL_ACTION, IP_FUNDING_INTERVAL, IP_FUNDING_PREMIUM, IP_RNG_KEY, IP_BREAKER_STEPS,
 IP_BREAKER_HALT) = range(13)
N_IP = 13
# margin-call answers (IP_CALL_ACTION)
ACTION_TOP_UP, ACTION_REDUCE = 0, 1
ACTION_NAMES = ("top_up", "reduce")
# liquidation modes (IP_MODE) and ADL rankings (IP_ADL_RANKING)
MODE_FULL, MODE_PARTIAL, MODE_INCREMENTAL = 0, 1, 2
MODE_NAMES = ("full", "partial", "incremental")
# the backstop vault's disposal of what it takes over (``[venue] vault_disposal``)
VAULT_DISPOSALS = ("instant", "gradual")
RANK_PNL_MARGIN_RATIO, RANK_PROFIT_LEVERAGE = 0, 1
# Bybit's PnL percentage x effective leverage; the two shares of the quantity over every
# candidate, in proportion to its size, or to its size times its unit's leverage
RANK_BYBIT, RANK_PRO_RATA, RANK_LEVERAGE_PRO_RATA = 2, 3, 4
RANK_NAMES = ("pnl_margin_ratio", "profit_leverage", "bybit", "pro_rata", "leverage_pro_rata")
# circuit breakers (IP_BREAKER_HALT): what a tripped breaker pauses; the replay's state of
# a step (HALT_NONE: it runs normally)
HALT_LIQUIDATIONS, HALT_TRADING = 1, 2
HALT_NONE = 0
HALT_NAMES = ("", "liquidations", "trading")
# the price an asset is valued at (``RuleArrays.price_rule``; docs/engine.md, "Oracle,
# index and mark"): the venue's book, the oracle's index, or the median of index, book and
# index + the EMA of the basis
PRICE_BOOK, PRICE_INDEX, PRICE_MEDIAN = 0, 1, 2
PRICE_NAMES = ("book", "index", "median")

# columns of the per-asset bracket table ``tiers[a, k, :]``
TIER_CAP, TIER_RATE, TIER_CUM = range(3)

# slots of the replay kernel's counters (``UnitLists.count``, int64[N_COUNT]): rows of the
# event and correction buffers written, units in the touched and pending lists, the
# margin-call queue's head and tail, and the latest later stage of the option boxes started
# (-1: the first), and the step at which the circuit breaker's pause ends (0: none yet)
(CNT_EVENTS, CNT_CORRECTIONS, CNT_TOUCHED, CNT_PENDING, CNT_QUEUE_HEAD, CNT_QUEUE_TAIL,
 CNT_STAGE, CNT_BREAKER_RESUME) = range(8)
N_COUNT = 8
#: rows of the option-box kernels' scratch array (``option_boxes.N_WORK``)
N_BOX_WORK = 14

# columns of the per-fill ADL record ``Outputs.ev_adl`` (rows of the event buffer; written
# for ADL fills only): the ADL'd unit's leverage (notional / equity; NaN when its equity is
# not positive) and its unrealised PnL (equity - wallet), USD, at the marks just before the fill
EA_LEVERAGE, EA_PNL = range(2)
N_EA = 2
#: the per-path ADL figures (``ReplayResult.path_adl``, columns of ``paths/``)
ADL_PATH_COLUMNS = ("adl_covered", "adl_overshoot", "adl_leverage_mean", "adl_leverage_median",
                    "adl_pnl_mean", "adl_in_profit_share")
