"""Keep native libraries' log chatter (glog, LiteRT, ONNX Runtime) off the user's terminal."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Redirect file descriptor 2 into a buffer; the yielded list receives its lines on exit.

    Native code writes to fd 2 directly, past ``sys.stderr``; this is the only way to keep
    its start-up logs from the user while keeping them available for an error message.
    """
    lines: list[str] = []
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
