"""Keep native libraries' log chatter (glog, LiteRT, ONNX Runtime, FFmpeg, libpng) off the user's terminal.

Two tools: ``quiet_native_logs()`` sets the libraries' own log-level switches (run at
``import emolens``), and ``captured_native_stderr()`` catches what a library prints anyway
(libpng's ``libpng error: ...`` on a damaged PNG, MediaPipe's start-up lines such as
``WARNING: Logging before InitGoogle()``), keeping it for an error message. For Ctrl+C,
``deliver_swallowed_interrupts()`` re-raises one that a library's destructor swallowed, and
``quiet_interrupted_teardown()`` hides the destructor tracebacks the interruption causes, and
``interrupts_held()`` keeps a Ctrl+C out of a library's start-up until it is done.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Defaults only: a user who sets one of these (to debug a codec, say) keeps their value.
NATIVE_LOG_LEVELS = {
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # FFmpeg's AV_LOG_QUIET: no "moov atom not found" beside our error line
    "OPENCV_LOG_LEVEL": "ERROR",
    "GLOG_minloglevel": "2",  # MediaPipe's glog: errors only
}

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
