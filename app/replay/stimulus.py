"""The stimuli a study session's viewer saw, for replay's second pane: which file, and which of its frames.

A study session's timeline (``STUDY/sessions/P07.csv``) names on each row the stimulus on screen
(``stimulus``) and the position in its media (``stimulus_t_s``, from the player). The files are the
study's: its study file is looked for above the ``sessions`` folder, then beside the timeline, and
names each stimulus's file (``stimuli/ad_a.mp4``). The session's sidecar (``P07.json``) says when
the baseline's neutral screen was on. A video stimulus's frame at ``t`` seconds is frame
``round(t * fps)``, as ``emolens.sources`` times a file's frames; an image is shown as it is.

Example::

    stimuli = session_stimuli(Path("ad-test/sessions/P07.csv"), timeline)
    stimuli.files["ad_a"].frame_at(2.0)      # 50, at 25 fps
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emolens.errors import EmolensError
from emolens.replay.video import open_video_info
from emolens.study.file import SESSIONS_DIR, StudyFile, load_study, study_path
from emolens.study.sessions import SessionInfo


@dataclass(frozen=True)
class StimulusFile:
    """One stimulus of the study: its name, file, kind (``video`` or ``image``), and a video's rate and length."""

    name: str
    path: Path
    kind: str
    fps: float = 0.0
    frame_count: int = 0

    def frame_at(self, t_s: float) -> int:
        """The video frame on screen ``t_s`` seconds into the stimulus (0 for an image)."""
        if self.kind != "video":
            return 0
        return int(min(max(round(t_s * self.fps), 0), max(self.frame_count - 1, 0)))


@dataclass(frozen=True)
class SessionStimuli:
    """What a session showed: the stimulus files by name, why some are missing, and the baseline.

    Attributes:
        files: the stimuli found, by name.
        why_missing: one line when the session shows stimuli whose files are not found ("" otherwise).
        baseline_s: the baseline's neutral screen, start and end in the timeline's time, when the sidecar says.
    """

    files: dict[str, StimulusFile] = field(default_factory=dict)
    why_missing: str = ""
    baseline_s: tuple[float, float] | None = None


def study_folder_of(csv: Path) -> Path | None:
    """The study a session timeline belongs to: the folder above its ``sessions`` folder, or its own
    folder, whichever holds a study file first; None when neither does."""
    folders = [csv.parent.parent] if csv.parent.name == SESSIONS_DIR else []
    return next((folder for folder in (*folders, csv.parent) if study_path(folder).is_file()), None)


def session_stimuli(csv: Path, shown: list[str]) -> SessionStimuli:
    """The files of the stimuli named in ``shown`` (the timeline's ``stimulus`` values), found through the study.

    Never raises: a missing or unreadable study or file is said in ``why_missing``.
    """
    if not shown:
        return SessionStimuli()
    folder = study_folder_of(csv)
    if folder is None:
        return SessionStimuli(why_missing=f"no stimulus: {csv.name} shows {', '.join(shown)}, but no study file "
                                          f"is above its sessions folder or beside it")
    try:
        study = load_study(folder)
    except EmolensError as error:
        return SessionStimuli(why_missing=f"no stimulus: {error}")
    files, missing = _stimulus_files(folder, study, shown)
    why = (f"no stimulus file for {', '.join(missing)}: {study_path(folder).name} in {folder} names "
           f"{'it' if len(missing) == 1 else 'them'} but the file is not there" if missing else "")
    return SessionStimuli(files=files, why_missing=why, baseline_s=_baseline(csv))


def _stimulus_files(folder: Path, study: StudyFile, shown: list[str]) -> tuple[dict[str, StimulusFile], list[str]]:
    """The files of the ``shown`` stimuli found, and the names of those not found (or not readable)."""
    files, missing = {}, []
    by_name = {stimulus.name: stimulus for stimulus in study.stimuli}
    for name in shown:
        stimulus = by_name.get(name)
        path = folder / stimulus.file if stimulus is not None else None
        if path is None or not path.is_file():
            missing.append(name)
        elif stimulus.kind == "image":
            files[name] = StimulusFile(name, path, "image")
        else:
            try:
                info = open_video_info(path)
            except EmolensError:
                missing.append(name)
                continue
            files[name] = StimulusFile(name, path, "video", info.fps, info.frame_count)
    return files, missing


def _baseline(csv: Path) -> tuple[float, float] | None:
    """The baseline's start and end from the session's sidecar, when it has one."""
    try:
        info = SessionInfo.model_validate_json(csv.with_suffix(".json").read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 -- no sidecar, or not a session's: the pane says "no stimulus" instead
        return None
    return tuple(info.baseline_s) if info.baseline_s else None
