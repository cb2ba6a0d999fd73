"""The pipeline's settings, checked when made: light to import (no MediaPipe, no ONNX Runtime).

The CLI, the window, the service, ``batch`` and the API all build an ``AnalyzerOptions``; its
checks are the only ones, so every front end refuses the same values with the same words. An
``OptionError`` names the field (``tau_s``); the CLI says the flag (``--smoothing``) instead.

Example::

    options = AnalyzerOptions(detector="full", tiles=2)
    replace(options, tau_s=-1)      # OptionError: tau_s must be a number of seconds, 0 or more, got -1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emolens.errors import SettingError

STAGES = ("decode", "detect", "crop", "classify", "track", "record")
"""The per-frame stages ``Analyzer.run`` times, in the order a frame travels."""
DEVICES = ("auto", "cpu", "cuda")
DETECTOR_MODELS = ("short", "full")
DETECT_MODES = ("tracked", "full")
MAX_TILES = 8
"""At most this many tiles a side: beyond it a tile of a 640x480 frame is smaller than a face."""


class OptionError(SettingError):
    """An option out of its range. ``field`` is the ``AnalyzerOptions`` field, ``problem`` the rest
    of the sentence ("must be 0 or more, got -1"), so a front end can name the option its own way."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{{{field}}} {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class AnalyzerOptions:
    """Settings shared by the CLI, the GUI and the API; each field's default is the product's.

    Attributes:
        model: ``fast`` (the shipped default), ``accurate`` (the shipped ensemble, see ``emolens.card.MODEL_NAMES``),
            or a model card (.json) or its .onnx; ``None`` is ``fast``.
        device: ``auto`` (CUDA if it loads, else CPU), ``cpu`` or ``cuda``.
        detector: ``short`` (near faces, fastest) or ``full`` (small, distant faces too).
        tiles: also detect on ``tiles x tiles`` overlapping tiles (1 = off), for rooms of viewers.
        squares: detect on overlapping full-height squares of the frame (False: one letterboxed
            pass, faster, finds only faces over about a third of the frame's width; None: auto,
            squares for the short-range detector on wide frames, see ``emolens.detect``).
        min_confidence: the score, 0..1, a face must reach in one of its looks.
        second_look: look again, closer, at faces scoring between half of ``min_confidence`` and
            ``min_confidence`` (see ``emolens.detect``); False: one look, a little faster.
        max_faces: keep at most this many faces per frame, most confident first (0 = all).
        detect: ``tracked``: the full search every few frames, the faces it found carried along their
            motion in between (``emolens.follow``); ``full``: the full search on every frame.
        max_gap_s: how long an unseen face keeps its ID.
        tau_s: score smoothing time constant in seconds (0 = raw scores).
        threads: classifier CPU threads (0 = automatic: one, leaving the other core to detection).
        behaviour: also read landmarks, action units, head pose, eyes, attention and blinks.
        behaviour_hz: landmarker readings per face per second of media time (0 = every frame);
            values are held in between (see ``emolens.behaviour.track`` for what that costs).
        behaviour_budget_hz: at most this many readings per second over all faces in view
            (0 = no cap): with more faces, each is read less often and the frame rate holds.
        attention_yaw_deg, attention_pitch_deg: half-angles of the "looking at the camera" cone.

    Raises:
        OptionError: a value out of its range (NaN and infinity are out of every range).
    """

    model: str | None = "fast"
    device: str = "auto"
    detector: str = "short"
    tiles: int = 1
    squares: bool | None = None
    min_confidence: float = 0.6
    second_look: bool = True
    max_faces: int = 0
    detect: str = "tracked"
    max_gap_s: float = 1.0
    tau_s: float = 0.5
    threads: int = 0
    behaviour: bool = False
    behaviour_hz: float = 15.0
    behaviour_budget_hz: float = 30.0
    attention_yaw_deg: float = 25.0
    attention_pitch_deg: float = 20.0

    def __post_init__(self) -> None:
        seconds = "must be a number of seconds, 0 or more"
        rate = "must be 0 or more"
        checks = (
            ("device", self.device in DEVICES, f"must be one of {', '.join(DEVICES)}, got {self.device!r}"),
            ("detector", self.detector in DETECTOR_MODELS,
             f"must be one of {', '.join(DETECTOR_MODELS)}, got {self.detector!r}"),
            ("tiles", 1 <= self.tiles <= MAX_TILES, f"must be between 1 and {MAX_TILES}, got {self.tiles}"),
            ("min_confidence", 0.0 <= self.min_confidence <= 1.0,
             f"must be between 0 and 1, got {self.min_confidence}"),
            ("max_faces", self.max_faces >= 0, f"must be 0 or more, got {self.max_faces}"),
            ("detect", self.detect in DETECT_MODES, f"must be one of {', '.join(DETECT_MODES)}, got {self.detect!r}"),
            ("max_gap_s", _non_negative(self.max_gap_s), f"{seconds}, got {self.max_gap_s}"),
            ("tau_s", _non_negative(self.tau_s), f"{seconds}, got {self.tau_s}"),
            ("threads", self.threads >= 0, f"must be 0 or more, got {self.threads}"),
            ("behaviour_hz", _non_negative(self.behaviour_hz), f"{rate}, got {self.behaviour_hz}"),
            ("behaviour_budget_hz", _non_negative(self.behaviour_budget_hz), f"{rate}, got {self.behaviour_budget_hz}"),
            ("attention_yaw_deg", 0.0 < self.attention_yaw_deg <= 90.0,
             f"must be above 0 and at most 90 degrees, got {self.attention_yaw_deg}"),
            ("attention_pitch_deg", 0.0 < self.attention_pitch_deg <= 90.0,
             f"must be above 0 and at most 90 degrees, got {self.attention_pitch_deg}"),
        )
        for field, ok, problem in checks:
            if not ok:
                raise OptionError(field, problem)


def _non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0
