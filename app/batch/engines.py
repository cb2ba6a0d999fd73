"""Where batch tasks run: ``local`` (a process pool on this machine) or ``ray`` (a Ray cluster).

Both run the same ``Task``s on ``BatchWorker``s that load the model once per worker process
(``local``: a per-process worker made by the pool's initializer; ``ray``: one actor per worker)
and call ``on_result(task, result)`` in the driver as each input finishes, in completion order.

Local workers never see the terminal's Ctrl+C (they start with SIGINT blocked): the driver alone
handles it, by cancelling what is queued and stopping the workers within ``STOP_TIMEOUT_S``, then
raising ``KeyboardInterrupt``. On Linux a local worker is killed when its driver dies, even by
``kill -9``, so no orphan goes on writing into ``--out``.

A worker that dies mid-input (killed, out of memory, its node lost) takes no output with it:
its timeline was still under a temporary name. The input is run again on a fresh worker, up to
``MAX_ATTEMPTS`` times in all, then recorded as failed.

Ray: ``address=None`` starts a local single-machine cluster bound to 127.0.0.1 (nothing is
reachable from the network) that keeps everything it writes, its session logs and its
authentication token included, in a scratch folder of its own, removed when the run ends (see
``_local_ray``); an address (``host:port`` of the head's GCS, ``ray://host:10001``
or ``auto``) joins an existing cluster. A host:port that does not answer within
``CONNECT_TIMEOUT_S`` is a one-line error, not Ray's minutes of retries.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from emolens.batch.tasks import BatchWorker, Task, TaskResult, worker_options
from emolens.errors import EmolensError, SettingError
from emolens.options import AnalyzerOptions

MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 3.0  # how long a stopped local worker gets to exit before it is killed
_PR_SET_PDEATHSIG = 1  # prctl(2)
OnResult = Callable[[Task, TaskResult], None]

_worker: BatchWorker | None = None  # the local engine's per-process worker


def run_local(tasks: list[Task], options: AnalyzerOptions, workers: int, on_result: OnResult) -> None:
    """Run ``tasks`` in ``workers`` processes (0 = one per core), each with its share of the cores."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    threads = max(1, (os.cpu_count() or 1) // (2 * workers))  # each worker detects on a second thread (overlap)
    # spawn, not fork: the detector and ONNX Runtime start threads, which fork does not carry over safely.
    context = multiprocessing.get_context("spawn")
    attempts: Counter = Counter()
    pending = deque(tasks)
    while pending:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(worker_options(options, threads), os.getpid()))
        try:
            # The pool starts its processes as tasks are submitted; they inherit this blocked SIGINT,
            # and a Ctrl+C meanwhile waits, pending, until it is unblocked here.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                running = {pool.submit(_run_task, task): task for task in pending}
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            pending.clear()
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = running.pop(future)
                    try:
                        on_result(task, future.result())
                    except BrokenProcessPool:  # a worker died: every unfinished task comes back here
                        _retry_or_fail(task, attempts, pending, on_result,
                                       "its worker process died (killed or out of memory)")
        except BaseException:  # Ctrl+C, or on_result failed: stop now, not after every queued input
            _stop_pool(pool)
            raise
        pool.shutdown()


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Drop the queued tasks and end the workers: SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``."""
    # Python 3.14 has pool.terminate_workers(); before it, the pool's processes are only in _processes.
    processes = list(pool._processes.values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()


def _start_worker(options: AnalyzerOptions, driver_pid: int) -> None:
    global _worker
    _die_with_driver(driver_pid)
    _worker = BatchWorker(options)


def _die_with_driver(driver_pid: int) -> None:
    """Have the kernel kill this worker when its driver dies (Linux), so a ``kill -9`` of ``emolens batch``
    leaves no worker writing into ``--out``; elsewhere a worker may outlive a killed driver."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != driver_pid:  # the driver died before the request was made
        os._exit(1)


def _run_task(task: Task) -> TaskResult:
    assert _worker is not None, "the pool initializer did not run"
    return _worker.run(task)


def run_ray(tasks: list[Task], options: AnalyzerOptions, workers: int, on_result: OnResult,
            address: str | None = None, worker_gpus: float = 0.0) -> None:
    """Run ``tasks`` on ``workers`` Ray actors (0 = one per CPU of the cluster), one CPU each."""
    ray = _import_ray(address)
    with _connected(ray, address, workers):
        workers = max(1, min(workers or int(ray.cluster_resources().get("CPU", 1)), len(tasks)))
        actor_class = ray.remote(num_cpus=1, num_gpus=worker_gpus)(BatchWorker)
        options = worker_options(options, threads=1)
        idle = [actor_class.remote(options) for _ in range(workers)]
        pending, running, attempts = deque(tasks), {}, Counter()
        try:
            while pending or running:
                while idle and pending:
                    actor, task = idle.pop(), pending.popleft()
                    running[actor.run.remote(task)] = (actor, task)
                (ref,), _ = ray.wait(list(running), num_returns=1)
                actor, task = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as error:  # the actor's process died, or could not start
                    ray.kill(actor)
                    idle.append(actor_class.remote(options))
                    _retry_or_fail(task, attempts, pending, on_result, _actor_error(error))
                    continue
                except ray.exceptions.RayError as error:  # e.g. the task could not be sent
                    idle.append(actor)
                    on_result(task, TaskResult(task.item.input_id, "failed", _first_line(str(error))))
                    continue
                idle.append(actor)
                on_result(task, result)
        finally:
            for actor in idle + [actor for actor, _ in running.values()]:
                ray.kill(actor)


def _retry_or_fail(task: Task, attempts: Counter, pending: deque, on_result: OnResult, why: str) -> None:
    attempts[task.item.input_id] += 1
    if attempts[task.item.input_id] < MAX_ATTEMPTS:
        pending.append(task)
    else:
        on_result(task, TaskResult(task.item.input_id, "failed", f"{why}; gave up after {MAX_ATTEMPTS} attempts"))


def _import_ray(address: str | None):
    if address is None or _is_loopback(address):
        # A single-machine cluster listens on 127.0.0.1 only (Ray's own switch, read when ray is imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise SettingError("{engine} ray needs Ray: pip install 'emolens[batch]'") from None
    return ray


@contextmanager
def _connected(ray, address: str | None, workers: int) -> Iterator[None]:
    """Join the cluster at ``address`` (or start a local one) and leave it on the way out, unless
    Ray was already initialised (a notebook's, the tests' or the benchmark's own cluster)."""
    if ray.is_initialized():
        yield
    elif address is None:
        with _local_ray(ray, workers):
            yield
    else:
        _join(ray, address)
        try:
            yield
        finally:
            ray.shutdown()


_QUIET = {"log_to_driver": False, "logging_level": logging.ERROR}
_SOCKET_ROOM = 20  # characters of a temporary folder's path that Ray's socket paths leave (see below)


@contextmanager
def _local_ray(ray, workers: int) -> Iterator[None]:
    """A single-machine Ray cluster whose files all live in a scratch folder, removed at the end.

    Its processes run with that folder as HOME: Ray's usage-stats module (loaded even without a
    dashboard, and whatever ``RAY_USAGE_STATS_ENABLED`` says) reads ``~/ray_bootstrap_config.yaml``
    and, when that file is absent, asks the cloud metadata services (169.254.169.254,
    metadata.google.internal) which cloud it runs on; the empty file put there keeps it from
    asking. The token Ray writes to ``~/.ray/auth_token`` lands there too, and the session logs,
    which name the inputs, go under the same folder (``_temp_dir``).
    """
    scratch = tempfile.mkdtemp(prefix="emolens-ray-", dir=_short_temporary_folder())
    home = os.path.join(scratch, "home")
    os.mkdir(home)
    with open(os.path.join(home, "ray_bootstrap_config.yaml"), "w") as config:
        config.write("{}\n")
    # Ray lowers its workers' priority by 15 (nice 19 under an already niced driver), which starves
    # them beside any other work; a local batch gets the same priority as the local engine.
    os.environ.setdefault("RAY_worker_niceness", "0")
    real_home = os.environ.get("HOME")
    try:
        os.environ["HOME"] = home  # read by the processes ray.init starts, and by its token writer
        try:
            ray.init(num_cpus=workers or None, include_dashboard=False, _temp_dir=scratch, **_QUIET)
        finally:
            _restore_home(real_home)
        yield
    finally:
        try:
            ray.shutdown()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _short_temporary_folder() -> str | None:
    """The temporary folder, or /tmp where its path leaves Ray's unix sockets too little room (macOS's
    per-user folder, a long $TMPDIR): 107 bytes must hold it, the scratch folder and
    ``session_<date>_<time>_<pid>/sockets/plasma_store``."""
    folder = tempfile.gettempdir()
    return "/tmp" if len(folder) > _SOCKET_ROOM and os.path.isdir("/tmp") else None


def _restore_home(home: str | None) -> None:
    if home is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = home


def _join(ray, address: str) -> None:
    """Join the running cluster at ``address``."""
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise EmolensError(f"the Ray cluster at {address} does not answer ({reason} within "
                               f"{CONNECT_TIMEOUT_S:.0f} s); start one with `ray start --head` "
                               f"or leave out --address for a local one") from None
    try:
        ray.init(address=address, **_QUIET)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise EmolensError(f"cannot join the Ray cluster at {address}: {_first_line(str(error))}") from None


def _host_port(address: str) -> tuple[str, int]:
    text = address.split("://", 1)[-1]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise SettingError(f"{{address}} must be host:port, ray://host:port or auto, got {address}")
    return host.strip("[]"), int(port)


def _is_loopback(address: str) -> bool:
    if address == "auto":
        return False
    host = address.split("://", 1)[-1].rpartition(":")[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _actor_error(error: Exception) -> str:
    text = str(error)
    if "creation task" in text:  # the worker could not load the model (e.g. not installed on that node)
        return "the Ray worker could not start: " + _first_line(text.split("creation task", 1)[1])
    return "its Ray worker died (killed, out of memory, or its node was lost)"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "unknown error")[:300]
