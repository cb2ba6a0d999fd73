"""Emolens: seven emotions for every face in a webcam, video or image folder.

Three lines for a notebook::

    from emolens import Analyzer
    faces = Analyzer().analyze(bgr_image)
    faces.xyxy, faces.face_id, faces.keypoints, faces.probs

Nothing heavy is imported eagerly: NumPy loads on first use of ``Faces`` or ``Frame``, the
model card on first use of ``ModelCard``, the pipeline (MediaPipe, ONNX Runtime) on first use
of ``Analyzer`` or ``open_source``, so the command line starts inside its own error handling
(Ctrl+C while loading is no traceback). Importing ``emolens`` first switches every
dependency's telemetry off (``emolens.offline``) and quietens native logs (``emolens.quiet``).
"""

from __future__ import annotations

from emolens.offline import disable_telemetry
from emolens.quiet import quiet_native_logs

disable_telemetry()  # before any module imports ONNX Runtime: see emolens.offline
quiet_native_logs()

from emolens.errors import EmolensError  # noqa: E402

__all__ = ["Analyzer", "AnalyzerOptions", "EmolensError", "Faces", "Frame", "ModelCard", "open_source"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("Analyzer", "AnalyzerOptions"):
        from emolens import pipeline

        return getattr(pipeline, name)
    if name == "ModelCard":
        from emolens.card import ModelCard

        return ModelCard
    if name in ("Faces", "Frame"):
        from emolens import types

        return getattr(types, name)
    if name == "open_source":
        from emolens.sources import open_source

        return open_source
    raise AttributeError(f"module 'emolens' has no attribute {name!r}")
