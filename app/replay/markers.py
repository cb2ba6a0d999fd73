"""Markers added or edited during replay, kept in a file of their own beside the timeline.

The timeline CSV is never written: replay's markers go to ``SESSION.markers.csv`` (``time,label``
rows in seconds, the format ``emolens analyze --markers`` reads, so they can be merged into a new
analysis). Each save writes the whole list to a hidden file beside it and renames it into place
(``os.replace``), so a crash leaves the previous list or the new one, never half of one. When that
file exists, replay opens with its markers instead of the timeline's.

Example::

    markers = replay_markers(recording)                  # DataFrame: time_s, text
    save_markers(markers_path(recording.csv), markers)
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pandas as pd

from emolens.errors import EmolensError
from emolens.markers import read_markers
from emolens.record import safe_text
from emolens.replay.recording import Recording
from emolens.report.timeline import display_text


def markers_path(csv_path: Path) -> Path:
    """Where replay keeps the markers of ``csv_path``: ``NAME.markers.csv`` beside it."""
    return csv_path.with_name(f"{csv_path.stem}.markers.csv")


def replay_markers(recording: Recording) -> pd.DataFrame:
    """``time_s`` and ``text`` of each marker, in time order: the saved replay markers when there
    are some, else the timeline's own.

    Raises:
        EmolensError: the markers file cannot be read (it names the line).
    """
    path = markers_path(recording.csv)
    if not path.is_file():
        return recording.timeline.markers[["time_s", "text"]].copy()
    if _header_only(path):  # every marker was deleted in an earlier replay
        return pd.DataFrame({"time_s": pd.Series(dtype=float), "text": pd.Series(dtype=object)})
    saved = [marker for marker in read_markers(path) if marker.seconds is not None]
    texts = display_text(pd.Series([marker.label for marker in saved], dtype=object))
    markers = pd.DataFrame({"time_s": [float(marker.seconds) for marker in saved], "text": texts})
    return markers.sort_values("time_s", kind="stable").reset_index(drop=True)


def save_markers(path: Path, markers: pd.DataFrame) -> None:
    """Write ``markers`` (``time_s``, ``text``) to ``path`` atomically.

    Raises:
        EmolensError: the folder cannot be written (the previous file stays as it was).
    """
    try:
        with tempfile.NamedTemporaryFile("w", newline="", encoding="utf-8", dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".partial", delete=False) as file:
            partial = Path(file.name)
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(["time", "label"])
            for time_s, text in markers[["time_s", "text"]].itertuples(index=False):
                writer.writerow([f"{time_s:.3f}", safe_text(text)])
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except OSError as error:
        if "partial" in locals():
            partial.unlink(missing_ok=True)
        raise EmolensError(f"cannot save the markers to {path}: {error.strerror or error}") from None


def _header_only(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8-sig").split() == ["time,label"]
    except (OSError, UnicodeDecodeError):
        return False  # read_markers says what is wrong with it
