"""CameraVideoWriter on its own: a hidden partial until ``finish``, never over a file that took its name."""

from __future__ import annotations

import numpy as np
import pytest

from emolens.errors import EmolensError
from emolens.replay.camera_video import CameraVideoWriter, camera_video_path
from emolens.replay.video import VideoFrames
from emolens.types import Frame


def frames(count: int) -> list[Frame]:
    return [Frame(index, index / 10, np.full((48, 64, 3), index * 20, np.uint8), "camera 0") for index in range(count)]


def test_a_file_that_takes_the_name_meanwhile_is_left_as_it_is_and_the_video_kept(tmp_path):
    path = camera_video_path(tmp_path / "take.csv")
    writer = CameraVideoWriter(path, fps=10)
    for frame in frames(5) + frames(5)[-1:]:  # the last twice: written once
        writer.write(frame)
    path.write_bytes(b"someone else's")
    with pytest.raises(EmolensError, match=r"take.mp4 appeared while the video was written .* kept as .*\.take"):
        writer.finish()
    assert path.read_bytes() == b"someone else's"
    with VideoFrames(tmp_path / ".take.mp4.partial.mp4") as video:
        assert video.read(4) is not None and video.read(5) is None


def test_no_frame_leaves_no_file_and_an_existing_one_is_refused_at_once(tmp_path):
    path = camera_video_path(tmp_path / "take.csv")
    assert CameraVideoWriter(path, fps=10).finish() is None
    assert list(tmp_path.iterdir()) == []
    path.write_bytes(b"older")
    with pytest.raises(EmolensError, match="already exists"):
        CameraVideoWriter(path, fps=10)
    writer = CameraVideoWriter(path, fps=10, overwrite=True)
    for frame in frames(3):
        writer.write(frame)
    assert writer.finish() == path and path.read_bytes() != b"older"
