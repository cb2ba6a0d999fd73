"""A recorded session ready to replay: its timeline, the video it was analysed from (when kept), and
the faces of any frame, read from the timeline's rows (never computed again).

The video is looked for where the timeline says it was analysed (``source``, as written, then by
its file name beside the CSV), then beside the CSV under the CSV's own name (``session.mp4``: the
camera video saved with a window recording). A camera session whose video was not kept (for
privacy) replays its chart alone, and ``why_no_video`` says so. A camera video holds one frame per
processed frame (``emolens.replay.camera_video``): its ``i``-th frame shows the timeline's ``i``-th
processed frame, and positions then move on the timeline's clock, as without a video.

A study session's rows name the stimulus on screen and the second of it (``stimulus_at``); its
files are found through the study (``emolens.replay.stimulus``).

Positions are frame indices of the source, as the timeline's ``frame`` counts them; a video file's
frame ``i`` is at ``i / fps`` seconds, as ``emolens.sources`` timed it. The faces drawn on frame ``i``
are the rows of the last processed frame at or before ``i`` (the same frame unless ``--every``
skipped some), none past one processing step after it. Scores are the timeline's raw
probabilities (the CSV keeps no smoothed ones).

Example::

    recording = load_recording(Path("session.csv"))
    faces = recording.faces_at(recording.frame_at(12.0))   # the boxes and raw scores at 0:12
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from emolens.errors import EmolensError
from emolens.replay.stimulus import SessionStimuli, session_stimuli
from emolens.replay.video import VideoInfo, open_video_info
from emolens.report.timeline import Timeline, load_timelines
from emolens.sources import is_stream_url
from emolens.types import Faces

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class Recording:
    """One session of a timeline file, with its video when it can be found.

    Attributes:
        csv: the timeline file.
        timeline: the session (``emolens.report.timeline.Timeline``, boxes included).
        video: the video's facts, or None.
        why_no_video: one line saying why there is no video ("" when there is).
        per_row: the video holds one frame per processed frame, in order (the camera video saved with a
            window recording), rather than every frame of a source by its index.
        fps: frames per second of positions: the source video's, or the timeline's processing rate.
        stimuli: the study's stimulus files this session showed (none outside a study).
        notes: other things the user should know (several sessions in the file, a video shorter than it).
    """

    def __init__(self, csv: Path, timeline: Timeline, video: VideoInfo | None, why_no_video: str,
                 notes: list[str] | None = None, stimuli: SessionStimuli | None = None):
        self.csv = csv
        self.timeline = timeline
        self.video = video
        self.why_no_video = why_no_video
        self.notes = notes or []
        self.stimuli = stimuli or SessionStimuli()
        rows = timeline.faces.sort_values("frame", kind="stable")
        self._row_frames = rows["frame"].to_numpy(np.int64)
        xywh = rows[["x", "y", "w", "h"]].to_numpy(np.float32)
        self._xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        self._det_score = rows["det_score"].fillna(0).to_numpy(np.float32)
        self._probs = rows[list(timeline.labels)].to_numpy(np.float32)
        self._face_id = rows["face_id"].to_numpy(np.int64)
        frames = timeline.frames.sort_values("frame", kind="stable")
        self.processed = frames["frame"].to_numpy(np.int64)  # the frames the timeline has rows for
        self.processed_s = frames["time_s"].to_numpy(np.float64)
        blank = pd.Series(np.nan, index=frames.index)  # a timeline from before the stimulus columns
        self._stimulus = frames.get("stimulus", blank).fillna("").astype(str).to_numpy(object)
        self._stimulus_t = frames.get("stimulus_t_s", blank).to_numpy(np.float64)
        self.per_row = (video is not None and video.path.with_suffix("") == csv.with_suffix("")
                        and video.frame_count == len(self.processed))
        self._by_video = video is not None and not self.per_row  # positions are the video's frames at its rate
        steps = np.diff(self.processed)
        self.step = int(np.median(steps)) if len(steps) else 1  # frames between two processed ones (--every)
        interval = float(np.median(np.diff(self.processed_s))) if len(steps) else 1.0
        self.fps = video.fps if self._by_video else (self.step / interval if interval > 0 else 1.0)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.timeline.labels

    @property
    def first_frame(self) -> int:
        return int(self.processed[0])

    @property
    def last_frame(self) -> int:
        """The last position: the video's last frame, or the timeline's last processed frame."""
        if self._by_video and self.video.frame_count > 0:
            return max(self.video.frame_count - 1, 0)
        return int(self.processed[-1])

    def time_of(self, frame: int) -> float:
        """Seconds of a position, on the timeline's clock."""
        if self._by_video:
            return frame / self.fps
        index = int(np.clip(np.searchsorted(self.processed, frame, side="right") - 1, 0, len(self.processed) - 1))
        return float(self.processed_s[index])

    def frame_at(self, t_s: float) -> int:
        """The position shown at ``t_s`` seconds: the video's frame then (the last processed frame
        at or before it, without a video), within the first and last position."""
        if self._by_video:
            return int(np.clip(round(t_s * self.fps), 0, self.last_frame))
        index = np.searchsorted(self.processed_s, t_s + 1e-6, side="right") - 1
        return int(self.processed[int(np.clip(index, 0, len(self.processed) - 1))])

    def step_from(self, frame: int, steps: int) -> int:
        """The position ``steps`` frames on (back when negative): video frames, or processed frames without one."""
        if self._by_video:
            return int(np.clip(frame + steps, 0, self.last_frame))
        index = int(np.searchsorted(self.processed, frame, side="right") - 1) + steps
        return int(self.processed[int(np.clip(index, 0, len(self.processed) - 1))])

    def positions(self, first: int, last: int) -> list[int]:
        """The positions from ``first`` to ``last``, both included."""
        if self._by_video:
            return list(range(first, last + 1))
        return [int(f) for f in self.processed if first <= f <= last]

    def video_index(self, frame: int) -> int:
        """The video frame showing position ``frame``."""
        if not self.per_row:
            return frame
        return max(int(np.searchsorted(self.processed, frame, side="right")) - 1, 0)

    def frame_of_video(self, index: int) -> int:
        """The position a video frame shows (``video_index``'s inverse)."""
        if not self.per_row:
            return index
        return int(self.processed[int(np.clip(index, 0, len(self.processed) - 1))])

    def stimulus_at(self, frame: int) -> tuple[str, float] | None:
        """The stimulus on screen at position ``frame`` and the second of it, or None (outside any stimulus)."""
        index = int(np.searchsorted(self.processed, frame, side="right")) - 1
        if index < 0 or not self._stimulus[index] or not np.isfinite(self._stimulus_t[index]):
            return None
        since_row_s = max(self.time_of(frame) - float(self.processed_s[index]), 0.0)  # between rows at --every
        return str(self._stimulus[index]), float(self._stimulus_t[index]) + since_row_s

    @property
    def shows_stimuli(self) -> bool:
        """Whether the session is a study's, with a stimulus on screen at some row."""
        return bool((self._stimulus != "").any())

    def in_baseline(self, frame: int) -> bool:
        """Whether position ``frame`` is in the session's baseline (the neutral screen before the stimuli)."""
        baseline = self.stimuli.baseline_s
        return baseline is not None and baseline[0] <= self.time_of(frame) < baseline[1]

    def row_frame(self, frame: int) -> int | None:
        """The processed frame whose rows are drawn on ``frame``, or None (before the first, or
        more than one processing step after the last at or before it)."""
        index = int(np.searchsorted(self.processed, frame, side="right") - 1)
        if index < 0 or frame - self.processed[index] >= self.step:
            return None
        return int(self.processed[index])

    def faces_at(self, frame: int) -> Faces:
        """The faces the timeline holds for the frame drawn on ``frame``: boxes, IDs and raw
        probabilities (also as ``smoothed``, which the window paints)."""
        row_frame = self.row_frame(frame)
        if row_frame is None:
            return Faces.empty()
        start, stop = np.searchsorted(self._row_frames, [row_frame, row_frame + 1])
        keep = slice(int(start), int(stop))
        valid = np.isfinite(self._xyxy[keep]).all(axis=1)  # a hand-edited row without its box draws nothing
        probs = self._probs[keep][valid]
        return Faces(xyxy=self._xyxy[keep][valid], det_score=self._det_score[keep][valid], probs=probs,
                     face_id=self._face_id[keep][valid], smoothed=probs, labels=self.labels)


def load_recording(csv: Path, session: int = 1) -> Recording:
    """The ``session``-th session (1-based) of a timeline file, with its video when found.

    Raises:
        EmolensError: the file is not a timeline (see ``load_timelines``), or has no such session.
    """
    timelines, warnings = load_timelines(csv)
    if not 1 <= session <= len(timelines):
        raise EmolensError(f"{csv} holds {len(timelines)} session(s); --session {session} is not one of them")
    timeline = timelines[session - 1]
    notes = list(warnings)
    if len(timelines) > 1:
        notes.append(f"{csv.name} holds {len(timelines)} sessions; this is session {session} "
                     f"({timeline.source}); --session N replays another")
    video, why = find_video(csv, timeline.source)
    shown = sorted(set(timeline.frames["stimulus"].dropna()) - {""}) if "stimulus" in timeline.frames else []
    stimuli = session_stimuli(csv, shown)
    if stimuli.why_missing:
        notes.append(stimuli.why_missing)
    recording = Recording(csv, timeline, video, why, notes, stimuli)
    if (video is not None and not recording.per_row and video.frame_count
            and video.frame_count <= int(timeline.frames["frame"].max())):
        notes.append(f"{video.path.name} has {video.frame_count} frames but the timeline reaches frame "
                     f"{int(timeline.frames['frame'].max())}: is it the video this session was analysed from?")
    return recording


def find_video(csv: Path, source: str) -> tuple[VideoInfo | None, str]:
    """The session's video, or None and why (one line)."""
    beside = [csv.with_suffix(suffix) for suffix in VIDEO_SUFFIXES]  # a window recording's camera video
    live = not source or source.startswith("camera ") or is_stream_url(source)
    named = [] if live else [Path(source), csv.parent / Path(source).name]
    for path in (*named, *beside):
        if path.is_file():
            return open_video_info(path), ""
    if live:
        return None, (f"no video: {source or 'the session'} was recorded live and its video was not kept "
                      f"(for privacy, the window keeps one only with Record → Save the camera video with "
                      f"recordings, or emolens --save-video)")
    if Path(source).suffix.lower() not in VIDEO_SUFFIXES:
        return None, f"no video: {Path(source).name} is not a video file (still images replay as their chart)"
    return None, (f"no video: {source} is not found (moved or deleted?); put it beside {csv.name} "
                  f"to see the faces")


def clock(t_s: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour), as a moderator reads a time."""
    minutes, seconds = divmod(int(max(t_s, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
