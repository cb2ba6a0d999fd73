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


def parse_label_map(items: list[str]) -> dict[str, str]:
    """``--map-label NAME=EMOTION`` items as ``{name: emotion}``, lower-cased (EMOTION may be ``drop``).

    Raises:
        DataError: an item is not NAME=EMOTION.
    """
    label_map = {}
    for item in items:
        name, _, emotion = item.lower().partition("=")
        if not name.strip() or not emotion.strip():
            raise DataError(f"--map-label {item!r}: expected NAME=EMOTION (a class folder or label, then an emotion "
                            f"or drop), e.g. --map-label contempt=drop")
        label_map[name.strip()] = emotion.strip()
    return label_map


def check_label_map(label_map: dict[str, str], labels: tuple[str, ...], whose: str = "the model's labels") -> None:
    """Refuse a mapping to an emotion outside ``labels`` (any spelling of ``LABEL_ALIASES`` counts as its label).

    Raises:
        DataError: names the mapping, the unknown emotion and ``labels``.
    """
    for name, emotion in label_map.items():
        if emotion != "drop" and LABEL_ALIASES.get(emotion, emotion) not in labels:
            raise DataError(f"--map-label {name}={emotion}: {emotion!r} is not one of {whose} ({', '.join(labels)}); "
                            f"map {name} to one of them, or to drop")
