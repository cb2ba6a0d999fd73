"""Load and check a CSV timeline (the schema of ``emolens.record``) for the report.

A file may hold several sources one after the other (``emolens analyze a.mp4 b.mp4``). Each
consecutive run of one ``source`` becomes a session of its own, because its ``time_s``
restarts; so does each run of one source where ``time_s`` steps back (``emolens analyze X X``,
two recordings concatenated, a file edited by hand), with a warning naming the line. Rows
whose time keeps going back (two steps back in a row: a file sorted backwards) are refused.
A marker-only row after the last frame belongs to the last session.

Bad input raises ``EmolensError`` with one line: an empty file, a file that is not a
timeline, a missing column, a value that is not a number, a probability outside 0-1, or an
incomplete row inside the file. A last line cut off by a crash (no final newline) is left out with a warning.

Example::

    timelines, warnings = load_timelines(Path("session.csv"))
    timelines[0].faces.groupby("face_id")["happy"].mean()
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from emolens.errors import EmolensError
from emolens.record import FACE_COLUMNS, KEYPOINT_COLUMNS, SEARCH_COLUMN, STIMULUS_COLUMNS, timeline_columns, writable
from emolens.report.behaviour import BEHAVIOUR_COLUMNS

REQUIRED_COLUMNS = tuple(column for column in timeline_columns(())
                         if column not in (*STIMULUS_COLUMNS, SEARCH_COLUMN))
HEAD_POSE_COLUMNS = ("yaw", "pitch")  # kept where recorded with behaviour (a study's quality table)
BOX_COLUMNS = FACE_COLUMNS[1:]  # x, y, w, h, det_score
_TAIL_BYTES = 1 << 16
# safe_text() in emolens.record prefixes these with ' so spreadsheets do not run them;
# each part of a joined "a | b" marker was escaped on its own.
_ESCAPED_TEXT = r"(?:^|(?<=\| ))'(?=[=+\-@])"


@dataclass(frozen=True)
class Timeline:
    """One session: one source of one timeline file.

    Attributes:
        name: the file's stem, followed by the source's file name when the file holds several.
        labels: the emotion labels, in the file's column order.
        faces: one row per face per frame: ``time_s`` (float64), ``frame`` and ``face_id``
            (int64), the box ``x``, ``y``, ``w``, ``h`` (float32 pixels) and ``det_score``, one
            float32 probability column per label, ``dominant`` (categorical over ``labels``); in
            file order. Timelines recorded with behaviour also keep ``attentive``,
            ``expressiveness``, ``blink``, ``yaw`` and ``pitch`` (float32, NaN where unread).
            Timelines of a study also keep ``stimulus`` (str, NaN outside any) and
            ``stimulus_t_s`` (float64), here and in ``frames``.
        frames: one row per processed frame: ``frame``, ``time_s``, ``faces`` (how many).
        markers: ``time_s`` and ``text`` (as the user typed it) of each marker, once per frame (the
            recorder writes it on every face row of its frame), in time order; one added after the
            last frame sits one frame interval after it, or later.
        end_s: when the session ends: one frame interval after the last frame, or the last marker.
        source: the input file or camera the session was analysed from, as the file names it.
    """

    name: str
    labels: tuple[str, ...]
    faces: pd.DataFrame
    frames: pd.DataFrame
    markers: pd.DataFrame
    end_s: float
    source: str = ""

    @property
    def start_s(self) -> float:
        """When the session starts: the time of its first frame."""
        return float(self.frames["time_s"].iloc[0])


def shifted(timeline: Timeline, offset_s: float) -> Timeline:
    """``timeline`` with ``offset_s`` subtracted from every time (faces, frames, markers, end), e.g. so that a
    marker becomes time 0; ``stimulus_t_s`` is the stimulus's own clock and stays."""
    def earlier(table: pd.DataFrame) -> pd.DataFrame:
        return table.assign(time_s=table["time_s"] - offset_s)
    return replace(timeline, faces=earlier(timeline.faces), frames=earlier(timeline.frames),
                   markers=earlier(timeline.markers), end_s=timeline.end_s - offset_s)


def load_timelines(path: Path) -> tuple[list[Timeline], list[str]]:
    """The sessions of one timeline file, and warnings about what was left out.

    Raises:
        EmolensError: the file cannot be read as a timeline; the message names the file
            and, for a bad row, its line number.
    """
    if path.suffix.lower() == ".parquet":  # a timeline of `emolens batch`
        (rows, labels), warnings = _read_parquet(path), []
    else:
        source, warnings = _complete_lines(path)
        labels = _labels(path, _header(path, source))
        rows = _read_rows(path, source, labels)
    _check_rows(path, rows, labels)
    sessions = _session_numbers(path, rows, warnings)
    groups = [group for _, group in rows.groupby(sessions, sort=False)]
    timelines = [_session(path, group, labels, several=len(groups) > 1) for group in groups]
    return timelines, warnings


def _session_numbers(path: Path, rows: pd.DataFrame, warnings: list[str]) -> pd.Series:
    """A session number per row: a new one where the source changes or its ``time_s`` steps back.

    Raises:
        EmolensError: ``time_s`` steps back at two frames in a row (not a recording in time order).
    """
    sources = rows["source"].ffill().fillna("")
    timed = rows["time_s"].notna()
    previous = rows["time_s"].where(timed).ffill().shift()
    same_source = sources.eq(sources.where(timed).ffill().shift())
    back = timed & same_source & (rows["time_s"] < previous)
    frame_starts = rows[timed & (rows["time_s"].ne(previous) | ~same_source)].index
    steps = back[frame_starts].to_numpy()
    twice = np.flatnonzero(steps[1:] & steps[:-1])
    if len(twice):
        first, second = (int(frame_starts[i]) + 2 for i in (twice[0], twice[0] + 1))
        raise EmolensError(f"{path}, lines {first} and {second}: time_s goes back twice in a row, so the rows are "
                           f"not in time order (an edited file?); sort them by time_s or split the file")
    for index in np.flatnonzero(back):
        warnings.append(f"{path}, line {index + 2}: time_s goes back from {previous.iloc[index]:g} to "
                        f"{rows['time_s'].iloc[index]:g} s; the rows from there are read as a new session")
    return (sources.ne(sources.shift()) | back).cumsum()


def display_text(text: pd.Series) -> pd.Series:
    """User text as typed: the ``'`` that guards against spreadsheet formulas removed."""
    return text.str.replace(_ESCAPED_TEXT, "", regex=True)


def numbered(names: pd.Series) -> pd.Series:
    """The names with each repeat numbered: ``logo``, ``logo (2)``."""
    repeat = names.groupby(names, sort=False).cumcount()
    return names.where(repeat == 0, names + " (" + (repeat + 1).astype(str) + ")")


def _complete_lines(path: Path) -> tuple[Path | io.BytesIO, list[str]]:
    """The file, or its complete lines when the last one was cut off (no final newline)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            file.seek(max(0, size - _TAIL_BYTES))
            tail = file.read()
            if not tail or tail.endswith(b"\n"):
                return path, []
            cut = size - len(tail) + tail.rfind(b"\n") + 1
            file.seek(0)
            head = file.read(cut)
    except OSError as error:
        raise EmolensError(f"cannot read {path}: {error.strerror or error}") from None
    if not head:
        raise EmolensError(f"{path} is not an Emolens timeline: its only line is cut off")
    return io.BytesIO(head), [f"{path}: the last line was cut off (a crash while recording?) and is left out"]


def _header(path: Path, source: Path | io.BytesIO) -> pd.Index:
    try:
        return pd.read_csv(source, nrows=0).columns
    except pd.errors.EmptyDataError:
        raise EmolensError(f"{path} is empty: it has no header and no rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError):
        raise EmolensError(f"{path} is not an Emolens timeline: it is not a CSV text file") from None


def _labels(path: Path, columns: pd.Index) -> tuple[str, ...]:
    """The emotion columns: those between ``det_score`` and ``dominant``."""
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if len(missing) == len(REQUIRED_COLUMNS):
        raise EmolensError(f"{path} is not an Emolens timeline: its header does not start with "
                           f"{','.join(REQUIRED_COLUMNS[:4])},...")
    if missing:
        raise EmolensError(f"{path} is not an Emolens timeline: missing column(s) {', '.join(missing)}")
    columns = list(columns)
    labels = tuple(columns[columns.index(FACE_COLUMNS[-1]) + 1:columns.index("dominant")])
    if not labels:
        raise EmolensError(f"{path} is not an Emolens timeline: no emotion columns between det_score and dominant")
    return labels


def _read_rows(path: Path, source: Path | io.BytesIO, labels: tuple[str, ...]) -> pd.DataFrame:
    """The columns the report needs, typed; only empty cells count as missing.

    Every column is parsed (boxes and keypoints as float32, then dropped): with ``usecols``
    pandas would let a row with too many fields pass silently.
    """
    types = _column_types(labels)
    unused = {column: "float32" for column in KEYPOINT_COLUMNS}
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        with np.errstate(over="ignore"):  # a number too large for float32 becomes inf, refused by _check_rows
            rows = pd.read_csv(source, dtype=defaultdict(lambda: "str", unused | types),
                               keep_default_na=False, na_values=[""])
        return rows[[column for column in types if column in rows.columns]]
    except (ValueError, pd.errors.ParserError) as error:
        reason = _not_a_number(source, unused | types) or str(error).strip().splitlines()[-1]
        raise EmolensError(f"{path} is not a valid Emolens timeline: {reason}") from None


def _not_a_number(source: Path | io.BytesIO, types: dict[str, str]) -> str | None:
    """Where a numeric column holds text (``line N: column C holds 'x', not a number``), when that is what
    failed; None otherwise (a malformed row, say)."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        text = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError):
        return None
    for column in (c for c, kind in types.items() if kind != "str" and c in text.columns):
        cells = text[column]
        bad = (cells != "") & pd.to_numeric(cells, errors="coerce").isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            return f"line {row + 2}: column {column} holds {cells.iloc[row]!r}, not a number"
    return None


def _column_types(labels: tuple[str, ...]) -> dict[str, str]:
    """The columns the report reads and their types: the required ones, then the optional ones (behaviour,
    head pose, the stimulus), which a timeline may lack."""
    return {"time_s": "float64", "frame": "float64", "face_id": "float64", "dominant": "str", "source": "str",
            "marker": "str", "timestamp": "str", **{column: "float32" for column in BOX_COLUMNS},
            **{label: "float32" for label in labels},
            **{column: "float32" for column in (*BEHAVIOUR_COLUMNS, *HEAD_POSE_COLUMNS)},
            "stimulus": "str", "stimulus_t_s": "float64"}


def _read_parquet(path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The rows and labels of a batch timeline (``timelines/<input id>.parquet``), typed as a CSV's are read."""
    try:
        rows = pd.read_parquet(path)
    except ImportError:
        raise EmolensError(f"{path}: reading Parquet needs pyarrow: pip install 'emolens[batch]'") from None
    except (OSError, ValueError) as error:
        raise EmolensError(f"{path} is not a readable Parquet timeline: {str(error).splitlines()[0]}") from None
    labels = _labels(path, rows.columns)
    if pd.api.types.is_datetime64_any_dtype(rows["timestamp"]):  # the CSV's text, as _session reads it
        rows["timestamp"] = rows["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    types = {column: kind for column, kind in _column_types(labels).items() if column in rows.columns}
    return rows[list(types)].astype({column: kind for column, kind in types.items() if kind != "str"}), labels


def _check_rows(path: Path, rows: pd.DataFrame, labels: tuple[str, ...]) -> None:
    """Raise on the first row that a complete timeline cannot hold."""
    timed = rows["time_s"].notna()
    if not timed.any():
        raise EmolensError(f"{path} has no frames: it holds a header and no timeline rows")
    after_last_frame = np.arange(len(rows)) > np.flatnonzero(timed)[-1]
    face = rows["face_id"].notna()
    problems = {
        "time_s is empty": ~timed & ~(after_last_frame & rows["marker"].notna()),
        "frame is empty": timed & rows["frame"].isna(),
        "a face without all its probabilities (cut off?)": face & rows[list(labels)].isna().any(axis=1),
        "probabilities without a face_id": ~face & rows[list(labels)].notna().any(axis=1),
        "a probability outside 0-1": face & ~rows[list(labels)].apply(lambda p: p.between(0, 1)).all(axis=1),
        "dominant is not one of the emotion columns": face & ~rows["dominant"].isin(labels),
    }
    for problem, bad in problems.items():
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2  # 1-based, after the header
            raise EmolensError(f"{path}, line {line}: {problem}")


def _session(path: Path, rows: pd.DataFrame, labels: tuple[str, ...], several: bool) -> Timeline:
    if "stimulus" in rows.columns:
        rows = rows.assign(stimulus=display_text(rows["stimulus"]))
    timed = rows["time_s"].notna()
    stimulus = [column for column in STIMULUS_COLUMNS if column in rows.columns]
    frames = (rows[timed].groupby("frame", sort=False)
              .agg(time_s=("time_s", "first"), faces=("face_id", "count"),
                   **{column: (column, "first") for column in stimulus}).reset_index())
    frames["frame"] = frames["frame"].astype("int64")
    interval = float(np.median(np.diff(frames["time_s"]))) if len(frames) > 1 else 0.0
    last_s = float(frames["time_s"].iloc[-1]) + interval

    marked = rows[rows["marker"].notna()]
    marked = marked[~(marked["frame"].notna() & marked.duplicated(["frame", "marker"]))]  # one per frame
    markers = pd.DataFrame({"time_s": marked["time_s"], "text": display_text(marked["marker"])})
    late = marked["time_s"].isna()
    if late.any():
        last_stamp = _utc(rows.loc[timed[timed].index[-1:], "timestamp"]).iloc[0]
        after_s = (_utc(marked.loc[late, "timestamp"]) - last_stamp).dt.total_seconds().fillna(0.0)
        markers.loc[late, "time_s"] = np.maximum(after_s + frames["time_s"].iloc[-1], last_s)

    optional = (*BEHAVIOUR_COLUMNS, *HEAD_POSE_COLUMNS, *STIMULUS_COLUMNS)
    kept = ["time_s", "frame", "face_id", *BOX_COLUMNS, *labels, "dominant",
            *(c for c in optional if c in rows.columns)]
    faces = rows.loc[rows["face_id"].notna(), kept]
    faces = faces.astype({"frame": "int64", "face_id": "int64", "dominant": pd.CategoricalDtype(labels)})
    source = display_text(rows["source"].dropna().head(1))
    name = writable(f"{path.stem} · {Path(source.iloc[0]).name}" if several and len(source) else path.stem)
    return Timeline(name=name, labels=labels, faces=faces.reset_index(drop=True), frames=frames,
                    markers=markers.sort_values("time_s", kind="stable").reset_index(drop=True),
                    end_s=max(last_s, float(markers["time_s"].max()) if len(markers) else last_s),
                    source=source.iloc[0] if len(source) else "")


def _utc(stamps: pd.Series) -> pd.Series:
    return pd.to_datetime(stamps, utc=True, errors="coerce", format="ISO8601")
