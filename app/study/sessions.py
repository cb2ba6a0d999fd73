"""Sessions of a study: a recording analysed (or a timeline imported) and placed in stimulus time.

``add_session`` writes ``sessions/<participant>.csv``, the timeline with its ``stimulus`` and
``stimulus_t_s`` columns filled, and ``sessions/<participant>.json``, its sidecar (``SessionInfo``).
A recording made elsewhere (a webcam while a player showed the ads) is placed by when the first
stimulus started in it: ``stimulus_at`` seconds, the first occurrence of a marker, or where the first
stimulus's sound is heard in the recording's (``sync="audio"``, ``emolens.study.sync``). The stimuli
then follow each other in the session's order, each for its duration: on a row at ``time_s``
inside stimulus ``S`` (which starts at ``start``), ``stimulus`` is ``S`` and ``stimulus_t_s`` is
``time_s - start``; both are empty outside every stimulus (the baseline included). The markers
``<S> starts`` and ``<S> ends`` go on every row of the first frame at or after those moments.

Example::

    info = add_session(Path("ad-test"), "p07.mp4", "P07", stimulus_at=12.4)
    info.placements[0].start_s           # 12.4, in the recording's time
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from emolens import __version__
from emolens.errors import EmolensError, SettingError
from emolens.options import AnalyzerOptions
from emolens.record import STIMULUS_COLUMNS, safe_text
from emolens.report.compare import alignment
from emolens.report.timeline import Timeline, load_timelines
from emolens.study.file import SESSIONS_DIR, Stimulus, StudyFile, load_study, validation_problem

_PARTICIPANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Placement(BaseModel):
    """Where one stimulus ran in the recording's time (``time_s``), start inclusive, end exclusive."""

    stimulus: str
    start_s: float
    end_s: float


class SessionInfo(BaseModel):
    """The sidecar of one session: who, when, what they saw in which order, and with what."""

    participant: str
    number: int
    date: str
    order: list[str]
    stimulus_at_s: float
    placements: list[Placement]
    baseline_s: list[float] | None = None  # [start, end] in the recording's time, when the study has one
    audio_match: float | None = None  # with sync="audio": how well the stimulus's sound matched (0 to 1)
    recording: str
    camera: str = ""
    notes: str = ""
    emolens_version: str = __version__
    model: str = ""
    complete: bool = True  # False: the recording does not cover every stimulus (it ended early, or they left)


def session_files(folder: Path, participant: str) -> tuple[Path, Path]:
    """The timeline and the sidecar of ``participant`` in the study ``folder``."""
    base = Path(folder) / SESSIONS_DIR / participant
    return base.with_name(f"{participant}.csv"), base.with_name(f"{participant}.json")


def read_sessions(folder: Path) -> list[tuple[SessionInfo, Path]]:
    """Every session's sidecar and timeline, by session number.

    Raises:
        EmolensError: a sidecar is unreadable or invalid, or its timeline is missing.
    """
    sessions = []
    for sidecar in sorted((Path(folder) / SESSIONS_DIR).glob("*.json")):
        try:
            info = SessionInfo.model_validate_json(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise EmolensError(f"cannot read the session record {sidecar}: {error}") from None
        except ValidationError as error:
            raise EmolensError(f"the session record {sidecar} is not valid: {validation_problem(error)}; fix that "
                               f"file, or add its session again with emolens study add --overwrite") from None
        timeline = sidecar.with_suffix(".csv")
        if not timeline.is_file():
            raise EmolensError(f"the session {info.participant} has no timeline: {timeline} is missing")
        sessions.append((info, timeline))
    return sorted(sessions, key=lambda pair: pair[0].number)


def unrecorded_timelines(folder: Path) -> list[str]:
    """A warning for each timeline in ``sessions/`` without its sidecar: no session of the study until it has one."""
    return [f"{timeline} has no session record {timeline.stem}.json beside it, so it is left out; to add it: "
            f"emolens study add {folder} {timeline} --participant {timeline.stem} --stimulus-at SECONDS --overwrite"
            for timeline in sorted((Path(folder) / SESSIONS_DIR).glob("*.csv"))
            if not timeline.name.startswith(".") and not timeline.with_suffix(".json").exists()]


def add_session(folder: Path, recording: str | os.PathLike, participant: str, stimulus_at: float | None = None,
                stimulus_at_marker: str | None = None, order: list[str] | None = None,
                sync: Literal["audio"] | None = None, markers: Path | None = None,
                options: AnalyzerOptions | None = None, camera: str = "",
                notes: str = "", date: str | None = None, overwrite: bool = False,
                log: Callable[[str], None] = print, progress: Callable[[int, int], None] | None = None
                ) -> tuple[SessionInfo, list[str]]:
    """Analyse ``recording`` (a video; a ``.csv`` timeline is imported as it is) and add it as a session.

    Returns the sidecar and warnings (a recording that ends before the last stimulus does, say).

    Raises:
        EmolensError: no study in ``folder``; a participant ID that is not a plain name or already has a
            session (without ``overwrite``); not exactly one of ``stimulus_at``, ``stimulus_at_marker`` and
            ``sync``; a marker the recording lacks; with ``sync="audio"``, a recording or first stimulus without
            sound, or a match that is unsure (see ``emolens.study.sync``); a start after the recording's end;
            an ``order`` that is not the study's stimuli; a ``date`` that is not ISO 8601; an unreadable
            recording or timeline.
    """
    folder = Path(folder)
    study = load_study(folder)
    timeline_path, sidecar_path = check_participant(folder, participant, overwrite)
    if [stimulus_at, stimulus_at_marker, sync].count(None) != 2:
        raise SettingError("say when the first stimulus started in the recording: {stimulus_at} SECONDS, "
                           "{stimulus_at_marker} TEXT or {sync} audio (one of them)")
    if sync not in (None, "audio"):
        raise SettingError(f"{{sync}} {sync!r}: the only way to sync is 'audio'")
    if stimulus_at is not None and not (math.isfinite(stimulus_at) and stimulus_at >= 0):
        raise SettingError(f"{{stimulus_at}} must be a number of seconds, 0 or more, got {stimulus_at}")
    if date is not None:
        _check_date(date)
    number = session_number(folder, participant)
    order = _checked_order(study, order) if order else study.order_for(number)
    recording = Path(recording)
    match = None
    if sync is not None:  # before the analysis: an unsure match is refused in seconds, not after minutes
        stimulus_at, match = _audio_start(folder, study.stimulus(order[0]), recording, log)
    with tempfile.TemporaryDirectory(prefix=".add-", dir=timeline_path.parent) as scratch:
        source, model = _timeline_of(recording, Path(scratch) / "analysis.csv", markers, options, log, progress)
        timeline = _one_session(source)
        if stimulus_at_marker is not None:
            stimulus_at = _marker_time(timeline, stimulus_at_marker, recording)
        placements = stimulus_placements(study, order, stimulus_at)
        warnings = _coverage_warnings(timeline, placements, recording)
        rows = place_in_stimulus_time(pd.read_csv(source, dtype=str, keep_default_na=False), placements)
        info = SessionInfo(participant=participant, number=number, date=date or _recording_date(recording),
                           order=order, stimulus_at_s=stimulus_at, placements=placements,
                           baseline_s=([max(stimulus_at - study.baseline_s, 0.0), stimulus_at]
                                       if study.baseline_s else None), audio_match=match,
                           recording=str(recording), camera=camera, notes=notes, model=model,
                           complete=not warnings)
        write_session(rows, info, timeline_path, sidecar_path, Path(scratch))
    return info, warnings


def place_in_stimulus_time(rows: pd.DataFrame, placements: list[Placement]) -> pd.DataFrame:
    """The raw timeline rows (strings) with ``stimulus``/``stimulus_t_s`` filled and the start and end markers
    added on every row of their frames (those of an earlier placement removed: a session's timeline added again);
    the columns are added after ``marker`` to a timeline without them."""
    rows = rows.copy()
    for position, column in enumerate(STIMULUS_COLUMNS):
        if column not in rows.columns:
            rows.insert(rows.columns.get_loc("marker") + 1 + position, column, "")
    _remove_placement_markers(rows)
    time_s = pd.to_numeric(rows["time_s"], errors="coerce")
    rows[list(STIMULUS_COLUMNS)] = ""
    for placement in placements:
        inside = (time_s >= placement.start_s) & (time_s < placement.end_s)
        rows.loc[inside, "stimulus"] = safe_text(placement.stimulus)
        rows.loc[inside, "stimulus_t_s"] = (time_s[inside] - placement.start_s).map("{:.3f}".format)
        for moment, word in ((placement.start_s, "starts"), (placement.end_s, "ends")):
            due = time_s[time_s >= moment - 1e-9]
            if len(due):  # every row of the first frame at or after the moment
                at = rows["frame"] == rows["frame"][due.index[0]]
                text = safe_text(f"{placement.stimulus} {word}")
                rows.loc[at, "marker"] = rows.loc[at, "marker"].map(lambda old: f"{old} | {text}" if old else text)
    return rows


def _remove_placement_markers(rows: pd.DataFrame) -> None:
    """Take off the markers an earlier placement put on ``rows``: ``<S> starts`` on the first frame inside
    stimulus ``S``, ``<S> ends`` on the first frame after it (markers a user typed alike stay)."""
    stimulus = rows["stimulus"].to_numpy()
    timed = np.flatnonzero(rows["time_s"].to_numpy() != "")
    for name in pd.unique(stimulus[stimulus != ""]):
        inside = np.flatnonzero(stimulus == name)
        after = timed[timed > inside[-1]][:1]  # the first frame after it, unless the recording ended in it
        for position, word in [(inside[0], "starts"), *((row, "ends") for row in after)]:
            at = rows["frame"] == rows["frame"].iloc[position]
            rows.loc[at, "marker"] = rows.loc[at, "marker"].map(partial(_without_marker, f"{name} {word}"))


def _without_marker(text: str, markers: str) -> str:
    """``markers`` (``"a | b"``) with one ``text`` taken out."""
    parts = markers.split(" | ")
    if text in parts:
        parts.remove(text)
    return " | ".join(parts)


def check_participant(folder: Path, participant: str, overwrite: bool = False) -> tuple[Path, Path]:
    """The timeline and sidecar paths of a new session of ``participant``.

    Raises:
        SettingError: the ID is not a plain name, or the participant has a session (without ``overwrite``).
    """
    if not _PARTICIPANT.fullmatch(participant):
        raise SettingError(f"{{participant}} {participant!r}: use letters, digits, '.', '_' or '-' (e.g. P07), "
                           f"starting with a letter or digit")
    timeline_path, sidecar_path = session_files(folder, participant)
    if (timeline_path.exists() or sidecar_path.exists()) and not overwrite:
        raise SettingError(f"the study already has a session of {participant}; pass {{overwrite}} to replace it")
    return timeline_path, sidecar_path


def session_number(folder: Path, participant: str) -> int:
    """The participant's session number: theirs when re-added, else one more than the highest."""
    sessions = {info.participant: info.number for info, _ in read_sessions(folder)}
    return sessions.get(participant, max(sessions.values(), default=0) + 1)


def _checked_order(study: StudyFile, order: list[str]) -> list[str]:
    if sorted(order) != sorted(study.names):
        raise SettingError(f"{{order}} {','.join(order)}: name each of the study's stimuli once "
                           f"({', '.join(study.names)})")
    return order


def _audio_start(folder: Path, first: Stimulus, recording: Path, log: Callable[[str], None]) -> tuple[float, float]:
    """When ``first`` starts in ``recording`` by their sounds, and how well they matched; logged."""
    from emolens.study.sync import audio_start

    if first.kind == "image":
        raise SettingError(f"the first stimulus, {first.name}, is an image: it has no sound for {{sync}} audio to "
                           f"find; give {{stimulus_at}} instead")
    if recording.suffix.lower() == ".csv":
        raise SettingError(f"{recording} is a timeline, not a recording: it has no sound for {{sync}} audio to "
                           f"match; give {{stimulus_at}} instead")
    found = audio_start(folder / first.file, recording)
    log(f"sync: the stimulus starts {found.start_s:.2f} s into the recording (match {found.match:.2f})")
    return round(found.start_s, 3), round(found.match, 3)


def placements_shown(rows: pd.DataFrame, study: StudyFile, played: set[str]) -> list[Placement]:
    """Where each stimulus ran in a timeline recorded while a player showed it (rows carry ``stimulus_t_s``
    from the player), in the order shown: it started at ``time_s - stimulus_t_s`` (the median over its rows)
    and lasted its duration when ``played`` to its end, else up to its last row (cut short)."""
    time_s = pd.to_numeric(rows["time_s"], errors="coerce")
    position = pd.to_numeric(rows["stimulus_t_s"], errors="coerce")
    placements = []
    for name in pd.unique(rows.loc[rows["stimulus"] != "", "stimulus"]):
        inside = rows["stimulus"] == name
        start = float((time_s[inside] - position[inside]).median())
        end = start + study.stimulus(name).duration_s if name in played else float(time_s[inside].max())
        placements.append(Placement(stimulus=name, start_s=round(start, 3), end_s=round(end, 3)))
    return placements


def stimulus_placements(study: StudyFile, order: list[str], stimulus_at: float) -> list[Placement]:
    placements, start = [], stimulus_at
    for name in order:
        end = start + study.stimulus(name).duration_s
        placements.append(Placement(stimulus=name, start_s=round(start, 3), end_s=round(end, 3)))
        start = end
    return placements


def _timeline_of(recording: Path, scratch: Path, markers: Path | None, options: AnalyzerOptions | None,
                 log: Callable[[str], None], progress) -> tuple[Path, str]:
    """The recording's timeline (analysed into ``scratch``, or the given CSV) and the model that read it."""
    if recording.suffix.lower() == ".csv":
        if markers is not None:
            raise SettingError("{markers} applies to a recording that is analysed; a timeline keeps its own markers")
        return recording, ""
    from emolens.analyze import analyze_inputs  # MediaPipe and ONNX Runtime only when a video is analysed

    summary = analyze_inputs([str(recording)], scratch, options, markers=markers, log=log, progress=progress)
    for warning in summary.warnings:
        log(f"warning: {warning}")
    return scratch, model_line(options.model if options else None)


def model_line(model: str | None) -> str:
    """The sidecar's ``model``: the model file that read the faces and its checksum (``None``: the shipped one)."""
    from emolens.card import ModelCard

    card = ModelCard.load(model, verify=False)
    return f"{card.model_path.name} (sha256 {card.sha256[:12]})"


def _one_session(source: Path) -> Timeline:
    timelines, _ = load_timelines(source)
    if len(timelines) != 1:
        raise EmolensError(f"{source} holds {len(timelines)} sessions (several sources, or time_s going back); "
                           f"a study session is one recording of one viewer")
    return timelines[0]


def _coverage_warnings(timeline: Timeline, placements: list[Placement], recording: Path) -> list[str]:
    """Refuse a start after the recording; warn where a stimulus starts before it or runs past its end (the
    session is then incomplete)."""
    last_s = float(timeline.frames["time_s"].iloc[-1])
    if placements[0].start_s > last_s:
        raise EmolensError(f"the first stimulus would start at {placements[0].start_s:g} s, after the end of "
                           f"{recording} ({last_s:g} s)")
    first, early = placements[0], []
    if first.start_s < timeline.start_s - 1e-6:
        early.append(f"{recording} starts at {timeline.start_s:g} s, after {first.stimulus} starts "
                     f"({first.start_s:g} s): its beginning has no data; the session is marked incomplete")
    return early + [f"{recording} ends at {last_s:g} s, before {placement.stimulus} ends ({placement.end_s:g} s): "
                    f"the rest of it has no data; the session is marked incomplete"
                    for placement in placements if placement.end_s > timeline.end_s + 1e-6]


def _marker_time(timeline: Timeline, marker: str, recording: Path) -> float:
    """When ``marker`` first occurs in the recording's timeline.

    Raises:
        SettingError: the recording has no such marker (the message lists those it has).
    """
    wanted = " ".join(marker.split())
    names = list(dict.fromkeys(part for text in timeline.markers["text"] for part in text.split(" | ")))
    if wanted not in names:
        known = ", ".join(repr(name) for name in names)
        raise SettingError(f"{{stimulus_at_marker}}: {recording} has no marker named {wanted!r} "
                           + (f"(its markers: {known})" if names else "(it has no markers)"))
    return alignment([timeline], wanted)[0]


def _check_date(date: str) -> None:
    """Refuse a session date that is not ISO 8601 (``2024-05-31`` or ``2024-05-31T14:05:00+02:00``)."""
    try:
        datetime.fromisoformat(date)
    except ValueError:
        raise EmolensError(f"the session's date {date!r} is not an ISO 8601 date: give it as 2024-05-31 or "
                           f"2024-05-31T14:05:00+02:00") from None


def _recording_date(recording: Path) -> str:
    """When the recording was made, as well as the file says (its modification time), UTC."""
    try:
        moment = datetime.fromtimestamp(recording.stat().st_mtime, timezone.utc)
    except OSError:
        moment = datetime.now(timezone.utc)
    return moment.isoformat(timespec="seconds")


def write_session(rows: pd.DataFrame, info: SessionInfo, timeline_path: Path, sidecar_path: Path,
                   scratch: Path) -> None:
    """Write both files in ``scratch`` first, then move them into place (never half a session)."""
    try:
        staged = scratch / "timeline.csv"
        rows.to_csv(staged, index=False, lineterminator="\n")
        staged_sidecar = scratch / "sidecar.json"
        staged_sidecar.write_text(info.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(staged, timeline_path)
        os.replace(staged_sidecar, sidecar_path)
    except OSError as error:
        raise EmolensError(f"cannot write the session into {timeline_path.parent}: {error.strerror or error}") from None

