"""A numbered clip of real faces and its timeline, analysed once by ``emolens analyze`` (a fixture for
the replay tests here and in tests/gui)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emolens.bench.numbered import write_numbered_video
from emolens.cli import main


@pytest.fixture(scope="session")
def numbered_session(tmp_path_factory) -> Path:
    """Four seconds at 10 fps of two real faces, each frame stamped with its index, and its timeline
    (``session.csv`` beside ``session-video.mp4``)."""
    folder = tmp_path_factory.mktemp("numbered")
    video = write_numbered_video(folder / "session-video.mp4", (320, 240), faces=2, seconds=4.0, fps=10)
    csv = folder / "session.csv"
    assert main(["analyze", str(video), "-o", str(csv)]) == 0
    return csv
