"""The CSV timeline: one row per face per processed frame, crash-safe.

Schema (columns in this order; emotion columns follow the model card's label order)::

    timestamp   ISO 8601 UTC time of the frame (see below), e.g. 2026-11-22T23:59:01.250Z
    source      the input file, image or camera the frame came from
    time_s      seconds since the source started (media time for files, wall clock for cameras)
    frame       0-based frame index in its source
    face_id     stable track ID (empty when the frame has no face)
    x, y, w, h  face box in source-frame pixels (left, top, width, height)
    det_score   detector confidence, 0..1
    angry ... neutral   raw model probabilities (sum to 1)
    dominant    the label with the highest probability
    marker      text of a marker added at this moment, else empty
    [kp0_x, kp0_y ... kp5_x, kp5_y]   keypoints, only with keypoints=True
    [yaw ... bs_noseSneerRight, lm0_x ...]   behaviour, only with behaviour=True (emolens.behaviour_columns)

``timestamp`` is the UTC time of the frame: the moment it was captured for a camera, and
the recording's start plus ``time_s`` for files. A frame with no face writes one row with
the face fields empty, so coverage is explicit. Each frame's rows are written as one
block and flushed to the OS at least every ``flush_s`` seconds (default: every frame), so
``kill -9`` loses nothing that was flushed and never leaves half a row; ``os.fsync`` runs
at most once a second against power loss. User text (markers, file names) that a
spreadsheet would execute (``= + - @``) is prefixed with ``'``.

Example::

    with CsvRecorder("session.csv", card.labels) as recorder:
        recorder.mark("ad starts")
        recorder.append(frame, faces)
"""

from __future__ import annotations

import csv
import io
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from emolens.behaviour_columns import behaviour_cells, behaviour_columns, empty_behaviour_cells
from emolens.errors import EmolensError
from emolens.types import Faces, Frame

FACE_COLUMNS = ("face_id", "x", "y", "w", "h", "det_score")
KEYPOINT_COLUMNS = tuple(f"kp{i}_{axis}" for i in range(6) for axis in ("x", "y"))
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def timeline_columns(labels: tuple[str, ...], keypoints: bool = False, behaviour: bool = False,
                     landmarks: bool = False) -> list[str]:
    """The CSV header for a model's labels (``landmarks`` only counts with ``behaviour``)."""
    columns = ["timestamp", "source", "time_s", "frame", *FACE_COLUMNS, *labels, "dominant", "marker"]
    columns += list(KEYPOINT_COLUMNS) if keypoints else []
    return columns + behaviour_columns(landmarks) if behaviour else columns


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_text(text: str) -> str:
    """User text made inert for spreadsheets (no formulas), on one line."""
    text = " ".join(str(text).split())
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class CsvRecorder:
    """Append frames' faces to a CSV timeline; see the module docstring for the schema.

    Args:
        path: the CSV file; its folder is created. An existing file is replaced.
        labels: emotion labels in the model's output order (``card.labels``).
        keypoints: add the 12 keypoint columns.
        behaviour: add the behaviour columns (``emolens.behaviour_columns``); ``landmarks`` adds
            the 956 landmark columns to them.
        flush_s: flush to the OS at least this often (0 = after every frame).
    """

    def __init__(self, path: str | os.PathLike, labels: tuple[str, ...], keypoints: bool = False,
                 flush_s: float = 0.0, behaviour: bool = False, landmarks: bool = False):
        self.path = Path(path)
        self.labels = labels
        self.keypoints = keypoints
        self.behaviour, self.landmarks = behaviour, landmarks and behaviour
        self.columns = timeline_columns(labels, keypoints, behaviour, landmarks)
        self.flush_s = flush_s
        self.rows = 0
        self._pending_markers: list[str] = []
        self._epoch: dict[str, datetime] = {}
        self._last_flush = self._last_sync = time.monotonic()
        self._good_size = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as error:
            raise EmolensError(f"cannot write {self.path}: {error.strerror or error}") from None
        self._write_block([self.columns])
        self._flush(sync=True)

    def mark(self, text: str) -> None:
        """Attach a marker to the next row written (several join with ' | ')."""
        if text.strip():
            self._pending_markers.append(safe_text(text))

    def append(self, frame: Frame, faces: Faces, wall_time: datetime | None = None) -> int:
        """Write the rows of one frame; returns how many. ``faces`` needs ``probs``.

        Raises:
            EmolensError: the disk is full or the file became unwritable; every row written
                before is kept and the file ends with a complete line.
        """
        timestamp = _iso(wall_time or self._media_time(frame))
        marker = " | ".join(self._pending_markers)
        base = [timestamp, safe_text(frame.source), f"{frame.t_s:.3f}", frame.index]
        rows = [] if len(faces) else [self._sparse_row(timestamp=timestamp, source=base[1], time_s=base[2],
                                                         frame=frame.index, marker=marker)]
        # Once per frame, not per face (a frame with no face may carry no probabilities).
        boxes, dominant = faces.xywh, (faces.probs.argmax(axis=1) if len(faces) else ())
        for index in range(len(faces)):
            x, y, w, h = boxes[index]
            probs = faces.probs[index]
            face_id = "" if faces.face_id is None else int(faces.face_id[index])
            row = base + [face_id, f"{x:.1f}", f"{y:.1f}", f"{w:.1f}", f"{h:.1f}", f"{faces.det_score[index]:.4f}",
                          *(f"{p:.5f}" for p in probs), self.labels[dominant[index]],
                          marker if index == 0 else ""]
            if self.keypoints:
                row += [f"{v:.1f}" for v in faces.keypoints[index].reshape(-1)]
            if self.behaviour:
                row += (empty_behaviour_cells(self.landmarks) if faces.head_pose is None
                        else behaviour_cells(faces, index, self.landmarks))
            rows.append(row)
        self._write_block(rows)
        self._pending_markers.clear()
        self.rows += len(rows)
        now = time.monotonic()
        if now - self._last_flush >= self.flush_s:
            self._flush(sync=now - self._last_sync >= 1.0)
        return len(rows)

    def _sparse_row(self, **values) -> list:
        """A row with only the given columns filled (no face, or a closing marker)."""
        return [values.get(column, "") for column in self.columns]

    def _media_time(self, frame: Frame) -> datetime:
        """The recording's start (per source) plus the frame's media time, in UTC."""
        start = self._epoch.setdefault(frame.origin or frame.source,
                                       datetime.now(timezone.utc) - timedelta(seconds=frame.t_s))
        return start + timedelta(seconds=frame.t_s)

    def _write_block(self, rows: list[list]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        try:
            self._file.write(text.getvalue())
        except OSError as error:
            self._fail(error)

    def _flush(self, sync: bool) -> None:
        try:
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())
                self._last_sync = time.monotonic()
        except OSError as error:
            self._fail(error)
        self._good_size = self._file.tell()
        self._last_flush = time.monotonic()

    def _fail(self, error: OSError) -> None:
        """Cut the file back to the last complete flushed block, close it, and report."""
        try:
            os.truncate(self.path, self._good_size)
        except OSError:
            pass
        self._close_quietly()
        reason = "disk full" if error.errno == 28 else (error.strerror or str(error))
        raise EmolensError(f"recording stopped: cannot write {self.path} ({reason}); "
                           f"the {self.rows} row(s) written before are kept") from None

    def _close_quietly(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        """Flush, sync and close; pending markers go into a final marker-only row."""
        if self._file.closed:
            return
        if self._pending_markers:
            self._write_block([self._sparse_row(timestamp=_iso(datetime.now(timezone.utc)),
                                                marker=" | ".join(self._pending_markers))])
            self._pending_markers.clear()
        self._flush(sync=True)
        self._file.close()

    def __enter__(self) -> CsvRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
