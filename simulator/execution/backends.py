"""Where chunks run: local loky processes, a Dask cluster or a Ray cluster, through joblib.

Every backend runs the same chunk function on the same tasks and the runner merges the
results in chunk order, so the files are bit-identical whatever the backend. Kernels are
single-threaded inside a worker: each backend sets ``NUMBA_NUM_THREADS=1`` on its workers
(and passes ``NUMBA_CACHE_DIR`` on, so that workers reuse the compiled kernels).

The cluster backends are optional extras (``marginsim[dask]``, ``marginsim[ray]``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from simulator.errors import MarginsimError

BACKENDS = ("loky", "dask", "ray")
#: Tasks in flight per cluster worker: the driver holds at most one batch of results.
BATCH_PER_WORKER = 2


#: how often a loky worker checks that its driver is alive
WATCH_INTERVAL_SECONDS = 0.2
_watching: list[int] = []


def watch_driver(driver_pid: int) -> None:
    """The loky workers' initializer (see :func:`dispatch`): end this worker as soon as its
    driver ``driver_pid`` is gone, whatever the worker is doing.

    A daemon thread polls the parent's process id every :data:`WATCH_INTERVAL_SECONDS`;
    when the driver dies the worker is re-parented and exits at once (``os._exit``), so a
    killed run leaves no worker computing, writing or waiting. A worker whose driver died
    while it was starting exits here. The engine's and path generators' kernels release
    the GIL, so the thread runs while they compute. In the driver itself it does nothing.
    """
    if _watching or os.getpid() == driver_pid:
        return
    if os.getppid() != driver_pid:
        os._exit(70)  # the driver died before this worker was ready: nothing is wanted
    # Ctrl-C at a terminal reaches every process of the group: the driver handles it (and
    # ends its workers), a worker needs no traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watching.append(driver_pid)

    def watch() -> None:
        while os.getppid() == driver_pid:
            time.sleep(WATCH_INTERVAL_SECONDS)
        os._exit(70)  # the driver is gone: nothing of this worker's is wanted any more

    threading.Thread(target=watch, name="marginsim-watch-driver", daemon=True).start()


def is_dead_worker(exc: BaseException) -> bool:
    """Whether ``exc`` says a worker process died (killed by a signal, for example by the
    system's out-of-memory killer)."""
    from concurrent.futures.process import BrokenProcessPool  # loky's TerminatedWorkerError

    return isinstance(exc, BrokenProcessPool)


def worker_env() -> dict[str, str]:
    """Environment variables every cluster worker gets: one Numba thread, the same cache."""
    env = {"NUMBA_NUM_THREADS": "1"}
    if os.environ.get("NUMBA_CACHE_DIR"):
        env["NUMBA_CACHE_DIR"] = os.environ["NUMBA_CACHE_DIR"]
    return env


def _configure_dask_worker(env: dict[str, str]) -> None:
    """Run on each Dask worker: kernels are single-threaded, the cache is shared."""
    os.environ.update(env)


def check_backend(backend: str) -> None:
    """Refuse a backend name that is not one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise MarginsimError(f"--backend: {backend!r} is not valid; valid: {', '.join(BACKENDS)}")


@contextmanager
def dask_session(scheduler: str | None) -> Iterator[None]:
    """Connect to the Dask scheduler at ``scheduler`` for the duration of the block.

    Parameters
    ----------
    scheduler : str or None
        The scheduler's address (``tcp://HOST:PORT``); required.

    Raises
    ------
    MarginsimError
        When ``distributed`` is not installed, no address is given or it cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise MarginsimError("--backend dask needs the dask extra: pip install "
                             "'marginsim[dask]'") from None
    if not scheduler:
        raise MarginsimError("--backend dask needs --scheduler ADDRESS (e.g. "
                             "tcp://127.0.0.1:8786)")
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise MarginsimError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
    try:
        client.run(_configure_dask_worker, worker_env())
        yield
    finally:
        client.close()


def _check_reachable(address: str, timeout_seconds: float = 5.0) -> None:
    """Refuse a ``HOST:PORT`` (or ``ray://HOST:PORT``) that does not accept a connection.

    Ray itself retries an unreachable address for minutes; this fails in seconds.
    ``auto`` and addresses without a port are left to Ray.
    """
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout_seconds).close()
    except OSError as exc:
        raise MarginsimError(f"--scheduler {address}: cannot connect to Ray: {exc}") from None


@contextmanager
def ray_session(address: str | None, jobs: int) -> Iterator[None]:
    """Join the Ray cluster at ``address``, or start a local one, for the block.

    Parameters
    ----------
    address : str or None
        A Ray address (``HOST:6379``, ``ray://HOST:10001`` or ``auto``). Without one a
        local Ray instance is started with ``jobs`` CPUs (every core when ``jobs < 1``)
        and stopped at the end.
    jobs : int
        CPUs of a local instance.

    Raises
    ------
    MarginsimError
        When ``ray`` is not installed or the cluster cannot be reached.
    """
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise MarginsimError("--backend ray needs the ray extra: pip install "
                             "'marginsim[ray]'") from None
    # joblib's Ray pool warns that it ignores the multiprocessing context: not ours to fix
    logging.getLogger("ray.util.multiprocessing.pool").setLevel(logging.ERROR)
    started = not ray.is_initialized()
    if started and address:
        _check_reachable(address)
    if started:
        options: dict[str, Any] = {"runtime_env": {"env_vars": worker_env()},
                                   "include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING}
        if address:
            options["address"] = address
        else:  # a private instance on the loopback interface, this run's CPUs only
            options["num_cpus"] = jobs if jobs > 0 else (os.cpu_count() or 1)
            options["_node_ip_address"] = "127.0.0.1"
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local instance"
            raise MarginsimError(f"--scheduler {where}: cannot start or join Ray: "
                                 f"{exc}") from None
    register_ray()
    try:
        yield
    finally:
        if started:
            ray.shutdown()


@contextmanager
def session(backend: str, scheduler: str | None, jobs: int) -> Iterator[None]:
    """Hold what ``backend`` needs (a Dask client, a Ray instance) for the block.

    Parameters
    ----------
    backend : {"loky", "dask", "ray"}
    scheduler : str or None
        The cluster's address (Dask: required; Ray: optional, a local instance without it).
    jobs : int
        CPUs of a local Ray instance.
    """
    check_backend(backend)
    if backend == "dask":
        with dask_session(scheduler):
            yield
    elif backend == "ray":
        with ray_session(scheduler, jobs):
            yield
    else:
        yield


def dispatch(func: Callable[[Any, Any], Any], shared: Any, tasks: list[Any], backend: str,
             jobs: int) -> Iterable[Any]:
    """Run ``func(shared, task)`` for every task; the results come back in task order.

    Parameters
    ----------
    func : callable
        A picklable function of the shared context and one task.
    shared : object
        What every task needs (shipped with each task).
    tasks : list
        The tasks, in the order their results are wanted.
    backend : {"loky", "dask", "ray"}
        For ``dask`` and ``ray`` the caller holds a :func:`session`; ``loky`` runs
        ``jobs`` local processes (every core when ``jobs < 1``; in this process when 1).
    jobs : int
        Worker processes of the loky backend.

    Returns
    -------
    iterable
        The results, lazily: loky hands each one over as it is ready; the cluster
        backends run :data:`BATCH_PER_WORKER` tasks per worker at a time, so that the
        caller holds the results of one batch, not of the whole run (the cluster backends
        of joblib cannot return a generator).
    """
    from joblib import Parallel, delayed, parallel_config  # (not at import: a light CLI)

    if not tasks:
        return iter(())
    if backend == "dask":
        return _in_batches(func, shared, tasks, {"backend": "dask",
                                                 "wait_for_workers_timeout": 60})
    if backend == "ray":
        return _in_batches(func, shared, tasks, {"backend": "ray"})
    n_jobs = min(jobs if jobs > 0 else (os.cpu_count() or 1), len(tasks))
    # every worker watches its driver from its start (watch_driver), idle or busy
    with parallel_config(backend="loky", initializer=watch_driver, initargs=(os.getpid(),)):
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    with _workers_ignore_ctrl_c():  # the call starts the workers
        return parallel(delayed(func)(shared, t) for t in tasks)


@contextmanager
def _workers_ignore_ctrl_c() -> Iterator[None]:
    """Start worker processes with Ctrl-C ignored from their first instruction (an ignored
    signal stays ignored across exec, and Python keeps it so): a Ctrl-C at a terminal
    reaches the whole process group, and only the driver should answer it. A Ctrl-C in
    these few milliseconds of the driver's is lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _in_batches(func: Callable[[Any, Any], Any], shared: Any, tasks: list[Any],
                config: dict[str, Any]) -> Iterator[Any]:
    """Results of a cluster backend in task order, a batch of tasks at a time."""
    from joblib import Parallel, delayed, effective_n_jobs, parallel_config

    with parallel_config(**config), Parallel(n_jobs=-1) as parallel:
        size = BATCH_PER_WORKER * max(1, effective_n_jobs(-1))
        for start in range(0, len(tasks), size):
            yield from parallel(delayed(func)(shared, t) for t in tasks[start:start + size])
