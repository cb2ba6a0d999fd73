"""Emolens: seven emotions for every face in a webcam, video or image folder.

Three lines for a notebook::

    from emolens import Analyzer
    faces = Analyzer().analyze("photo.jpg")          # a path, a PIL image, a BGR array, or rgb=an RGB array
    faces.to_pandas()                                 # face_id, box, det_score, one column per emotion, dominant

and a video into a CSV timeline::

    from emolens import Analyzer, CsvRecorder, open_source
    with Analyzer() as analyzer, open_source("clip.mp4") as source, \
            CsvRecorder("clip.csv", analyzer.labels) as recorder:
        for result in analyzer.run(source, recorder):
            print(result.frame.index, len(result.faces))

Only the lightweight types are imported eagerly; the pipeline (MediaPipe, ONNX Runtime)
loads on first use of ``Analyzer`` or ``open_source``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from emolens.card import ModelCard
from emolens.errors import EmolensError
from emolens.record import CsvRecorder
from emolens.types import Faces, Frame

__all__ = ["Analyzer", "AnalyzerOptions", "CsvRecorder", "EmolensError", "Faces", "Frame", "FrameResult", "ModelCard",
           "open_source"]
try:
    __version__ = version("emolens")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    if name in ("Analyzer", "AnalyzerOptions", "FrameResult"):
        from emolens import pipeline

        return getattr(pipeline, name)
    if name == "open_source":
        from emolens.sources import open_source

        return open_source
    raise AttributeError(f"module 'emolens' has no attribute {name!r}")
