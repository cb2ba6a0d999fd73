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
    marker      text of a marker added at this moment, on every row of its frame, else empty
    stimulus    the stimulus on screen (a study's, see ``emolens.study``), else empty
    stimulus_t_s  the position in that stimulus's media, seconds, else empty
    [kp0_x, kp0_y ... kp5_x, kp5_y]   keypoints, only with keypoints=True
    [yaw ... bs_noseSneerRight, lm0_x ...]   behaviour, only with behaviour=True (emolens.behaviour.columns)
    full_search 1 when the detector searched the frame, 0 when ``--detect tracked`` carried its faces
                from the last search (``emolens.follow``); last, so readers of older timelines are unchanged

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
An existing file is replaced only with ``overwrite=True``, and not at once: the new rows go
to a hidden file beside it (``.NAME.*.partial``, locked too), which replaces it (``os.replace``)
when the first block of rows is on disk, while the old file's lock is still held; until
then the old file is as it was, so a run that fails or is interrupted early leaves it
intact. A recorder that fails before its first row removes the file it made, and only
while it holds that file's lock and the path still names it: it never removes a file it
did not create, nor one another recorder put in its place. Devices and pipes (``/dev/null``,
a FIFO) are written as they are: no lock, no fsync, nothing replaced.

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
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from emolens.behaviour.columns import behaviour_columns, behaviour_digits, behaviour_values
from emolens.errors import EmolensError, SettingError
from emolens.native import interrupts_held

try:  # POSIX; elsewhere the output is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
from emolens.types import Faces, Frame

_OPEN_TRIES = 3  # opens of a path that another recorder keeps replacing, before giving up
FACE_COLUMNS = ("face_id", "x", "y", "w", "h", "det_score")
KEYPOINT_COLUMNS = tuple(f"kp{i}_{axis}" for i in range(6) for axis in ("x", "y"))
STIMULUS_COLUMNS = ("stimulus", "stimulus_t_s")
"""Columns added for studies (``emolens.study``); timelines written before them lack them and stay readable."""
SEARCH_COLUMN = "full_search"
"""The last column (added with ``--detect tracked``); timelines written before it lack it and stay readable."""
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def timeline_columns(labels: tuple[str, ...], keypoints: bool = False, behaviour: bool = False,
                     landmarks: bool = False) -> list[str]:
    """The CSV header for a model's labels (``landmarks`` only counts with ``behaviour``)."""
    columns = ["timestamp", "source", "time_s", "frame", *FACE_COLUMNS, *labels, "dominant", "marker",
               *STIMULUS_COLUMNS]
    columns += list(KEYPOINT_COLUMNS) if keypoints else []
    columns += behaviour_columns(landmarks) if behaviour else []
    return columns + [SEARCH_COLUMN]


def writable(text: str) -> str:
    """``text`` as UTF-8 can hold it: the bytes of a file name that are not UTF-8 (Python keeps them as
    surrogates, e.g. ``bad\xff.jpg``) become the text ``\xff``, as Python shows them."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte of a name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def safe_text(text: str) -> str:
    """User text made inert for spreadsheets (no formulas), on one line, writable as UTF-8 (``writable``)."""
    text = " ".join(writable(str(text)).split())
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class Recorder(Protocol):
    """What ``Analyzer.run`` and ``analyze_source`` record into: ``CsvRecorder``, or the batch's Parquet writer."""

    rows: int

    def mark(self, text: str) -> None: ...

    def append(self, frame: Frame, faces: Faces, wall_time: datetime | None = None,
               stimulus: tuple[str, float] | None = None) -> int: ...


class TimelineRows:
    """The timeline's rows as values, one list per row in ``columns`` order: what every recorder writes.

    Values are typed (``timestamp`` a UTC ``datetime``, numbers as ``float``/``int``, text made safe by
    ``safe_text``) and ``None`` where the CSV has an empty cell, so ``CsvRecorder`` formats them as text and
    the batch's Parquet files store them as they are. It holds the markers waiting for the next row and
    each source's clock (``timestamp``, see the module docstring).
    """

    def __init__(self, labels: tuple[str, ...], keypoints: bool = False, behaviour: bool = False,
                 landmarks: bool = False):
        self.labels = labels
        self.keypoints = keypoints
        self.behaviour, self.landmarks = behaviour, landmarks and behaviour
        self.columns = timeline_columns(labels, keypoints, behaviour, landmarks)
        self._markers: list[str] = []
        self._epoch: dict[str, datetime] = {}
        self._last_frame: tuple[str, float] | None = None
        self._latest: datetime | None = None

    def mark(self, text: str) -> None:
        """Attach a marker to the next row (several join with ' | ')."""
        if text.strip():
            self._markers.append(safe_text(text))

    def frame_rows(self, frame: Frame, faces: Faces, wall_time: datetime | None = None,
                   stimulus: tuple[str, float] | None = None) -> list[list]:
        """The rows of one frame (one per face, or one with the face fields empty); ``faces`` needs ``probs``.
        A pending marker goes on every row of the frame, so that rows filtered by ``face_id`` keep it."""
        timestamp = wall_time or self._media_time(frame)
        marker = " | ".join(self._markers) or None
        self._markers.clear()
        shown = [None, None] if stimulus is None else [safe_text(stimulus[0]), float(stimulus[1])]
        source, searched = safe_text(frame.source), int(faces.full_search)
        if not len(faces):
            return [self._sparse_row(timestamp=timestamp, source=source, time_s=float(frame.t_s), frame=frame.index,
                                     marker=marker, stimulus=shown[0], stimulus_t_s=shown[1], full_search=searched)]
        base = [timestamp, source, float(frame.t_s), frame.index]
        # Once per frame, not per face.
        boxes, dominant = faces.xywh.tolist(), faces.probs.argmax(axis=1)
        probs, scores = faces.probs.tolist(), faces.det_score.tolist()
        rows = []
        for index in range(len(faces)):
            face_id = None if faces.face_id is None else int(faces.face_id[index])
            row = base + [face_id, *boxes[index], scores[index], *probs[index], self.labels[dominant[index]],
                          marker, *shown]
            if self.keypoints:
                row += faces.keypoints[index].reshape(-1).tolist()
            if self.behaviour:
                row += behaviour_values(faces, index, self.landmarks)
            rows.append(row + [searched])
        return rows

    def closing_row(self) -> list | None:
        """A marker-only row for markers added after the last frame (``None`` when there are none)."""
        if not self._markers:
            return None
        row = self._sparse_row(timestamp=datetime.now(timezone.utc), marker=" | ".join(self._markers))
        self._markers.clear()
        return row

    def _sparse_row(self, **values) -> list:
        """A row with only the given columns filled (no face, or a closing marker)."""
        return [values.get(column) for column in self.columns]

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


def _cell_formats(timeline: TimelineRows) -> list[Callable[[Any], str]]:
    """How each column's values become CSV text: the time in ISO 8601 UTC, numbers to their column's decimals,
    the rest as it is (``None`` is an empty cell, for every column)."""
    decimals = {"time_s": 3, "x": 1, "y": 1, "w": 1, "h": 1, "det_score": 4, "stimulus_t_s": 3,
                **dict.fromkeys(timeline.labels, 5), **dict.fromkeys(KEYPOINT_COLUMNS, 1),
                **dict(zip(behaviour_columns(timeline.landmarks), behaviour_digits(timeline.landmarks)))}
    places = [decimals.get(column) for column in timeline.columns]
    formats = [str if digits is None else f"{{:.{digits}f}}".format for digits in places]
    formats[timeline.columns.index("timestamp")] = _iso
    return formats


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
        created: whether this recorder created the file (``False`` when it replaces one).
        timeline: the ``TimelineRows`` that makes the rows (markers and clocks); another writer
            may share it and hand this recorder the same rows (``write_rows``).

    Raises:
        EmolensError: the file cannot be created, exists (without ``overwrite``), or is
            being written by another recorder.
    """

    def __init__(self, path: str | os.PathLike, labels: tuple[str, ...], keypoints: bool = False,
                 flush_s: float = 0.0, overwrite: bool = True, behaviour: bool = False,
                 landmarks: bool = False):
        self.path = Path(path)
        self.timeline = TimelineRows(labels, keypoints, behaviour, landmarks)
        self.labels, self.columns = labels, self.timeline.columns
        self._formats = _cell_formats(self.timeline)
        self.flush_s = flush_s
        self.rows = 0
        self._pending: list[str] = []
        self._pending_rows = 0
        self._last_write = self._last_sync = time.monotonic()
        self._good_size = 0
        self._fd: int | None = None
        self._old_fd: int | None = None  # the file being replaced, held locked until the new one has rows
        self._own: Path | None = None  # the file this recorder made, removable while it holds no row
        self.regular = False
        try:
            self._open_locked(overwrite)
            if self.regular and not self.created:
                self._start_replacement()
            self._queue([self.columns], rows=0)
            self._write_pending(sync=True)
        except BaseException:  # Ctrl+C too: no half-made file is left behind
            self.discard()
            raise

    def mark(self, text: str) -> None:
        """Attach a marker to the next row written (several join with ' | ')."""
        self.timeline.mark(text)

    def append(self, frame: Frame, faces: Faces, wall_time: datetime | None = None,
               stimulus: tuple[str, float] | None = None) -> int:
        """Write the rows of one frame (``TimelineRows.frame_rows``); returns how many. ``stimulus``: the
        stimulus on screen and the position in its media (from the player), written on every row.

        Raises:
            EmolensError: the disk is full or the file became unwritable; every row written
                before is kept, the file ends with a complete line and the message counts
                the rows it holds.
        """
        return self.write_rows(self.timeline.frame_rows(frame, faces, wall_time, stimulus))

    def write_rows(self, rows: list[list]) -> int:
        """Write rows of values made by ``self.timeline`` (one frame's, as a block); returns how many."""
        self._queue([self._cells(row) for row in rows], rows=len(rows))
        now = time.monotonic()
        if now - self._last_write >= self.flush_s:
            self._write_pending(sync=now - self._last_sync >= 1.0)
        return len(rows)

    def _cells(self, row: list) -> list[str]:
        return ["" if value is None else text(value) for text, value in zip(self._formats, row)]

    def _queue(self, table: list[list], rows: int) -> None:
        """Add whole lines to the block the next write hands to the OS; ``rows`` of them are timeline rows."""
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(table)
        self._pending.append(text.getvalue())
        self._pending_rows += rows

    def _open_locked(self, overwrite: bool) -> None:
        """Open the output and lock it, making sure the lock is on the file the path names.

        Between the open and the lock another recorder may replace or remove the file (it held
        the lock then); the file opened is then no longer the output, so it is opened again.
        """
        for _ in range(_OPEN_TRIES):
            with interrupts_held():  # a Ctrl+C between creating the output and owning it would leave it behind
                self._fd, self.created = _open_output(self.path, overwrite)
                self._own = self.path if self.created else None
            self.regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
            if not self.regular:
                return
            self._lock()
            if _names(self.path, self._fd):
                return
            self._close_fd()
        raise EmolensError(f"{self.path} keeps being replaced by another process; wait for it to finish "
                           f"or choose another output file")

    def _start_replacement(self) -> None:
        """Keep the existing file (locked) and write to a new hidden one beside it instead."""
        target = Path(os.path.realpath(self.path))  # a symlinked output: the link stays, its target is replaced
        self._old_fd, self._fd = self._fd, None
        try:
            with interrupts_held():  # likewise between mkstemp making the file and owning it
                self._fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
                self._own = Path(name)
        except OSError as error:
            raise EmolensError(f"cannot write {self.path}: {error.strerror or error}") from None
        if hasattr(os, "fchmod"):  # the old file's permissions, not mkstemp's owner-only ones
            os.fchmod(self._fd, stat.S_IMODE(os.fstat(self._old_fd).st_mode))
        self._lock()

    def _finish_replacement(self) -> None:
        """Put the new file (synced, holding rows) in place of the old one, then let the old one go."""
        os.fsync(self._fd)
        if fcntl is None:  # no lock to keep; Windows cannot replace a file that is open
            self._close_old()
        os.replace(self._own, os.path.realpath(self.path))
        self._own = None
        self._close_old()

    def _lock(self) -> None:
        """Take the exclusive lock, or refuse naming the process that holds it (closing the file, removing nothing)."""
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = lock_holder(self._fd)
            self._close_fd()
            self._close_old()
            who = f"another process (pid {holder})" if holder else "another process"
            raise EmolensError(f"{self.path} is being written by {who}; wait for it to finish "
                               f"or choose another output file") from None

    def _write_pending(self, sync: bool, final: bool = False) -> None:
        """Hand the queued rows to the OS (whole blocks; a partial write is cut back on failure); the first
        block of rows (or the end, ``final``) puts a replacing file in place."""
        data = "".join(self._pending).encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            if sync and self.regular:
                os.fsync(self._fd)
            if self._old_fd is not None and (self._pending_rows or final):
                self._finish_replacement()
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
        replacing = self._old_fd is not None
        self.discard()
        reason = "disk full" if error.errno == 28 else (error.strerror or str(error))
        kept = f"the {self.rows} row(s) written before are kept" if self.rows else "no row was written"
        kept += " and the existing file was left as it was" if replacing and not self.rows else ""
        raise EmolensError(f"recording stopped: cannot write {self.path} ({reason}); {kept}") from None

    def _close_fd(self) -> None:
        if self._fd is not None:
            _close(self._fd)
            self._fd = None

    def _close_old(self) -> None:
        if self._old_fd is not None:
            _close(self._old_fd)
            self._old_fd = None

    def _remove_own(self) -> None:
        """Remove the file this recorder made, only if it holds the file's lock (a Ctrl+C may land before it
        was taken) and the path still names that file: never a file another recorder holds or put in its place."""
        if self._own is not None and self._fd is not None and _try_lock(self._fd) and _names(self._own, self._fd):
            self._own.unlink(missing_ok=True)
        self._own = None

    @property
    def closed(self) -> bool:
        return self._fd is None

    def discard(self) -> None:
        """Close without writing what is queued; remove the file if this recorder created it and
        wrote no row (a run that failed or was interrupted before its first frame leaves nothing)."""
        self._pending.clear()
        self._pending_rows = 0
        if self.rows == 0:
            self._remove_own()
        self._close_fd()
        self._close_old()

    def close(self) -> None:
        """Write what is queued, sync and close; pending markers go into a final marker-only row."""
        if self._fd is None:
            return
        closing = self.timeline.closing_row()
        if closing is not None:
            self._queue([self._cells(closing)], rows=1)
        self._write_pending(sync=True, final=True)
        self._close_fd()

    def __enter__(self) -> CsvRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def replace_private_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (written to a hidden file beside it first), readable by its
    owner only: a crash leaves the old file or the new one, never half of one.

    Raises:
        OSError: the folder cannot be written; the old file stays as it was.
    """
    fd, staged = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise


def move_without_replacing(source: Path, target: Path) -> None:
    """Give ``source`` the name ``target`` unless that name is taken, where a rename would replace the file.

    Raises:
        OSError: ``FileExistsError`` when ``target`` exists; ``source`` is then left as it was.
    """
    os.link(source, target)
    source.unlink()


def file_in_the_way(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists but is not a folder (a file where a folder must be)."""
    return next((part for part in (folder, *folder.parents) if part.exists() and not part.is_dir()), None)


def partial_path(path: Path) -> Path:
    """The hidden file beside ``path`` that an output is written to first; the same suffix, so that a writer
    that picks its format by the name (OpenCV, Qt) picks the right one."""
    return path.with_name(f".{path.name}.partial{path.suffix}")


def publish(partial: Path, target: Path, overwrite: bool) -> None:
    """Give the finished ``partial`` the name ``target``, replacing a file there only with ``overwrite``.

    Raises:
        OSError: ``FileExistsError`` when ``target`` exists (without ``overwrite``); ``partial`` is then kept.
    """
    if overwrite:
        os.replace(partial, target)
    else:
        move_without_replacing(partial, target)


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing regular file unless ``overwrite`` (devices and pipes are written as they are).

    Raises:
        SettingError: the file exists.
    """
    if not overwrite and path.is_file():
        raise SettingError(f"{path} already exists; pass {{overwrite}} to replace it, or choose another file")


def _open_output(path: Path, overwrite: bool) -> tuple[int, bool]:
    """A write descriptor on ``path`` (not yet truncated: the lock comes first) and whether it was created."""
    flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666), True
        except FileExistsError:
            pass
        refuse_existing(path, overwrite)
        return os.open(path, flags), False
    except OSError as error:
        raise EmolensError(f"cannot write {path}: {error.strerror or error}") from None


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open on ``fd`` (not one put in its place, nor nothing)."""
    try:
        named, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _try_lock(fd: int) -> bool:
    """Whether this process holds (or now takes) the exclusive lock on ``fd``; True where there are no locks."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


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
