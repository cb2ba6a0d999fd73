"""Keep every dependency off the network: the documented off switches, applied at ``import emolens``.

What we found phoning home (``strace -f -e trace=network`` and a fresh ``HOME``; the tests
in ``tests/test_network.py`` check each run of ``analyze``, ``evaluate``, ``report`` and the
window):

* **ONNX Runtime** 1.29 and later (POSIX telemetry) writes a device id and a database of
  queued telemetry events (process, OS, CPU, container type) under
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` on import, for upload to Microsoft's
  1DS collector. Its documented switch, the environment variable ``ORT_DISABLE_TELEMETRY``,
  is read when ``onnxruntime`` is imported, so it is set here, before any Emolens module
  imports it; ``disable_telemetry_events()`` (its Python API) is called too, for a process
  that imported ``onnxruntime`` before Emolens.
* **MediaPipe** wheels from 0.10.35 on link Google's Clearcut uploader into
  ``libmediapipe.so``: creating a face detector resolves ``play.googleapis.com`` and sends
  usage logs to ``https://play.googleapis.com/log``. It has no off switch, so
  ``pyproject.toml`` keeps MediaPipe below 0.10.35 (0.10.33 carries no uploader;
  ``tests/test_network.py`` scans the installed library for it).
"""

from __future__ import annotations

import os
import sys

TELEMETRY_ENVIRONMENT = {"ORT_DISABLE_TELEMETRY": "1"}


def disable_telemetry() -> None:
    """Set every dependency's documented telemetry off switch (idempotent)."""
    os.environ.update(TELEMETRY_ENVIRONMENT)
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is not None and hasattr(onnxruntime, "disable_telemetry_events"):
        onnxruntime.disable_telemetry_events()
