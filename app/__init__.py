"""Emolens: seven emotions for every face in a webcam, video or image folder.

Three lines for a notebook::

    from emolens import Analyzer
    faces = Analyzer().analyze(bgr_image)
    faces.xyxy, faces.face_id, faces.keypoints, faces.probs

Only the lightweight types are imported eagerly; the pipeline (MediaPipe, ONNX Runtime)
loads on first use of ``Analyzer`` or ``open_source``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from emolens.card import ModelCard
from emolens.errors import EmolensError
from emolens.types import Faces, Frame

__all__ = ["Analyzer", "AnalyzerOptions", "EmolensError", "Faces", "Frame", "ModelCard", "open_source"]
try:
    __version__ = version("emolens")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    if name in ("Analyzer", "AnalyzerOptions"):
        from emolens import pipeline

        return getattr(pipeline, name)
    if name == "open_source":
        from emolens.sources import open_source

        return open_source
    raise AttributeError(f"module 'emolens' has no attribute {name!r}")
