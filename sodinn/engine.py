"""One entry point for embarrassingly parallel work: a local process pool, in-process, or a Dask cluster.

Every parallel loop of sodinn (the annuli of the sample generator, the copies of the ROC harness,
the targets of a survey) goes through :func:`map_jobs`::

    results = map_jobs(func, [(a0, b0), (a1, b1)])      # [func(a0, b0), func(a1, b1)], in job order

``func`` is a module-level function (pickled by reference) and each job is the tuple of its
arguments. Jobs carry their own random seeds (no global random state), so the results do not
depend on where the jobs ran: the local pool, in-process and a Dask cluster give the same bits.

Schedulers
----------
``None`` or ``"processes"``
    A local process pool on all cores, nothing to set up. Workers start by ``fork`` on Linux
    (about 10 ms for two workers, against 0.5 s for Dask's own spawn-based ``processes``
    scheduler and 1 s for a two-worker ``LocalCluster``); once TensorFlow, PyTorch or JAX is
    loaded in the calling process, which forking would break, by ``forkserver``.
``"synchronous"`` (or ``n_workers=1``)
    In the calling process, one job after the other: for debugging and profiling.
``"tcp://host:port"`` (or ``"tls://..."``)
    A running Dask cluster (``dask scheduler`` + ``dask worker``, dask-jobqueue, ...): a
    ``dask.distributed.Client`` connects for the call.
a ``dask.distributed.Client``
    That client's cluster (e.g. a ``LocalCluster``).

:func:`use_scheduler` makes a scheduler the default of every call inside a ``with`` block (this
is how ``sodinn samples --scheduler`` reaches the sample generator). Calls made *inside* a
worker (a job that itself maps jobs) run in-process: the cores are already busy.

Fault tolerance: ``on_result(index, result)`` runs in the calling process as each job finishes,
so callers persist finished work at once. On a Dask cluster the jobs of a worker that dies are
redone on the others (up to the scheduler's ``allowed-failures``, 3 by default), and results
already received are released, so they are never recomputed. A local pool that loses a worker
is restarted for the unfinished jobs (at most 3 times).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import multiprocessing
import sys
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any
from urllib.parse import urlsplit

from sodinn._platform import usable_cores

__all__ = ["check_scheduler", "iter_jobs", "map_jobs", "runs_in_process", "use_scheduler"]

logger = logging.getLogger(__name__)

LOCAL = "processes"
INLINE = "synchronous"
_PROTOCOLS = ("tcp", "tls")
_CONNECT_TIMEOUT_S = 10.0
_POOL_RESTARTS = 3
_NO_FORK_AFTER = ("tensorflow", "torch", "jax")  # runtimes whose threads do not survive a fork
_ATOMS = (str, bytes, int, float, complex, bool, type(None))

_default: contextvars.ContextVar[Any] = contextvars.ContextVar("sodinn_engine_scheduler", default=None)
_in_pool_worker = False


def check_scheduler(scheduler: Any) -> Any:
    """Return ``scheduler`` if it is a valid scheduler (see the module docstring), else raise.

    Only the form of an address is checked; nothing is connected to.

    Parameters
    ----------
    scheduler : None, str or dask.distributed.Client
        ``None``, ``"processes"``, ``"synchronous"``, a Dask scheduler address
        ``"tcp://host:port"`` / ``"tls://host:port"``, or a connected ``Client``.

    Returns
    -------
    None, str or dask.distributed.Client
        ``scheduler`` itself, unchanged.

    Raises
    ------
    ValueError
        For a string that is neither ``"processes"``, ``"synchronous"`` nor a
        ``tcp://host:port`` / ``tls://host:port`` address.
    TypeError
        For any other object than None, a string or a ``dask.distributed.Client``.
    """
    if scheduler is None or scheduler in (LOCAL, INLINE) or _is_client(scheduler):
        return scheduler
    if not isinstance(scheduler, str):
        msg = ("scheduler must be None, 'processes', 'synchronous', a Dask scheduler address 'tcp://host:port' "
               f"or a dask.distributed.Client; got {type(scheduler).__name__}")
        raise TypeError(msg)
    parts = urlsplit(scheduler)
    try:
        port = parts.port
    except ValueError:
        port = None
    if (parts.scheme not in _PROTOCOLS or not parts.hostname or port is None or not 0 < port < 65536
            or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username):
        msg = (f"scheduler must be 'processes', 'synchronous' or a Dask scheduler address such as "
               f"'tcp://10.0.0.5:8786' ({' or '.join(_PROTOCOLS)}, host and port); got {scheduler!r}")
        raise ValueError(msg)
    return scheduler


@contextlib.contextmanager
def use_scheduler(scheduler: Any) -> Iterator[Any]:
    """Make ``scheduler`` the default of :func:`map_jobs` inside a ``with`` block.

    An address is connected to once, for the whole block; the client is closed at its end.

    Parameters
    ----------
    scheduler : None, str or dask.distributed.Client
        The default of the block (see the module docstring); ``None`` restores the local pool.

    Yields
    ------
    None, str or dask.distributed.Client
        The scheduler in use: the connected ``Client`` for an address, else ``scheduler``.

    Raises
    ------
    ValueError, TypeError
        For a bad scheduler (:func:`check_scheduler`), or an address where no scheduler answers.

    Examples
    --------
    >>> with use_scheduler("tcp://10.0.0.5:8786"):  # doctest: +SKIP
    ...     generate_sample_file(seq, config, "samples.h5")   # annuli run on the cluster
    """
    check_scheduler(scheduler)
    owned = isinstance(scheduler, str) and scheduler not in (LOCAL, INLINE)
    active = _connect(scheduler) if owned else scheduler
    token = _default.set(active)
    try:
        yield active
    finally:
        _default.reset(token)
        if owned:
            active.close()


def runs_in_process(*, scheduler: Any = None, n_workers: int | None = None, n_jobs: int = 2) -> bool:
    """Tell whether :func:`map_jobs` with these settings would run ``n_jobs`` jobs in the calling process.

    Parameters
    ----------
    scheduler : None, str or dask.distributed.Client
        As in :func:`map_jobs`.
    n_workers : int, optional
        As in :func:`map_jobs`.
    n_jobs : int
        Number of jobs (one job, or one worker, runs in-process).

    Returns
    -------
    bool
        True for ``"synchronous"``, for a call made inside a worker, and for a local pool that would
        have a single process (one job, one worker or one core).

    Raises
    ------
    ValueError, TypeError
        For a bad scheduler or ``n_workers``.
    """
    return _plan(scheduler, n_workers, n_jobs)[0] == "inline"


def map_jobs(
    func: Callable[..., Any],
    jobs: Sequence[tuple],
    *,
    scheduler: Any = None,
    n_workers: int | None = None,
    progress: bool = True,
    desc: str = "jobs",
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``func(*job)`` for every job, in parallel; return the results in job order.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it by name).
    jobs : sequence of tuple
        The positional arguments of each call. Objects shared by several jobs (the same object,
        e.g. one cube) are sent to a Dask cluster once, not once per job.
    scheduler : None, str or dask.distributed.Client
        None: the default set by :func:`use_scheduler`, else the local process pool.
        ``"processes"``, ``"synchronous"``, ``"tcp://host:port"`` or a Client: see the module docstring.
    n_workers : int, optional
        Local pool: number of processes (default: all cores; 1 runs in-process).
        Dask: at most this many jobs submitted at once (default: all).
    progress : bool
        Show a progress bar.
    desc : str
        Label of the progress bar.
    on_result : callable, optional
        ``on_result(index, result)``, called in the calling process as each job finishes (in
        completion order): persist finished work here.

    Returns
    -------
    list, length len(jobs)
        ``[func(*jobs[0]), func(*jobs[1]), ...]``.

    Raises
    ------
    ValueError, TypeError
        For a bad scheduler, ``n_workers``, ``func`` or job, before any job runs.
    Exception
        The first exception raised by a job (the other jobs are cancelled).
    """
    from tqdm.auto import tqdm

    jobs = list(jobs)
    results: list[Any] = [None] * len(jobs)
    with contextlib.closing(iter_jobs(func, jobs, scheduler=scheduler, n_workers=n_workers)) as pairs, \
            tqdm(total=len(jobs), desc=desc, unit="job", disable=None if progress else True) as bar:
        for index, result in pairs:
            results[index] = result
            if on_result is not None:
                on_result(index, result)
            bar.update(1)
    return results


def iter_jobs(
    func: Callable[..., Any],
    jobs: Sequence[tuple],
    *,
    scheduler: Any = None,
    n_workers: int | None = None,
    ordered: bool = False,
) -> Generator[tuple[int, Any], None, None]:
    """Run the jobs like :func:`map_jobs`, yielding ``(index, result)`` pairs as jobs finish.

    Arguments are checked at once; the jobs start at the first ``next()``. Close the iterator (or
    exhaust it) to release the workers.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it by name).
    jobs : sequence of tuple
        The positional arguments of each call.
    scheduler : None, str or dask.distributed.Client
        As in :func:`map_jobs`.
    n_workers : int, optional
        As in :func:`map_jobs`.
    ordered : bool
        Yield the pairs in job order (a finished job waits for the ones before it) instead of
        completion order.

    Returns
    -------
    generator of (int, object)
        ``(index, func(*jobs[index]))`` for every job.

    Raises
    ------
    ValueError, TypeError
        For a bad scheduler, ``n_workers``, ``func`` or job, at the call.
    """
    jobs = _check_jobs(func, jobs)
    kind, value = _plan(scheduler, n_workers, len(jobs))
    if kind == "inline":
        pairs = _run_inline(func, jobs)
    elif kind == "pool":
        pairs = _run_pool(func, jobs, value)
    else:
        pairs = _run_dask(func, jobs, value, n_workers)
    return _in_order(pairs) if ordered else pairs


# ---------------------------------------------------------------- planning


def _plan(scheduler: Any, n_workers: int | None, n_jobs: int) -> tuple[str, Any]:
    """("inline", None), ("pool", n_processes) or ("dask", address or Client)."""
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        msg = f"n_workers must be a positive integer or None; got {n_workers!r}"
        raise ValueError(msg)
    check_scheduler(scheduler)
    if scheduler is None:
        scheduler = _default.get()
    if scheduler == INLINE or _in_pool_worker or _in_dask_worker():
        return "inline", None
    if scheduler is None or scheduler == LOCAL:
        workers = min(n_jobs, n_workers or usable_cores())
        return ("inline", None) if workers <= 1 else ("pool", workers)
    return "dask", scheduler


def _check_jobs(func: Any, jobs: Sequence[tuple]) -> list[tuple]:
    if not callable(func):
        msg = f"func must be a function; got {type(func).__name__}"
        raise TypeError(msg)
    qualname = getattr(func, "__qualname__", "")
    if "<" in qualname:  # a lambda or a nested function cannot be sent to a worker process by reference
        msg = f"func must be a module-level function that worker processes can import; got {func.__module__}.{qualname}"
        raise TypeError(msg)
    jobs = list(jobs)
    for i, job in enumerate(jobs):
        if not isinstance(job, tuple):
            msg = f"jobs must be tuples of arguments; job {i} is a {type(job).__name__}"
            raise TypeError(msg)
    return jobs


def _is_client(obj: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(obj, distributed.Client)


def _in_dask_worker() -> bool:
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def _connect(address: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=_CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as err:
        msg = f"cannot reach the Dask scheduler at {address}: {err}"
        raise ValueError(msg) from err


def _in_order(pairs: Generator[tuple[int, Any], None, None]) -> Generator[tuple[int, Any], None, None]:
    waiting: dict[int, Any] = {}
    following = 0
    try:
        for index, result in pairs:
            waiting[index] = result
            while following in waiting:
                yield following, waiting.pop(following)
                following += 1
    finally:
        pairs.close()  # releases the workers


# ---------------------------------------------------------------- runners


def _run_inline(func: Callable[..., Any], jobs: list[tuple]) -> Generator[tuple[int, Any], None, None]:
    for index, job in enumerate(jobs):
        yield index, func(*job)


def _mark_pool_worker() -> None:
    global _in_pool_worker
    _in_pool_worker = True


def _mp_context() -> Any:
    if sys.platform.startswith("linux") and not any(name in sys.modules for name in _NO_FORK_AFTER):
        return multiprocessing.get_context("fork")
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_pool(func: Callable[..., Any], jobs: list[tuple], workers: int) -> Generator[tuple[int, Any], None, None]:
    pending = dict(enumerate(jobs))
    for attempt in range(_POOL_RESTARTS + 1):
        if attempt:
            logger.warning("a worker process died; restarting the pool for the %d unfinished job(s)", len(pending))
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=_mp_context(),
                                   initializer=_mark_pool_worker)
        clean = False
        try:
            with warnings.catch_warnings():
                # Python >= 3.12 warns on every fork of a process with threads (OpenBLAS has some); the
                # children only run numpy/scipy jobs, and TensorFlow & co. switch to forkserver (_mp_context)
                warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning)
                futures = {pool.submit(func, *job): index for index, job in pending.items()}
            for future in as_completed(futures):
                error = future.exception()
                if isinstance(error, BrokenProcessPool):
                    continue  # this job is redone in a fresh pool
                if error is not None:
                    raise error
                index = futures[future]
                del pending[index]
                yield index, future.result()
            clean = True
        finally:
            pool.shutdown(wait=clean, cancel_futures=True)
        if not pending:
            return
    msg = f"worker processes died {_POOL_RESTARTS + 1} times; {len(pending)} job(s) unfinished (out of memory?)"
    raise RuntimeError(msg)


def _run_dask(func: Callable[..., Any], jobs: list[tuple], scheduler: Any, cap: int | None) -> Generator[tuple[int, Any], None, None]:
    from distributed import as_completed as dask_as_completed

    owned = isinstance(scheduler, str)
    client = _connect(scheduler) if owned else scheduler
    futures: dict[int, Any] = {}
    shared: list[Any] = []
    try:
        args, shared = _share(client, jobs)
        prefix = f"{getattr(func, '__name__', 'job')}-{uuid.uuid4().hex[:8]}"

        def submit(i: int) -> Any:
            futures[i] = client.submit(func, *args[i], key=f"{prefix}-{i}", pure=False)
            return futures[i]

        following = min(len(jobs), cap or len(jobs))
        finished = dask_as_completed([submit(i) for i in range(following)], loop=client.loop)
        index = {f.key: i for i, f in futures.items()}
        for future in finished:
            i = index.pop(future.key)
            result = future.result()  # raises the job's exception
            del futures[i]
            future.release()  # received: the cluster forgets it and never recomputes it
            if following < len(jobs):
                new = submit(following)
                index[new.key] = following
                finished.add(new)
                following += 1
            yield i, result
    finally:
        if futures:
            client.cancel(list(futures.values()))
        for future in shared:
            future.release()
        if owned:
            client.close()


def _share(client: Any, jobs: list[tuple]) -> tuple[list[tuple], list[Any]]:
    """Scatter the objects that several jobs share to every worker, once; put their futures in the jobs.

    Shared objects are found at the top level of a job or inside a tuple/list argument.
    """

    def leaves(job: tuple) -> Iterator[Any]:
        for arg in job:
            if type(arg) in (tuple, list):
                yield from (a for a in arg if not isinstance(a, _ATOMS))
            elif not isinstance(arg, _ATOMS):
                yield arg

    counts = Counter(oid for job in jobs for oid in {id(a) for a in leaves(job)})
    futures: dict[int, Any] = {}
    for job in jobs:
        for leaf in leaves(job):
            if counts[id(leaf)] > 1 and id(leaf) not in futures:
                # a copy on every worker, so that losing one worker loses no input
                futures[id(leaf)] = client.scatter([leaf], broadcast=True, hash=False)[0]
    if not futures:
        return jobs, []

    def swap(obj: Any) -> Any:
        if type(obj) in (tuple, list):
            return type(obj)(futures.get(id(a), a) for a in obj)
        return futures.get(id(obj), obj)

    return [tuple(swap(arg) for arg in job) for job in jobs], list(futures.values())
