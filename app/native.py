"""The native libraries, kept offline and quiet: telemetry off, logs off the terminal, MediaPipe imported once.

**Offline.** What we found phoning home (``strace -f -e trace=network`` and a fresh ``HOME``; the
tests in ``tests/test_network.py`` check each run of ``analyze``, ``evaluate``, ``report`` and the
window):

* **ONNX Runtime** 1.29 and later (POSIX telemetry) writes a device id and a database of
  queued telemetry events (process, OS, CPU, container type) under
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` on import, for upload to Microsoft's
  1DS collector. Its documented switch, the environment variable ``ORT_DISABLE_TELEMETRY``,
  is read when ``onnxruntime`` is imported, so ``disable_telemetry()`` sets it at ``import
  emolens``, before any Emolens module imports it; ``disable_telemetry_events()`` (its Python
  API) is called too, for a process that imported ``onnxruntime`` before Emolens.
* **MediaPipe** wheels from 0.10.35 on link Google's Clearcut uploader into
  ``libmediapipe.so``: creating a face detector resolves ``play.googleapis.com`` and sends
  usage logs to ``https://play.googleapis.com/log``. It has no off switch, so
  ``pyproject.toml`` keeps MediaPipe below 0.10.35 (0.10.33 carries no uploader;
  ``tests/test_network.py`` scans the installed library for it).

**Quiet.** Two tools: ``quiet_native_logs()`` sets the libraries' own log-level switches (run at
``import emolens``), and ``captured_native_stderr()`` catches what a library prints anyway
(libpng's ``libpng error: ...`` on a damaged PNG, MediaPipe's start-up lines such as
``WARNING: Logging before InitGoogle()``), keeping it for an error message. For Ctrl+C,
``deliver_swallowed_interrupts()`` re-raises one that a library's destructor swallowed, and
``quiet_interrupted_teardown()`` hides the destructor tracebacks the interruption causes, and
``interrupts_held()`` keeps a Ctrl+C out of a library's start-up until it is done.

**MediaPipe** is imported here only (``mediapipe_tasks()``, on first use, so ``import emolens``
stays light), and every open task is closed before MediaPipe's executor stops at exit
(``close_at_exit``).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Protocol

TELEMETRY_ENVIRONMENT = {"ORT_DISABLE_TELEMETRY": "1"}

# Defaults only: a user who sets one of these (to debug a codec, say) keeps their value.
NATIVE_LOG_LEVELS = {
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # FFmpeg's AV_LOG_QUIET: no "moov atom not found" beside our error line
    "OPENCV_LOG_LEVEL": "ERROR",
    "GLOG_minloglevel": "2",  # MediaPipe's glog: errors only
}



def disable_telemetry() -> None:
    """Set every dependency's documented telemetry off switch (idempotent)."""
    os.environ.update(TELEMETRY_ENVIRONMENT)
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is not None and hasattr(onnxruntime, "disable_telemetry_events"):
        onnxruntime.disable_telemetry_events()


# fd 2 is one per process: two threads redirecting it at once would restore each other's copy.
_STDERR_LOCK = threading.RLock()


def quiet_native_logs() -> None:
    """Set the native libraries' log-level environment variables, unless the user set them."""
    for name, value in NATIVE_LOG_LEVELS.items():
        os.environ.setdefault(name, value)


@contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Redirect file descriptor 2 into a buffer; the yielded list receives its lines on exit.

    Native code writes to fd 2 directly, past ``sys.stderr``; this is the only way to keep
    its logs from the user while keeping them available for an error message. Threads take
    turns (a lock); nesting in one thread is allowed.
    """
    lines: list[str] = []
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile(mode="w+b") as buffer:
            os.dup2(buffer.fileno(), 2)
            try:
                yield lines
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                buffer.seek(0)
                lines.extend(buffer.read().decode(errors="replace").splitlines())


# Set once ``emolens.cli.main`` has turned a Ctrl+C into its one line.
_INTERRUPT_HANDLED = threading.Event()


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """Ctrl+C inside a destructor (MediaPipe's ``Image.__del__``) is "ignored" by Python, with a
    traceback, and the run would go on to the end: deliver it again instead, once it is outside.
    After our one line, say nothing of destructors that the interruption broke (``Image.__del__``
    on an image whose constructor was interrupted)."""
    error = unraisable.exc_value
    if isinstance(error, KeyboardInterrupt):
        if not _INTERRUPT_HANDLED.is_set():
            signal.raise_signal(signal.SIGINT)
        return
    if _INTERRUPT_HANDLED.is_set() and isinstance(error, AttributeError) and "_image_ptr" in str(error):
        return
    sys.__unraisablehook__(unraisable)


def deliver_swallowed_interrupts() -> None:
    """Install the hook above for one run of ``main``: a Ctrl+C is never lost in a library's destructor."""
    _INTERRUPT_HANDLED.clear()
    sys.unraisablehook = _unraisable


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold a Ctrl+C that arrives inside the block and deliver it when the block ends.

    For start-up code that is not safe against an interruption: MediaPipe starts its call
    thread as a task is created, and a ``KeyboardInterrupt`` landing between the thread's start
    and its registration for shutdown leaves a thread that nothing stops, so the interrupted
    process would never exit. Only the main thread receives signals; elsewhere, or when the
    handler was not set from Python, the block runs as it is.
    """
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            signal.raise_signal(signal.SIGINT)


def quiet_interrupted_teardown() -> None:
    """Keep library destructors interrupted by Ctrl+C from printing tracebacks after our one line
    (through the hook ``deliver_swallowed_interrupts`` installed)."""
    _INTERRUPT_HANDLED.set()


def mediapipe_tasks() -> tuple[ModuleType, Any, ModuleType]:
    """MediaPipe's ``mp`` module, and its Tasks API's ``BaseOptions`` and ``vision`` (imported once).

    MediaPipe imports TensorFlow when it is installed, only for documentation decorators; that
    costs seconds and a screen of logs. It is hidden during the import (MediaPipe falls back to
    no-op decorators) unless TensorFlow is already loaded, e.g. by the trainer.
    """
    quiet_native_logs()  # glog's level is read when MediaPipe loads
    hide_tensorflow = "tensorflow" not in sys.modules
    if hide_tensorflow:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    finally:
        if hide_tensorflow:
            del sys.modules["tensorflow"]
    return mp, BaseOptions, vision


class Closable(Protocol):
    def close(self) -> None: ...


_OPEN_TASKS: weakref.WeakSet = weakref.WeakSet()


def close_at_exit(owner: Closable) -> None:
    """Close ``owner`` (which holds a MediaPipe task) at exit if it is still open then.

    MediaPipe runs its C calls on a ``ThreadPoolExecutor`` that Python shuts down before ordinary
    ``atexit`` handlers, and a task still open then fails noisily in its ``__del__``. Only
    ``threading``'s own exit hooks run early enough; they run in reverse order of registration,
    and the executor module registers its shutdown when imported, so it is imported first.
    """
    _OPEN_TASKS.add(owner)


def _close_open_tasks() -> None:
    for owner in list(_OPEN_TASKS):
        owner.close()


import concurrent.futures.thread  # noqa: E402, F401  (see close_at_exit)

threading._register_atexit(_close_open_tasks)  # no public hook runs before the executors' shutdown
