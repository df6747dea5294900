"""Integer codes shared by the margin kernels and the Python layer (usable inside Numba).

Changing a value here requires clearing the Numba cache (``NUMBA_CACHE_DIR``): kernels
bake these constants in when they compile.
"""

# event kinds and instruments
KIND_LIQUIDATION = 0
KIND_ADL = 1
KIND_NAMES = ("liquidation", "adl")
INSTRUMENT_PERP = 0
INSTRUMENT_COLLATERAL = 1
INSTRUMENT_NAMES = ("perp", "collateral")

# columns of the integer event buffer
EI_PATH, EI_STEP, EI_ROUND, EI_UNIT, EI_KIND, EI_INSTRUMENT, EI_ASSET = range(7)
N_EI = 7
# columns of the float event buffer
EF_QTY, EF_MARK, EF_EXEC, EF_NOTIONAL, EF_FEE, EF_BAD_DEBT = range(6)
N_EF = 6

# columns of the per-path float record
PF_LIQUIDATED_NOTIONAL, PF_BAD_DEBT, PF_FUND_END, PF_ADL_NOTIONAL, PF_SOCIALISED, PF_FEES = range(6)
N_PF = 6
# columns of the per-path integer record
PI_N_LIQUIDATIONS, PI_MAX_ROUNDS, PI_FIRST_STEP, PI_DEPLETED, PI_N_ADL = range(5)
N_PI = 5

# bits of the per-unit flags inside the replay kernel
FLAG_LIQUIDATED = 1
FLAG_BANKRUPT = 2
FLAG_DIRTY = 4      # in this round's list of units to check exactly
FLAG_TOUCHED = 8    # band or state changed on this path: restore at the end of the path
FLAG_CHANGED = 16   # state changed on this path: its account PnL needs a correction
FLAG_PENDING = 32   # to check exactly at the next round

# overflow codes returned by the replay kernel
OVERFLOW_EVENTS = 1
OVERFLOW_CORRECTIONS = 2

# float parameters
FP_FEE_RATE, FP_TARGET, FP_FUND0, FP_ALPHA, FP_DECAY = range(5)
N_FP = 5
# integer parameters
IP_PARTIAL, IP_ADL, IP_MAX_ROUNDS, IP_FULL_SCAN = range(4)
N_IP = 4
