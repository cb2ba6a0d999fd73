"""A moment of a session for the client's deck: an annotated clip between in and out points, or a still.

Both are drawn as ``emolens analyze --video`` draws (``emolens.draw``), with the faces the timeline
holds for each frame. Neither ever replaces a file: an existing name gets ``-2``, ``-3``... The clip
is written by ``AnnotatedVideo`` (a hidden partial file, renamed in place only when it reads back
whole); the still is written beside its name and linked in place, which fails rather than replace.

Example::

    clip = export_clip(recording, 12.0, 18.5, Path("moment.mp4"))
    still = export_still(recording, 12.0, Path("moment.png"))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2

from emolens.draw import AnnotatedVideo, draw_faces
from emolens.errors import EmolensError
from emolens.record import move_without_replacing, partial_path
from emolens.replay.recording import Recording, clock
from emolens.replay.video import VideoFrames


def free_path(path: Path) -> Path:
    """``path``, or the first of ``NAME-2.ext``, ``NAME-3.ext``... that does not exist."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def moment_name(recording: Recording, start_s: float, end_s: float | None, suffix: str) -> Path:
    """A default output beside the timeline: ``SESSION_0m12s-0m18s.mp4``, ``SESSION_0m12s.png``."""
    def tag(t_s: float) -> str:
        return clock(t_s).replace(":", "m", 1).replace(":", "m") + "s"
    span = tag(start_s) + (f"-{tag(end_s)}" if end_s is not None else "")
    return recording.csv.with_name(f"{recording.csv.stem}_{span}{suffix}")


def _video(recording: Recording) -> Path:
    if recording.video is None:
        raise EmolensError(f"nothing to export: {recording.why_no_video}")
    return recording.video.path


def export_clip(recording: Recording, start_s: float, end_s: float, path: Path,
                progress: Callable[[int, int], None] | None = None) -> Path:
    """The frames from ``start_s`` to ``end_s`` with their faces drawn, as ``.mp4`` or ``.avi``;
    returns the path written (``path``, or a free name beside it).

    Raises:
        EmolensError: no video, an empty span, or the clip cannot be written (nothing is left behind).
    """
    first, last = recording.frame_at(min(start_s, end_s)), recording.frame_at(max(start_s, end_s))
    if last <= first:
        raise EmolensError(f"the clip from {clock(start_s)} to {clock(end_s)} holds no frame: set the out point "
                           f"after the in point")
    out = AnnotatedVideo(free_path(path), recording.labels)
    try:
        with VideoFrames(_video(recording)) as video:
            positions = recording.positions(first, last)
            for done, position in enumerate(positions, 1):
                image = video.read(recording.video_index(position))
                if image is None:
                    break
                out.write(image, recording.faces_at(position), recording.fps)
                if progress is not None:
                    progress(done, len(positions))
        if not out.frames:
            raise EmolensError(f"{recording.video.path} has no frame at {clock(start_s)}")
        out.finish()
    except BaseException:
        out.discard()
        raise
    return out.path


def export_still(recording: Recording, t_s: float, path: Path) -> Path:
    """The frame at ``t_s`` with its faces drawn, as an image (``.png``, ``.jpg``); returns the path written.

    Raises:
        EmolensError: no video, no frame there, or the image cannot be written.
    """
    index = recording.frame_at(t_s)
    with VideoFrames(_video(recording)) as video:
        image = video.read(recording.video_index(index))
    if image is None:
        raise EmolensError(f"{recording.video.path} has no frame at {clock(t_s)}")
    draw_faces(image, recording.faces_at(index), recording.labels)
    return write_new_image(path, image)


def write_new_image(path: Path, image) -> Path:
    """Write ``image`` to ``path`` or a free name beside it, never over an existing file; returns the path."""
    target = free_path(path)
    partial = partial_path(target)
    try:
        if not cv2.imwrite(str(partial), image):
            raise EmolensError(f"cannot write {target}: not an image format OpenCV writes (use .png or .jpg)")
        move_without_replacing(partial, target)  # the name taken meanwhile: nothing is replaced
    except OSError as error:
        raise EmolensError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target
