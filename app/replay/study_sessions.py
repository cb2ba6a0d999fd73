"""A study's sessions to choose one to replay: who, when, complete or not, and how often a face was found.

Read from the sessions' sidecars and timelines (``emolens.study``); face found is the share of the
frames expected while a stimulus was shown (those the recording lacks included) that hold a face, over
all the stimuli the session saw (as ``emolens study info`` counts it per stimulus).

Example::

    for entry in study_sessions(Path("ad-test")):
        print(entry.participant, entry.face_found, entry.timeline)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emolens.study.aggregate import load_study_data, quality_table
from emolens.study.file import load_study
from emolens.study.sessions import read_sessions


@dataclass(frozen=True)
class SessionEntry:
    """One session of a study, as the list shows it."""

    participant: str
    number: int
    date: str
    complete: bool
    face_found: float | None  # None: no stimulus frame is expected (a session of a single frame)
    timeline: Path


def study_sessions(folder: Path) -> list[SessionEntry]:
    """The study's sessions by number (empty when it has none yet).

    Raises:
        EmolensError: ``folder`` is not a study, or a session cannot be read.
    """
    load_study(folder)  # says "not a study" before anything else
    pairs = read_sessions(folder)
    if not pairs:
        return []
    quality = quality_table(load_study_data(folder))
    entries = []
    for info, timeline in pairs:
        mine = quality[quality["participant"] == info.participant]
        expected = int(mine["expected_frames"].sum())
        found = float((mine["face_found"] * mine["expected_frames"]).sum() / expected) if expected else None
        entries.append(SessionEntry(info.participant, info.number, info.date, info.complete, found, timeline))
    return entries
