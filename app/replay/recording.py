"""A recorded session ready to replay: its timeline, the video it was analysed from (when kept), and
the faces of any frame, read from the timeline's rows (never computed again).

The video is looked for where the timeline says it was analysed (``source``, as written, then by
its file name beside the CSV), then beside the CSV under the CSV's own name (``session.mp4``: the
camera video saved with a window recording). A camera session whose video was not kept (for
privacy) replays its chart alone, and ``why_no_video`` says so.

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

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emolens.errors import EmolensError
from emolens.native import captured_native_stderr
from emolens.report.timeline import Timeline, load_timelines
from emolens.sources import is_stream_url
from emolens.types import Faces

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV says about a video file."""

    path: Path
    fps: float
    frame_count: int
    size_wh: tuple[int, int]


class Recording:
    """One session of a timeline file, with its video when it can be found.

    Attributes:
        csv: the timeline file.
        timeline: the session (``emolens.report.timeline.Timeline``, boxes included).
        video: the video's facts, or None.
        why_no_video: one line saying why there is no video ("" when there is).
        fps: frames per second of positions: the video's, or the timeline's processing rate without one.
        notes: other things the user should know (several sessions in the file, a video shorter than it).
    """

    def __init__(self, csv: Path, timeline: Timeline, video: VideoInfo | None, why_no_video: str,
                 notes: list[str] | None = None):
        self.csv = csv
        self.timeline = timeline
        self.video = video
        self.why_no_video = why_no_video
        self.notes = notes or []
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
        steps = np.diff(self.processed)
        self.step = int(np.median(steps)) if len(steps) else 1  # frames between two processed ones (--every)
        interval = float(np.median(np.diff(self.processed_s))) if len(steps) else 1.0
        self.fps = video.fps if video else (self.step / interval if interval > 0 else 1.0)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.timeline.labels

    @property
    def first_frame(self) -> int:
        return int(self.processed[0])

    @property
    def last_frame(self) -> int:
        """The last position: the video's last frame, or the timeline's last processed frame."""
        if self.video is not None and self.video.frame_count > 0:
            return max(self.video.frame_count - 1, 0)
        return int(self.processed[-1])

    def time_of(self, frame: int) -> float:
        """Seconds of a position, on the timeline's clock."""
        if self.video is not None:
            return frame / self.fps
        index = int(np.clip(np.searchsorted(self.processed, frame, side="right") - 1, 0, len(self.processed) - 1))
        return float(self.processed_s[index])

    def frame_at(self, t_s: float) -> int:
        """The position shown at ``t_s`` seconds: the video's frame then (the last processed frame
        at or before it, without a video), within the first and last position."""
        if self.video is not None:
            return int(np.clip(round(t_s * self.fps), 0, self.last_frame))
        index = np.searchsorted(self.processed_s, t_s + 1e-6, side="right") - 1
        return int(self.processed[int(np.clip(index, 0, len(self.processed) - 1))])

    def step_from(self, frame: int, steps: int) -> int:
        """The position ``steps`` frames on (back when negative): video frames, or processed frames without one."""
        if self.video is not None:
            return int(np.clip(frame + steps, 0, self.last_frame))
        index = int(np.searchsorted(self.processed, frame, side="right") - 1) + steps
        return int(self.processed[int(np.clip(index, 0, len(self.processed) - 1))])

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
    if video is not None and video.frame_count and video.frame_count <= int(timeline.frames["frame"].max()):
        notes.append(f"{video.path.name} has {video.frame_count} frames but the timeline reaches frame "
                     f"{int(timeline.frames['frame'].max())}: is it the video this session was analysed from?")
    return Recording(csv, timeline, video, why, notes)


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
                      f"(the window keeps none unless asked, for privacy); the chart plays alone")
    if Path(source).suffix.lower() not in VIDEO_SUFFIXES:
        return None, f"no video: {Path(source).name} is not a video file (still images replay as their chart)"
    return None, (f"no video: {source} is not found (moved or deleted?); put it beside {csv.name} "
                  f"to see the faces")


def open_video_info(path: Path) -> VideoInfo:
    """Frame rate, frame count and size of a video file.

    Raises:
        EmolensError: OpenCV cannot read it as a video.
    """
    with captured_native_stderr():
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise EmolensError(f"{path} cannot be read as a video")
            fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
            return VideoInfo(path, fps, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
                             (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
        finally:
            capture.release()


def clock(t_s: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour), as a moderator reads a time."""
    minutes, seconds = divmod(int(max(t_s, 0.0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
