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
    [yaw ... bs_noseSneerRight, lm0_x ...]   behaviour, only with behaviour=True (emolens.behaviour.columns)

``timestamp`` is the UTC time of the frame: the moment it was captured for a camera, and
the recording's start plus ``time_s`` for files. A frame with no face writes one row with
the face fields empty, so coverage is explicit. Each frame's rows are written as one
block and handed to the OS at least every ``flush_s`` seconds (default: every frame), so
``kill -9`` loses nothing that was written and never leaves half a row; ``os.fsync`` runs
at least once a second (with the frame that follows a second's gap) against power loss.
User text (markers, file names) that a spreadsheet would execute (``= + - @``) is
prefixed with ``'``.

The file is the recording in progress: while a recorder has it open it holds an exclusive
lock on it (``flock``; the kernel drops it if the process dies), so a second recorder
asked for the same file is refused with the holder's pid instead of interleaving rows.
An existing file is replaced only with ``overwrite=True``; a recorder that fails before
its first row removes the file if it created it, and never removes one it did not create.
Devices and pipes (``/dev/null``, a FIFO) are written as they are: no lock, no fsync.

Example::

    with CsvRecorder("session.csv", card.labels) as recorder:
        recorder.mark("ad starts")
        recorder.append(frame, faces)
"""

from __future__ import annotations

import csv
import io
import os
import stat
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from emolens.behaviour.columns import behaviour_cells, behaviour_columns, empty_behaviour_cells
from emolens.errors import EmolensError

try:  # POSIX; elsewhere the output is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
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
        path: the CSV file; its folder is created.
        labels: emotion labels in the model's output order (``card.labels``).
        keypoints: add the 12 keypoint columns.
        behaviour: add the behaviour columns (``emolens.behaviour.columns``); ``landmarks`` adds
            the 956 landmark columns to them.
        flush_s: hand rows to the OS at least this often (0 = after every frame).
        overwrite: replace an existing file (the window's recorder and tests); ``emolens
            analyze`` passes its ``--overwrite``.

    Attributes:
        rows: rows written to the file so far (not counting the header); after a failure,
            exactly the rows the file holds.
        created: whether this recorder created the file.

    Raises:
        EmolensError: the file cannot be created, exists (without ``overwrite``), or is
            being written by another recorder.
    """

    def __init__(self, path: str | os.PathLike, labels: tuple[str, ...], keypoints: bool = False,
                 flush_s: float = 0.0, overwrite: bool = True, behaviour: bool = False,
                 landmarks: bool = False):
        self.path = Path(path)
        self.labels = labels
        self.keypoints = keypoints
        self.behaviour, self.landmarks = behaviour, landmarks and behaviour
        self.columns = timeline_columns(labels, keypoints, behaviour, landmarks)
        self.flush_s = flush_s
        self.rows = 0
        self._pending: list[str] = []
        self._pending_rows = 0
        self._pending_markers: list[str] = []
        self._epoch: dict[str, datetime] = {}
        self._last_frame: tuple[str, float] | None = None
        self._latest: datetime | None = None
        self._last_write = self._last_sync = time.monotonic()
        self._good_size = 0
        self._fd: int | None = None
        self._fd, self.created = _open_output(self.path, overwrite)
        self.regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        try:
            if self.regular:
                self._lock()
                try:
                    os.ftruncate(self._fd, 0)
                except OSError as error:
                    self._fail(error)
            self._queue([self.columns], rows=0)
            self._write_pending(sync=True)
        except BaseException:  # Ctrl+C too: no half-made file is left behind
            self.discard()
            raise

    def mark(self, text: str) -> None:
        """Attach a marker to the next row written (several join with ' | ')."""
        if text.strip():
            self._pending_markers.append(safe_text(text))

    def append(self, frame: Frame, faces: Faces, wall_time: datetime | None = None) -> int:
        """Write the rows of one frame; returns how many. ``faces`` needs ``probs``.

        Raises:
            EmolensError: the disk is full or the file became unwritable; every row written
                before is kept, the file ends with a complete line and the message counts
                the rows it holds.
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
        self._queue(rows, rows=len(rows))
        self._pending_markers.clear()
        now = time.monotonic()
        if now - self._last_write >= self.flush_s:
            self._write_pending(sync=now - self._last_sync >= 1.0)
        return len(rows)

    def _sparse_row(self, **values) -> list:
        """A row with only the given columns filled (no face, or a closing marker)."""
        return [values.get(column, "") for column in self.columns]

    def _media_time(self, frame: Frame) -> datetime:
        """The recording's start (per source run) plus the frame's media time, in UTC.

        A source that starts again (the same file given twice, ``time_s`` going back) gets
        a new start, no earlier than the last timestamp written (a file's media time runs ahead
        of the wall clock when it is analysed faster than real time), so runs never overlap.
        """
        key = frame.origin or frame.source  # the images of a folder share one clock
        previous, self._last_frame = self._last_frame, (key, frame.t_s)
        if previous is None or previous[0] != key or frame.t_s < previous[1]:
            start = max(datetime.now(timezone.utc), self._latest or datetime.min.replace(tzinfo=timezone.utc))
            self._epoch[key] = start - timedelta(seconds=frame.t_s)
        self._latest = self._epoch[key] + timedelta(seconds=frame.t_s)
        return self._latest

    def _queue(self, table: list[list], rows: int) -> None:
        """Add whole lines to the block the next write hands to the OS; ``rows`` of them are timeline rows."""
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(table)
        self._pending.append(text.getvalue())
        self._pending_rows += rows

    def _lock(self) -> None:
        """Take the exclusive lock, or refuse naming the process that holds it."""
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock_holder(self._fd)
            os.close(self._fd)
            self._fd = None
            who = f"another process (pid {holder})" if holder else "another process"
            raise EmolensError(f"{self.path} is being written by {who}; wait for it to finish "
                               f"or choose another output file") from None

    def _write_pending(self, sync: bool) -> None:
        """Hand the queued rows to the OS (whole blocks; a partial write is cut back on failure)."""
        data = "".join(self._pending).encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if sync and self.regular:
                os.fsync(self._fd)
        except OSError as error:
            self._fail(error)
        self.rows += self._pending_rows
        self._good_size += len(data)
        self._pending.clear()
        self._pending_rows = 0
        now = time.monotonic()
        self._last_write = now
        if sync:
            self._last_sync = now

    def _fail(self, error: OSError) -> None:
        """Cut the file back to the last complete block, close it, and report."""
        if self.regular:
            try:
                os.ftruncate(self._fd, self._good_size)
            except OSError:
                pass
        self._pending.clear()
        self._pending_rows = 0
        self._close_fd()
        if self.rows == 0:
            self._remove_if_created()
        reason = "disk full" if error.errno == 28 else (error.strerror or str(error))
        kept = f"the {self.rows} row(s) written before are kept" if self.rows else "no row was written"
        raise EmolensError(f"recording stopped: cannot write {self.path} ({reason}); {kept}") from None

    def _close_fd(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def _remove_if_created(self) -> None:
        if self.created and self.path.is_file():
            self.path.unlink(missing_ok=True)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def discard(self) -> None:
        """Close without writing what is queued; remove the file if this recorder created it and
        wrote no row (a run that failed or was interrupted before its first frame leaves nothing)."""
        self._pending.clear()
        self._pending_rows = 0
        self._close_fd()
        if self.rows == 0:
            self._remove_if_created()

    def close(self) -> None:
        """Write what is queued, sync and close; pending markers go into a final marker-only row."""
        if self._fd is None:
            return
        if self._pending_markers:
            self._queue([self._sparse_row(timestamp=_iso(datetime.now(timezone.utc)),
                                          marker=" | ".join(self._pending_markers))], rows=1)
            self._pending_markers.clear()
        self._write_pending(sync=True)
        self._close_fd()

    def __enter__(self) -> CsvRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _open_output(path: Path, overwrite: bool) -> tuple[int, bool]:
    """A write descriptor on ``path`` (not yet truncated: the lock comes first) and whether it was created."""
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            pass
        if not overwrite and path.is_file():
            raise EmolensError(f"{path} already exists; pass --overwrite to replace it, or choose another file")
        return os.open(path, flags), False
    except OSError as error:
        raise EmolensError(f"cannot write {path}: {error.strerror or error}") from None


def lock_holder(fd: int) -> int | None:
    """The pid holding a lock on ``fd``'s file, from ``/proc/locks`` (Linux); ``None`` if unknown."""
    info = os.fstat(fd)
    wanted = (os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    try:
        with open("/proc/locks") as locks:
            for line in locks:
                fields = line.split()
                if "->" in fields or len(fields) < 6:
                    continue
                major, minor, inode = fields[5].split(":")
                if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                    return int(fields[4])
    except (OSError, ValueError):
        pass
    return None
