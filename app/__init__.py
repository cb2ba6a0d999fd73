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

Nothing heavy is imported eagerly: NumPy loads on first use of ``Faces`` or ``Frame``, the
model card on first use of ``ModelCard``, the pipeline (LiteRT, ONNX Runtime) on first use
of ``Analyzer`` or ``open_source``, so the command line starts inside its own error handling
(Ctrl+C while loading is no traceback). Importing ``emolens`` first switches every
dependency's telemetry off and quietens native logs (``emolens.native``).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from emolens.native import disable_telemetry, quiet_native_logs

disable_telemetry()  # before any module imports ONNX Runtime: see emolens.native
quiet_native_logs()

from emolens.errors import EmolensError  # noqa: E402

__all__ = ["Analyzer", "AnalyzerOptions", "CsvRecorder", "EmolensError", "Faces", "Frame", "FrameResult", "ModelCard",
           "Models", "Session", "Study", "open_source"]
try:
    __version__ = version("emolens")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_LAZY = {"Analyzer": "emolens.pipeline", "Models": "emolens.pipeline", "Session": "emolens.pipeline",
         "FrameResult": "emolens.pipeline", "AnalyzerOptions": "emolens.options",
         "ModelCard": "emolens.card", "CsvRecorder": "emolens.record", "Faces": "emolens.types",
         "Frame": "emolens.types", "open_source": "emolens.sources", "Study": "emolens.study.api"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emolens' has no attribute {name!r}")
