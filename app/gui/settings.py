"""What the window remembers between runs, and how the command line overrides it for one run.

``Settings`` is frozen and validated; ``load_settings``/``save_settings`` move it in and out of
a ``QSettings`` (``QSettings("Emolens", "Emolens")`` in the app, an .ini file in tests), one
JSON value per field, so a hand-edited or outdated entry falls back to its default instead of
crashing the app. The pipeline fields take their defaults from ``AnalyzerOptions``.

Example::

    store = QSettings("Emolens", "Emolens")
    settings = replace(load_settings(store), **overrides_from_args(args))   # this run only
    Analyzer(settings.analyzer_options(tiles=args.tiles))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from emolens.options import AnalyzerOptions

_PIPELINE = AnalyzerOptions()
MARKER_PRESETS = ("start", "ad starts", "laugh", "surprise", "confused", "bored", "ad ends", "question", "end")
"""Labels for the number keys 1 to 9."""
CHART_SPANS_S = (60.0, 300.0, 900.0, 0.0)
"""The chart spans offered (0: the whole session)."""
_RESOLUTION = re.compile(r"^(\d{2,5})x(\d{2,5})$")
PIPELINE_FIELDS = ("model", "device", "detector", "min_confidence", "max_faces", "tau_s", "detect")
"""The settings that are pipeline options too (same names in ``AnalyzerOptions``)."""

SAVE_VIDEO_TEXT = "Save the camera &video with recordings"
SAVE_VIDEO_TIP = ("the frames analysed, as NAME.mp4 beside the timeline, for replay; off by default: it is the "
                  "participant's face (never written over an existing file)")
RECORDING_VIDEO_TEXT = "recording video: it is the participant's face"


@dataclass(frozen=True)
class Settings:
    """The persisted choices.

    Attributes:
        camera: index of the camera opened when no source is given.
        resolution: camera resolution asked for, ``"1280x720"``, or ``""`` for the camera's default.
        model: the emotion model, ``fast`` or ``accurate`` (the shipped ones, ``emolens.card.MODEL_NAMES``), or a
            card or .onnx given with ``--model`` for one run.
        device, detector, min_confidence, max_faces, tau_s, detect: as in ``AnalyzerOptions``.
        mirror: show cameras mirrored, as a mirror would (files are never mirrored).
        recording_folder: where recordings go by default; ``""`` = Documents/Emolens.
        marker_presets: nine marker labels for the keys 1 to 9.
        details: the status bar's engineer's fields (provider, fps, per-stage milliseconds), View → Details.
        chart_span_s: the chart's widest span in seconds (60, 300, 900), 0 for the whole session.
        save_video: save the camera video with recordings (the frames analysed, as ``NAME.mp4`` beside the
            timeline, for replay); off by default: it is the participant's face.
    """

    camera: int = 0
    resolution: str = ""
    model: str = "fast"
    device: str = _PIPELINE.device
    detector: str = _PIPELINE.detector
    min_confidence: float = _PIPELINE.min_confidence
    max_faces: int = _PIPELINE.max_faces
    tau_s: float = _PIPELINE.tau_s
    detect: str = _PIPELINE.detect
    mirror: bool = True
    recording_folder: str = ""
    marker_presets: tuple[str, ...] = MARKER_PRESETS
    details: bool = False
    chart_span_s: float = 60.0
    save_video: bool = False

    def __post_init__(self) -> None:
        problems = [
            (self.camera < 0, f"camera must be 0 or more, got {self.camera}"),
            (not self.model.strip(), "model must be fast, accurate or a model card, got an empty name"),
            (self.resolution != "" and not _RESOLUTION.match(self.resolution),
             f"resolution must look like 1280x720, got {self.resolution!r}"),
            (len(self.marker_presets) != len(MARKER_PRESETS),
             f"marker_presets must hold {len(MARKER_PRESETS)} labels, got {len(self.marker_presets)}"),
            (self.chart_span_s not in CHART_SPANS_S,
             f"chart_span_s must be one of {CHART_SPANS_S}, got {self.chart_span_s}"),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)
        self.analyzer_options()  # the pipeline fields: AnalyzerOptions' checks (OptionError is a ValueError)

    @property
    def resolution_wh(self) -> tuple[int, int] | None:
        match = _RESOLUTION.match(self.resolution)
        return (int(match[1]), int(match[2])) if match else None

    def analyzer_options(self, tiles: int = _PIPELINE.tiles) -> AnalyzerOptions:
        """The pipeline's options for these settings (``tiles`` comes from the command line only)."""
        return replace(_PIPELINE, tiles=tiles, **{name: getattr(self, name) for name in PIPELINE_FIELDS})

    def recording_path(self, now: datetime | None = None) -> Path:
        """A new timestamped CSV in the recording folder, e.g. ``emolens-2026-11-22_23-59-01.csv``."""
        folder = Path(self.recording_folder) if self.recording_folder else default_recording_folder()
        return folder / f"emolens-{(now or datetime.now()):%Y-%m-%d_%H-%M-%S}.csv"


def default_recording_folder() -> Path:
    """Documents/Emolens for this user (the platform's documents folder)."""
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)) / "Emolens"


def load_settings(store: QSettings) -> Settings:
    """The saved settings; a missing, malformed or out-of-range entry keeps its default."""
    settings = Settings()
    for item in fields(Settings):
        text = store.value(item.name)
        if text is None:
            continue
        try:
            settings = replace(settings, **{item.name: _typed(json.loads(str(text)), item.default)})
        except (ValueError, TypeError):
            continue
    return settings


def save_settings(store: QSettings, settings: Settings) -> None:
    for item in fields(Settings):
        value = getattr(settings, item.name)
        store.setValue(item.name, json.dumps(list(value) if isinstance(value, tuple) else value))
    store.sync()


def overrides_from_args(args) -> dict:
    """The settings the command line sets for this run: every pipeline option that is not None, and
    ``save_video`` when ``--save-video`` is given."""
    overrides = {name: getattr(args, name) for name in PIPELINE_FIELDS if getattr(args, name, None) is not None}
    return overrides | ({"save_video": True} if getattr(args, "save_video", False) else {})


def _typed(value, default):
    """``value`` as the default's type, or TypeError (JSON has no tuples, and bool is an int)."""
    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            raise TypeError
        return value
    if isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    if isinstance(default, tuple) and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if type(value) is not type(default):
        raise TypeError
    return value
