"""The demo clip for the browser client, as WebM (VP8): browsers do not play the MPEG-4 Part 2 of
``assets/demo.mp4``. Converted once per process, in memory (the temporary file is removed at once).
"""

from __future__ import annotations

import functools
import tempfile
from importlib import resources
from pathlib import Path

import cv2

DEMO = Path(str(resources.files("emolens.assets") / "demo.mp4"))


@functools.cache
def demo_webm() -> bytes:
    """The bytes of ``assets/demo.mp4`` re-encoded as a VP8 WebM at the same size and rate."""
    capture = cv2.VideoCapture(str(DEMO))
    fps = capture.get(cv2.CAP_PROP_FPS) or 20.0
    size_wh = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    with tempfile.TemporaryDirectory(prefix="emolens-demo-") as folder:
        path = Path(folder) / "demo.webm"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, size_wh)
        while True:
            ok, image = capture.read()
            if not ok:
                break
            writer.write(image)
        writer.release()
        capture.release()
        return path.read_bytes()
