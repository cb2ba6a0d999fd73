"""Stimulus markers from a file (a presentation log), merged into a timeline as it is recorded.

A markers file is a CSV of ``time,label`` rows; a first row that is not a time is a header.
``time`` is either seconds since the start of each input (``12.5``), or an ISO 8601 time
(``2026-03-02T14:05:12.250Z``; without a zone, this computer's local time) matched against
the timeline's ``timestamp`` column: a camera's or stream's capture time (for a file, the
analysis start plus media time, so give files seconds). A marker lands on the first frame
at or after its time; seconds markers are merged into every input, as when several viewers
watched the same stimulus. Any fault in the file is one ``EmolensError`` naming the line.

Example (``events.csv``)::

    time,label
    0,intro
    12.5,ad starts
    42.0,ad ends

    markers = read_markers("events.csv")
    feed = MarkerFeed(recorder, markers)          # use feed where the recorder was used
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from emolens.errors import EmolensError
from emolens.record import CsvRecorder
from emolens.types import Faces, Frame


@dataclass(frozen=True)
class Marker:
    """One marker: ``seconds`` since an input's start, or an absolute UTC ``moment``; and its label."""

    label: str
    seconds: float | None = None
    moment: datetime | None = None


def parse_time(text: str) -> float | datetime | None:
    """Seconds (a non-negative number) or an aware UTC datetime from ISO 8601; None if it is neither."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.astimezone()).astimezone(timezone.utc)


def read_markers(path: str | os.PathLike) -> list[Marker]:
    """The markers of a ``time,label`` CSV file, in time order.

    Raises:
        EmolensError: the file is missing or unreadable, or a row has no label or a time that is
            neither seconds nor an ISO 8601 time (the message names the line).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.reader(file))
    except FileNotFoundError:
        raise EmolensError(f"markers file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise EmolensError(f"cannot read markers file {path}: {error}") from None
    numbered = [(number, row) for number, row in enumerate(rows, 1) if any(cell.strip() for cell in row)]
    if numbered and parse_time(numbered[0][1][0]) is None:
        numbered = numbered[1:]  # a header
    if not numbered:
        raise EmolensError(f"markers file {path} has no markers (expected rows of time,label)")
    markers = []
    for number, row in numbered:
        where = f"markers file {path}, line {number}"
        if len(row) < 2 or not row[1].strip():
            raise EmolensError(f"{where}: expected time,label, got {','.join(row)!r}")
        when = parse_time(row[0])
        if when is None:
            raise EmolensError(f"{where}: {row[0].strip()!r} is neither seconds (0 or more) nor an ISO 8601 time")
        label = row[1].strip()
        markers.append(Marker(label, moment=when) if isinstance(when, datetime) else Marker(label, seconds=when))
    return sorted(markers, key=lambda m: (m.seconds is None, m.seconds or 0.0, m.moment or datetime.min))


class MarkerFeed:
    """A recorder stand-in for ``Analyzer.run`` that marks each due marker before a frame's rows.

    Each source (an input: a video, a camera, a folder) gets its own pass over the markers.
    ``left_over()`` says, per source, how many markers fell after its last frame.

    Args:
        recorder: where rows and markers go.
        markers: from ``read_markers``.
    """

    def __init__(self, recorder: CsvRecorder, markers: list[Marker]):
        self.recorder = recorder
        self.markers = markers
        self.merged = 0
        self._pending: dict[str, list[Marker]] = {}
        self._start: dict[str, datetime] = {}

    def append(self, frame: Frame, faces: Faces) -> int:
        source = frame.origin or frame.source
        if source not in self._pending:
            self._pending[source] = list(self.markers)
            # The same start the recorder gives this source's timestamps (to a few ms).
            self._start[source] = datetime.now(timezone.utc) - timedelta(seconds=frame.t_s)
        pending = self._pending[source]
        now = self._start[source] + timedelta(seconds=frame.t_s)
        due = [m for m in pending if (m.seconds is not None and m.seconds <= frame.t_s + 1e-9)
               or (m.moment is not None and m.moment <= now)]
        for marker in due:
            self.recorder.mark(marker.label)
            pending.remove(marker)
        self.merged += len(due)
        return self.recorder.append(frame, faces)

    def left_over(self) -> dict[str, int]:
        """Sources with markers after their last frame, and how many."""
        return {source: len(pending) for source, pending in self._pending.items() if pending}
