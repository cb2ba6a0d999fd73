"""One colour per emotion and one per face ID, shared by the live window, annotated videos and the report.

A moderator who watches the window and later reads the report sees each emotion in the same
colour in both. The hues read on the window's dark grey and on the report's white page alike.

Example::

    emotion_hex(["happy", "contempt"])  # ['#f0a500', '#26a69a']
    face_hex(3)                         # '#59a14f'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle

EMOTION_COLORS: dict[str, str] = {
    "angry": "#e53935", "disgust": "#7cb342", "fear": "#8e24aa", "happy": "#f0a500",
    "sad": "#1e88e5", "surprise": "#e377c2", "neutral": "#9e9e9e",
}
SPARE_COLORS = ("#26a69a", "#ec407a", "#8d6e63", "#5c6bc0", "#d4e157", "#78909c")


def emotion_hex(labels: Sequence[str], extra: Mapping[str, str] | None = None) -> list[str]:
    """One ``#rrggbb`` per label, in order: the fixed colour of a known label, else the next spare one.

    ``extra`` adds fixed colours for series that are not emotions (the report's valence line).
    """
    fixed = {**EMOTION_COLORS, **(extra or {})}
    spare = cycle(SPARE_COLORS)
    return [fixed.get(label) or next(spare) for label in labels]


# Tableau 10: distinct at a glance, and none of them is white or black.
FACE_COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
               "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")


def face_hex(face_id: int) -> str:
    """The ``#rrggbb`` of a face ID (IDs start at 1; the ten colours repeat)."""
    return FACE_COLORS[(face_id - 1) % len(FACE_COLORS)]
