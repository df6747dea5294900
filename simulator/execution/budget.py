"""Refusing the impossible up front: the memory and disk a run needs, against what there is.

A scenario can ask for more than any machine has: ``simulation.steps = 1000000`` makes
one chunk of 4,096 paths a 31 GiB price array per asset, ``population.count = 10000000``
a book of several GiB in every worker, ``--paths 1000000000000`` terabytes of ``paths/``.
Left alone, such a run starts, writes a run directory and dies out of memory (or fills
the disk) minutes later. :func:`check_resources` (for ``run``) and :func:`check_book`
(for ``validate``) compare estimates made from the scenario alone, before anything is
allocated, with the memory and disk there are, and refuse with one line that names the
figures and the keys to change.

The estimates count the main arrays, not every temporary: they are meant to refuse what
cannot fit, not to promise that what passes will. The chunk figures follow the code
(``runner.run_chunk``, ``paths.generate_paths``, ``margin.engine.replay`` and its kernel,
``aggregate.chunk_partial``); the book figures were measured (see
:data:`BOOK_BYTES_PER_ACCOUNT`); the disk figure is a lower bound.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from simulator.config.limits import MAX_CHUNKS
from simulator.config.scenario import Scenario
from simulator.errors import MarginsimError
from simulator.margin import codes
from simulator.paths.oracle import BLOCK_PATHS as ORACLE_BLOCK_PATHS
from simulator.paths.oracle import oracle_args
from simulator.results import risk
from simulator.results.accounts import PNL_BLOCK_BYTES

__all__ = ["MAX_CHUNKS", "available_memory_bytes", "book_memory_bytes", "check_book",
           "check_resources", "chunk_memory_bytes", "run_disk_bytes"]

# --------------------------------------------------------------------------- figures

#: Memory of the book, its index and the account NAV coefficients, in bytes: per account,
#: per position, per margin unit and per unit and asset. Measured with ``tracemalloc``
#: (which sees NumPy's allocations and Python objects such as the account ids): the peak
#: while ``ChunkContext.build`` runs (book, path inputs, rules, ``BookIndex``), on
#: synthetic populations of 100,000 and 300,000 accounts (the same per account), after a
#: warm-up build; Python 3.11, NumPy 2, Linux x86-64. Peaks per account: 444 bytes at 2
#: assets with one position and one (cross) unit each, 730 at 8 assets; 517 with 1.5
#: positions per account, 631 with 1.5 positions and 1.5 (isolated) units. The fit
#: ``70 + 150 P + (130 + 48 A) U`` per account (P positions, U units, A assets) gives 446,
#: 734, 521 and 635. ``validate`` (``build_book`` and ``prepare_path_inputs``) peaked at
#: 390 bytes per account at 2 assets, so the same figures serve it with a margin.
BOOK_BYTES_PER_ACCOUNT = 70
#: see :data:`BOOK_BYTES_PER_ACCOUNT`
BOOK_BYTES_PER_POSITION = 150
#: see :data:`BOOK_BYTES_PER_ACCOUNT`
BOOK_BYTES_PER_UNIT = 130
#: see :data:`BOOK_BYTES_PER_ACCOUNT`
BOOK_BYTES_PER_UNIT_ASSET = 48

#: The replay kernel's working arrays (``margin/_kernels.py``, allocated at every chunk):
#: per unit 10 float64 and 14 int64 arrays and 2 of bytes (242 bytes), per unit and
#: asset the collateral and slack copies (16) and the 2 A + 1 heaps of 3 arrays of 2 U
#: entries (96); per position 5 arrays (40); per account 2 stamps and 2 counts (32).
ENGINE_BYTES_PER_UNIT = 242
#: see :data:`ENGINE_BYTES_PER_UNIT`
ENGINE_BYTES_PER_UNIT_ASSET = 112
#: see :data:`ENGINE_BYTES_PER_UNIT`
ENGINE_BYTES_PER_POSITION = 40
#: see :data:`ENGINE_BYTES_PER_UNIT`
ENGINE_BYTES_PER_ACCOUNT = 32
#: the first event and correction buffers of ``replay`` (4,096 rows of 7 + 7 + 2 + 1 words,
#: and the 2 of the per-fill ADL record)
ENGINE_FIXED_BYTES = 4096 * (codes.N_EI + codes.N_EF + codes.N_EA + 3) * 8

#: ``SeedSequence(seed).spawn(n)`` and the chunk plan, per chunk (430 MiB for a million
#: chunks, measured with the process's peak RSS)
PLAN_BYTES_PER_CHUNK = 450

#: Compressed bytes per price value in ``paths/`` (``min_price_*``, ``final_price_*``) and
#: ``prices/``: random doubles do not compress much (measured: ``paths/`` of
#: two-asset-crash takes 82 bytes a row, 18 columns; ``prices/`` 18.6 bytes a row of two
#: prices); half of 8 bytes makes the total a lower bound. Other columns count nothing.
DISK_BYTES_PER_PRICE = 4

_RANDOM_MODELS = ("merton", "bootstrap")  # random even when every vol is 0


# --------------------------------------------------------------------------- machine


def _meminfo_available(text: str) -> int | None:
    """``MemAvailable`` of a ``/proc/meminfo`` text, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return int(fields[1]) * (1024 if fields[-1].lower() == "kb" else 1)
    return None


def _read_int(path: Path) -> int | None:
    """An integer file of the cgroup tree (None when absent, ``max`` or unreadable)."""
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _inactive_file(path: Path) -> int:
    """Reclaimable page cache of a cgroup (``inactive_file`` of its ``memory.stat``)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, ValueError):
        return 0
    values = dict(line.split(maxsplit=1) for line in lines if " " in line)
    value = values.get("total_inactive_file", values.get("inactive_file", "0")).strip()
    return int(value) if value.isdigit() else 0


def _cgroup_available(root: Path = Path("/sys/fs/cgroup"),
                      self_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """Memory left under the tightest cgroup limit of this process, in bytes.

    cgroup v2 (``memory.max``, ``memory.current``) and v1 (``memory/memory.limit_in_bytes``,
    ``memory.usage_in_bytes``), at the root of the tree (inside a container, the
    container's) and at this process's own cgroup: the limit less the usage, plus the
    reclaimable page cache. None when no limit is set.
    """
    folders = [(root, "memory.max", "memory.current"),
               (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes")]
    try:
        lines = self_cgroup.read_text().splitlines()
    except (OSError, ValueError):
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2].startswith("/") and parts[2] != "/":
            if parts[0] == "0" and parts[1] == "":
                folders.append((root / parts[2].lstrip("/"), "memory.max", "memory.current"))
            elif "memory" in parts[1].split(","):
                folders.append((root / "memory" / parts[2].lstrip("/"),
                                "memory.limit_in_bytes", "memory.usage_in_bytes"))
    best = None
    for folder, limit_name, usage_name in folders:
        limit = _read_int(folder / limit_name)
        if limit is None or limit >= 1 << 60:  # unlimited ("max", or v1's page-rounded 2**63)
            continue
        usage = _read_int(folder / usage_name)
        left = limit if usage is None else max(
            0, limit - usage + _inactive_file(folder / "memory.stat"))
        best = left if best is None else min(best, left)
    return best


def available_memory_bytes() -> int:
    """Memory a run can use now, in bytes.

    ``MemAvailable`` of ``/proc/meminfo`` on Linux, else the physical memory
    (``os.sysconf``); the smaller of that and what a cgroup memory limit leaves
    (``/sys/fs/cgroup/memory.max`` and the v1 equivalent), when one is set.

    Returns
    -------
    int
    """
    try:
        avail = _meminfo_available(Path("/proc/meminfo").read_text())
    except (OSError, ValueError):
        avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            avail = 1 << 62  # unknown: refuse nothing
    limit = _cgroup_available()
    return avail if limit is None else min(avail, limit)


def _free_disk_bytes(out_dir: Path) -> int | None:
    """Free bytes on the filesystem of ``out_dir`` (its nearest existing parent)."""
    folder = Path(os.path.abspath(out_dir))
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- estimates


def _book_counts(scenario: Scenario) -> tuple[int, int, int]:
    """Accounts, margin units and positions of the book (the population's expected)."""
    n_acc = n_units = n_pos = 0
    for account in scenario.all_accounts:
        positions = len(account.positions) + sum(
            1 for symbol, amount in account.debt if symbol != "USD" and amount > 0)
        n_acc += 1
        n_pos += positions
        n_units += positions if account.margin_mode == "isolated" and positions else 1
    pop = scenario.population
    if pop is not None and pop.count > 0:
        per_account = (1 + pop.max_positions) / 2  # uniform on 1 .. max_positions
        isolated = dict(pop.margin_modes).get("isolated", 0.0)
        extra = pop.options.share if pop.options is not None else 0.0
        n_acc += pop.count
        n_pos += math.ceil(pop.count * (per_account + extra))
        n_units += math.ceil(pop.count * (1.0 - isolated + isolated * per_account))
    return n_acc, n_units, n_pos


def book_memory_bytes(scenario: Scenario) -> int:
    """Estimated peak memory of building the book and its engine index, in bytes.

    From the number of accounts, margin units and positions (explicit accounts and
    accounts-file rows exactly, the population's expected numbers) and the measured
    figures of :data:`BOOK_BYTES_PER_ACCOUNT`; nothing is built.

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    int
    """
    n_acc, n_units, n_pos = _book_counts(scenario)
    n_assets = len(scenario.market.assets)
    return (n_acc * BOOK_BYTES_PER_ACCOUNT + n_pos * BOOK_BYTES_PER_POSITION
            + n_units * (BOOK_BYTES_PER_UNIT + BOOK_BYTES_PER_UNIT_ASSET * n_assets))


def _inputs_bytes(scenario: Scenario) -> int:
    """The path inputs (``prepare_path_inputs``) and the rules' implied-vol multipliers:
    per step a Cholesky factor (A x A), about 8 arrays of A and a list entry."""
    steps, n_assets = scenario.simulation.steps, len(scenario.market.assets)
    return (steps + 1) * (n_assets * n_assets + 8 * n_assets + 1) * 8


def _is_random(scenario: Scenario) -> bool:
    """Whether the paths differ (with every vol 0 and no jumps or bootstrap they do not)."""
    market = scenario.market
    return market.model in _RANDOM_MODELS or any(a.vol > 0 for a in market.assets)


def _chunk_parts(scenario: Scenario, save_prices: int) -> tuple[int, int, int]:
    """One chunk's memory in three parts: what grows with its paths and steps, with the
    saved prices, and with the book (the replay kernel's working arrays)."""
    sim = scenario.simulation
    n = min(sim.chunk_paths, sim.paths)
    steps, n_assets = sim.steps, len(scenario.market.assets)
    n_acc, n_units, n_pos = _book_counts(scenario)
    exo = n * (steps + 1) * n_assets * 8
    if sim.intrastep == "bridge":  # the intrastep extremes: a low and a high per price
        exo *= 3
    oracle = oracle_args(scenario)
    if oracle is not None:  # the oracle's index, and a block of its sources' readings
        exo += n * (steps + 1) * n_assets * 8
        if oracle["noise"] > 0.0:
            exo += 3 * min(n, ORACLE_BLOCK_PATHS) * steps * n_assets * oracle["sources"] * 8
            if oracle["reads_book"]:  # the readings' noise factors, kept for the replay
                exo += n * (steps + 1) * n_assets * 8
    draws = n * steps if scenario.market.model == "regime" else steps * (2 * n_assets + 1) * 8
    per_path = n * ((codes.N_PF + codes.N_PI) * 8 + 2 * n_assets * 8  # results
                    + (20 + 2 * n_assets) * 8)  # the paths/ table
    block = min(n_acc * n * 8, max(PNL_BLOCK_BYTES, n * 8))  # account PnL, and a copy
    keep = risk.tail_size(sim.paths, min(sim.risk_levels))
    exact = keep * n_acc * 8 <= sim.account_tail_budget_mb * (1 << 20)
    tail = n_acc * min(keep, n) * 8 if exact else 0
    n_save = min(max(save_prices, 0), n)
    saved = n_save * (steps + 1) * (32 + 32 * n_assets)  # marks, exo copy, 2 tables
    engine = (n_units * (ENGINE_BYTES_PER_UNIT + ENGINE_BYTES_PER_UNIT_ASSET * n_assets)
              + n_pos * ENGINE_BYTES_PER_POSITION + n_acc * ENGINE_BYTES_PER_ACCOUNT
              + ENGINE_FIXED_BYTES)
    return exo + draws + per_path + 2 * block + tail, saved, engine


def chunk_memory_bytes(scenario: Scenario, save_prices: int = 0) -> int:
    """Estimated peak memory of one chunk, in bytes (at least its main arrays).

    The exogenous prices (``chunk_paths x (steps + 1) x assets`` float64, three times
    that with ``simulation.intrastep = "bridge"``: each price's intrastep low and high; one
    more with an oracle's index, and a block of its sources' readings) and the
    per-step draws of the models that keep them; the per-path results and the
    ``paths/`` table; with ``save_prices``, the saved marks, their exogenous copy and the
    ``prices/`` table; the replay kernel's working arrays over the book
    (:data:`ENGINE_BYTES_PER_UNIT`) and its first event buffers; the account PnL blocks
    and loss tails of the per-account aggregates. Events beyond the first buffers are
    not counted (how many there are is known only after the run).

    Parameters
    ----------
    scenario : Scenario
    save_prices : int
        ``--save-prices``: how many of the first paths keep their prices.

    Returns
    -------
    int
    """
    return sum(_chunk_parts(scenario, save_prices))


def run_disk_bytes(scenario: Scenario, save_prices: int = 0) -> int:
    """A lower bound of the run directory's size, in bytes.

    ``paths/``: its ``2 x assets`` price columns at :data:`DISK_BYTES_PER_PRICE` per
    value; ``prices/`` and ``prices_no_impact/`` with ``save_prices``: one price per
    asset, step and saved path each. Nothing when the paths are all the same (they
    compress to nearly nothing). ``events/``, ``chunks/`` and the rest are not counted.

    Parameters
    ----------
    scenario : Scenario
    save_prices : int

    Returns
    -------
    int
    """
    if not _is_random(scenario):
        return 0
    sim = scenario.simulation
    n_assets = len(scenario.market.assets)
    paths = sim.paths * 2 * n_assets * DISK_BYTES_PER_PRICE
    n_save = min(max(save_prices, 0), sim.paths)
    prices = 2 * n_save * (sim.steps + 1) * n_assets * DISK_BYTES_PER_PRICE
    return paths + prices


# --------------------------------------------------------------------------- checks


def fmt_bytes(n: int | float) -> str:
    """``n`` bytes for a message, to 3 figures: ``512 KiB``, ``30.5 GiB``, ``2.00 GiB``,
    ``1,024 GiB``, ``3.40 PiB``."""
    try:
        value = float(n)
    except OverflowError:
        return "more than 1e308 bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(value) < 1024 or unit == "EiB":
            break
        value /= 1024
    if unit == "bytes":
        return f"{int(value):,} bytes"
    if value >= 1e6:
        return f"{value:.3g} {unit}"
    return f"{value:,.0f} {unit}" if value >= 99.95 else f"{value:#.3g} {unit}"


def _workers(jobs: int, n_chunks: int) -> int:
    """Worker processes of the loky backend (as ``backends.dispatch`` chooses them)."""
    wanted = jobs if jobs > 0 else (os.cpu_count() or 1)
    return max(1, min(wanted, n_chunks))


def _accounts_phrase(scenario: Scenario, n_acc: int) -> tuple[str, str]:
    """How the book's size is described, and the key that changes it."""
    pop = scenario.population
    if pop is not None and pop.count * 2 >= n_acc:
        return f"population.count = {pop.count:,}", "lower population.count"
    if scenario.accounts_file is not None and scenario.accounts_file.accounts:
        return (f"{n_acc:,} accounts (accounts_file.path = {scenario.accounts_file.path!r})",
                "use fewer accounts")
    return f"{n_acc:,} accounts", "use fewer accounts"


def check_book(scenario: Scenario) -> None:
    """Refuse a book that cannot be built in the memory there is, before building it.

    For ``validate``: the estimate of :func:`book_memory_bytes` and the path inputs
    against :func:`available_memory_bytes`.

    Parameters
    ----------
    scenario : Scenario

    Raises
    ------
    MarginsimError
        One line with the figures and the key to change (``population.count``).
    """
    need = book_memory_bytes(scenario) + _inputs_bytes(scenario)
    avail = available_memory_bytes()
    if need > avail:
        n_acc = _book_counts(scenario)[0]
        what, fix = _accounts_phrase(scenario, n_acc)
        raise MarginsimError(f"{scenario.source}: {what}: building the book of {n_acc:,} "
                             f"accounts needs about {fmt_bytes(need)}; {fmt_bytes(avail)} "
                             f"available: {fix}")


def check_resources(scenario: Scenario, *, jobs: int, save_prices: int, out_dir: Path) -> None:
    """Refuse a run that cannot fit the memory or the disk there is, before it starts.

    Memory: one chunk (:func:`chunk_memory_bytes`) per worker, the book, its index and
    the path inputs in every process that holds them (this one, and each worker when
    ``jobs`` > 1), and the chunk plan. Disk: :func:`run_disk_bytes` against the free space
    at ``out_dir`` (its nearest existing parent).

    Parameters
    ----------
    scenario : Scenario
    jobs : int
        Local worker processes (``--jobs``; -1 = every core). For a cluster backend pass
        1: only this machine's share is checked.
    save_prices : int
        ``--save-prices``.
    out_dir : Path
        The run directory (it need not exist yet).

    Raises
    ------
    MarginsimError
        One line naming the scenario file, the figures (MiB / GiB) and the keys to change
        (``simulation.chunk_paths``, ``simulation.steps``, ``--jobs``, ``population.count``,
        ``--save-prices``, ``simulation.paths``).
    """
    sim = scenario.simulation
    n_chunks = -(-sim.paths // sim.chunk_paths)
    if n_chunks > MAX_CHUNKS:  # (the loader refuses it; a scenario built otherwise may not)
        raise MarginsimError(f"{scenario.source}: simulation.paths = {sim.paths:,} in chunks "
                             f"of simulation.chunk_paths = {sim.chunk_paths:,} make "
                             f"{n_chunks:,} chunks; at most {MAX_CHUNKS:,}: lower "
                             "simulation.paths or raise simulation.chunk_paths")
    workers = _workers(jobs, n_chunks)
    processes = 1 if workers == 1 else workers + 1
    paths_part, saved_part, engine_part = _chunk_parts(scenario, save_prices)
    chunk = paths_part + saved_part + engine_part
    context = book_memory_bytes(scenario) + _inputs_bytes(scenario)
    need = workers * chunk + processes * context + n_chunks * PLAN_BYTES_PER_CHUNK
    avail = available_memory_bytes()
    if need > avail:
        if processes * context + workers * engine_part > workers * (paths_part + saved_part):
            text = _book_message(scenario, workers, processes, context, engine_part)
        else:
            text = _chunk_message(scenario, save_prices, workers, chunk, saved_part)
        raise MarginsimError(f"{scenario.source}: {text}; {fmt_bytes(avail)} available: "
                             f"{_fixes(text, workers)}")
    _check_disk(scenario, save_prices, Path(out_dir))


def _check_disk(scenario: Scenario, save_prices: int, out_dir: Path) -> None:
    """Refuse a run whose lower bound of disk use exceeds the free space at ``out_dir``."""
    disk = run_disk_bytes(scenario, save_prices)
    free = _free_disk_bytes(out_dir)
    if free is None or disk <= free:
        return
    paths = scenario.simulation.paths
    saved = min(max(save_prices, 0), paths)
    also = (f" and --save-prices {saved:,} ({fmt_bytes(disk - run_disk_bytes(scenario))})"
            if saved else "")
    raise MarginsimError(
        f"{scenario.source}: simulation.paths = {paths:,}{also}: the run writes at least "
        f"{fmt_bytes(disk)}; {fmt_bytes(free)} free at {out_dir}: lower simulation.paths"
        f"{' (or --save-prices)' if saved else ''}, or choose another --out")


def _chunk_message(scenario: Scenario, save_prices: int, workers: int, chunk: int,
                   saved_part: int) -> str:
    """What does not fit when the chunks' paths weigh most."""
    sim = scenario.simulation
    n = min(sim.chunk_paths, sim.paths)
    n_assets = len(scenario.market.assets)
    if 2 * saved_part > chunk:
        lead = f"--save-prices {min(save_prices, n):,}"
    else:
        lead = (f"simulation.chunk_paths = {n:,} paths x simulation.steps = {sim.steps:,} "
                f"x {n_assets} asset{'s' if n_assets > 1 else ''}")
    text = f"{lead}: one chunk needs about {fmt_bytes(chunk)}"
    if workers > 1:
        text += f", {workers} workers {fmt_bytes(workers * chunk)}"
    return text


def _book_message(scenario: Scenario, workers: int, processes: int, context: int,
                  engine_part: int) -> str:
    """What does not fit when the book weighs most."""
    n_acc = _book_counts(scenario)[0]
    what, _ = _accounts_phrase(scenario, n_acc)
    text = f"{what}: the book of {n_acc:,} accounts and its index need about {fmt_bytes(context)}"
    if processes > 1:
        text += (f" in each of {processes} processes (the run and {workers} workers), "
                 f"{fmt_bytes(processes * context)}, and the engine's working arrays "
                 f"{fmt_bytes(engine_part)} per worker")
    else:
        text += f", and the engine's working arrays {fmt_bytes(engine_part)}"
    return text


def _fixes(text: str, workers: int) -> str:
    """The keys to change, for a message that starts as ``text``."""
    jobs = ", or --jobs" if workers > 1 else ""
    if text.startswith("--save-prices"):
        return f"lower --save-prices (or simulation.chunk_paths{jobs})"
    if text.startswith("simulation.chunk_paths"):
        return f"lower simulation.chunk_paths (or simulation.steps{jobs})"
    fix = "lower population.count" if text.startswith("population.count") else \
        "use fewer accounts"
    return f"{fix} (or --jobs)" if workers > 1 else fix
