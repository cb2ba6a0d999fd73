"""Emotion label names: the canonical set and the spellings public data sets use."""

from __future__ import annotations

from emolens.errors import EmolensError

#: The canonical order of emotion labels: the index order of the FER2013 CSV.
FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Other spellings met in public data sets, mapped to the canonical name.
LABEL_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}


class DataError(EmolensError, ValueError):
    """A data set that cannot be loaded as asked; the message says what to change."""


def normalise_label(name: str, label_map: dict[str, str] | None = None) -> str | None:
    """Canonical label for ``name``; ``None`` if the user mapped it to ``drop``.

    Raises:
        DataError: the label is unknown; the message names it and how to map or drop it.
    """
    key = name.strip().lower()
    if label_map and key in label_map:
        mapped = label_map[key]
        return None if mapped == "drop" else LABEL_ALIASES.get(mapped, mapped)
    if key in LABEL_ALIASES:
        return LABEL_ALIASES[key]
    raise DataError(
        f"unknown emotion label {name!r}: map it with --map-label {key}=<emotion> "
        f"or drop it with --map-label {key}=drop (known: {', '.join(FER2013_LABELS)})"
    )
