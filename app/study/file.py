"""The study file, ``DIR/study.json``: what a study shows, in which order, and how it is judged.

A study is a folder a user can zip and send::

    study.json          this file (schema: ``StudyFile``)
    stimuli/            a copy of each stimulus (videos, or images shown for a duration)
    sessions/           one timeline per session, ``<participant>.csv``, and its sidecar ``<participant>.json``
    report/             ``emolens study report``'s page and tables

Each session sees every stimulus once, back to back, after an optional neutral baseline of
``baseline_s`` seconds before the first. The order is the file's (``order: fixed``), or a
permutation per session drawn from ``seed`` and the session's number (``shuffled``), recorded in
the session's sidecar.

Example::

    study = create_study(Path("ad-test"), [Path("ad_a.mp4"), Path("ad_b.mp4")], baseline_s=5)
    study.order_for(3)       # ['ad_b', 'ad_a'] when shuffled
"""

from __future__ import annotations

import math
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field, ValidationError

from emolens import __version__
from emolens.errors import EmolensError, SettingError
from emolens.images import IMAGE_SUFFIXES
from emolens.native import captured_native_stderr

STUDY_FILE = "study.json"
STIMULI_DIR = "stimuli"
SESSIONS_DIR = "sessions"
REPORT_DIR = "report"
# What a remote panel's participant is told before the camera starts, and what the operator's dashboard shows;
# a study may say otherwise in its own study.json.
DEFAULT_CONSENT = ("While you watch, your camera's picture is read on the researcher's own computer, frame by frame, "
                   "into seven emotion scores. Only those scores are kept, under a participant code, with the moment "
                   "of the video they belong to: no video and no picture of you is stored, and nobody else receives "
                   "them. You may stop at any time by closing this page.")
DEFAULT_RETENTION = ("Scores only (no video, no images), kept in the study folder on the researcher's computer "
                     "until the study's report is written and archived.")


class Stimulus(BaseModel):
    """One stimulus: its name (the file's stem), its file under ``stimuli/``, its kind and duration."""

    name: str
    file: str
    kind: Literal["video", "image"]
    duration_s: float = Field(gt=0)


class StudyFile(BaseModel):
    """The schema of ``study.json``.

    Attributes:
        name: the study's title.
        stimuli: in the order given (``fixed`` shows them so).
        baseline_s: seconds of neutral screen before the first stimulus (0: none).
        order: ``fixed`` or ``shuffled`` per session.
        seed: draws each shuffled order (with the session's number); recorded so that orders can be redrawn.
        min_face_found: a viewer whose face is found in less than this share of a stimulus's frames is
            left out of that stimulus's aggregates.
        consent: what a remote panel's participant reads and agrees to before the camera starts.
        retention: what is kept and for how long, shown with the consent and on the operator's dashboard.
        created, emolens_version: when and by which Emolens the study was made.
    """

    name: str
    stimuli: list[Stimulus] = Field(min_length=1)
    baseline_s: float = Field(default=0.0, ge=0)
    order: Literal["fixed", "shuffled"] = "fixed"
    seed: int = 0
    min_face_found: float = Field(default=0.7, ge=0, le=1)
    consent: str = Field(default=DEFAULT_CONSENT, min_length=1)
    retention: str = Field(default=DEFAULT_RETENTION, min_length=1)
    created: str = ""
    emolens_version: str = ""

    def stimulus(self, name: str) -> Stimulus:
        """The stimulus called ``name``.

        Raises:
            EmolensError: the study has no such stimulus (the message lists those it has).
        """
        for stimulus in self.stimuli:
            if stimulus.name == name:
                return stimulus
        raise EmolensError(f"the study has no stimulus {name!r} (it has {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [stimulus.name for stimulus in self.stimuli]

    def order_for(self, session_number: int) -> list[str]:
        """The stimuli in the order session number ``session_number`` (1, 2, ...) sees them."""
        if self.order == "fixed":
            return self.names
        permutation = np.random.default_rng([self.seed, session_number]).permutation(len(self.stimuli))
        return [self.names[index] for index in permutation]


def study_path(folder: Path) -> Path:
    return Path(folder) / STUDY_FILE


def load_study(folder: Path) -> StudyFile:
    """The study file of ``folder``.

    Raises:
        EmolensError: the folder holds no study file, or one that is not valid (the message names the field).
    """
    path = study_path(folder)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EmolensError(f"{folder} is not a study: it has no {STUDY_FILE} "
                           f"(make one with emolens study new)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EmolensError(f"cannot read {path}: {error}") from None
    try:
        return StudyFile.model_validate_json(text)
    except ValidationError as error:
        raise EmolensError(f"{path} is not a valid study file: {validation_problem(error)}") from None


def validation_problem(error: ValidationError) -> str:
    """The first thing wrong with a JSON file, in words: which field and what is wrong with it."""
    problem, more = error.errors()[0], len(error.errors()) - 1
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "json_invalid":
        text = f"it is not JSON ({problem['msg'].removeprefix('Invalid JSON: ')})"
    elif not where:
        text = "it is not a JSON object of fields"
    elif problem["type"] == "missing":
        text = f"the field {where!r} is missing"
    else:
        wrong = problem["msg"].removeprefix("Input ").split(", unable")[0]
        text = f"the field {where!r} {wrong}, not {problem['input']!r}"
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def create_study(folder: Path, stimuli: list[str], baseline_s: float = 0.0, shuffle: bool = False,
                 name: str | None = None, seed: int | None = None) -> StudyFile:
    """Make the study folder: ``study.json``, ``stimuli/`` (copies of the stimuli), empty ``sessions/``.

    ``stimuli`` are video files, or images as ``PATH=SECONDS`` (shown for that long).

    Raises:
        EmolensError: ``folder`` already holds a study or other files, a stimulus is missing, unreadable,
            given twice under one name, or an image without its duration.
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise EmolensError(f"{folder} exists and is not an empty folder; choose a new folder for the study")
    if not stimuli:
        raise SettingError("a study needs at least one {stimulus}")
    if not math.isfinite(baseline_s) or baseline_s < 0:
        raise SettingError(f"{{baseline}} must be a number of seconds, 0 or more, got {baseline_s}")
    sources = [_stimulus_source(text) for text in stimuli]
    names = [path.stem for path, _ in sources]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise EmolensError(f"two stimuli are named {repeated[0]!r} (a stimulus is named by its file's stem); "
                           f"rename one")
    study = StudyFile(name=name or folder.resolve().name,
                      stimuli=[Stimulus(name=path.stem, file=f"{STIMULI_DIR}/{path.name}",
                                        kind="image" if seconds is not None else "video",
                                        duration_s=seconds if seconds is not None else video_duration(path))
                               for path, seconds in sources],
                      baseline_s=baseline_s, order="shuffled" if shuffle else "fixed",
                      seed=secrets.randbelow(2**31) if seed is None else seed,
                      created=datetime.now(timezone.utc).isoformat(timespec="seconds"), emolens_version=__version__)
    try:
        (folder / STIMULI_DIR).mkdir(parents=True)
        (folder / SESSIONS_DIR).mkdir()
        for path, _ in sources:
            shutil.copy2(path, folder / STIMULI_DIR / path.name)
        study_path(folder).write_text(study.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise EmolensError(f"cannot write the study into {folder}: {error.strerror or error}") from None
    return study


def _stimulus_source(text: str) -> tuple[Path, float | None]:
    """A stimulus argument: a video's path and None, or an image's path and its seconds (``PATH=SECONDS``)."""
    path, seconds = Path(text), None
    if not path.is_file() and "=" in text:
        name, _, number = text.rpartition("=")
        path, seconds = Path(name), _positive_seconds(number)
        if seconds is None:
            raise SettingError(f"{{stimulus}} {text}: an image's duration after '=' must be a positive number of "
                               f"seconds, got {number!r}")
    if not path.is_file():
        raise EmolensError(f"stimulus not found: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if seconds is None:
            raise SettingError(f"the image stimulus {path} needs a duration: {{stimulus}} {path}=SECONDS")
        if cv2.imread(str(path)) is None:
            raise EmolensError(f"cannot read the image stimulus {path}")
    elif seconds is not None:
        raise EmolensError(f"{path} is not an image: a video stimulus lasts as long as its file "
                           f"(drop ={seconds:g})")
    return path, seconds


def _positive_seconds(text: str) -> float | None:
    """``text`` as a finite number of seconds over 0, else None."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def video_duration(path: Path) -> float:
    """A video's duration in seconds (frame count / frame rate), once its frames are decoded to the last.

    Raises:
        EmolensError: the file does not open as a video, announces no frames, or fewer of them decode than it
            announces (a truncated or damaged file).
    """
    from emolens.replay.video import open_video_info  # emolens.replay reads study files: imported here, not above

    try:
        info = open_video_info(path)
    except EmolensError:
        info = None
    if info is None or info.frame_count <= 0:
        raise SettingError(f"cannot read the stimulus {path} as a video (an image needs {{stimulus}} {path}=SECONDS)")
    decoded = decoded_frames(path)
    if decoded < info.frame_count - 1:  # one frame of slack: some containers estimate their count
        raise EmolensError(f"cannot read the stimulus {path} whole: {decoded} of its {info.frame_count} frames "
                           f"decode (a truncated or damaged file?); export it again")
    return float(info.frame_count / info.fps)


def decoded_frames(path: Path) -> int:
    """How many frames of a video decode, one after the other from the first (FFmpeg's complaints kept quiet)."""
    from emolens.replay.video import VideoFrames

    with captured_native_stderr(), VideoFrames(path) as video:
        count = 0
        while video.read(count) is not None:
            count += 1
    return count
