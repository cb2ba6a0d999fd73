"""Shared fixtures: real faces (the astronaut photo, FER2013 crops) and videos built from them."""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest

from emolens.bench.media import write_video

FIXTURES = Path(__file__).parent / "fixtures"
FER_FIXTURES = FIXTURES / "fer"
SHARED_FER = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "fer2013"

# MediaPipe and ONNX Runtime use every core by default; tests run beside other work.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def fer_dataset_or_skip() -> Path:
    if not SHARED_FER.is_dir():
        pytest.skip(f"FER2013 is not at {SHARED_FER} (it sits beside the checkout in CI)")
    return SHARED_FER


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The public-domain astronaut photo, BGR 512x512, one face at about (177, 82)-(272, 177)."""
    return cv2.imread(str(resources.files("emolens.assets") / "astronaut.jpg"))


@pytest.fixture(scope="session")
def fer_faces() -> list[tuple[str, np.ndarray]]:
    """(emotion, 48x48 gray crop) for the FER2013 training crops kept as fixtures."""
    return [(path.parent.name, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
            for path in sorted(FER_FIXTURES.glob("*/*.jpg"))]


@pytest.fixture(scope="session")
def two_face_video(tmp_path_factory) -> Path:
    """A 2 s, 10 fps, 320x240 clip of two real faces drifting slowly."""
    return write_video(tmp_path_factory.mktemp("video") / "two_faces.mp4", (320, 240), faces=2, seconds=2.0, fps=10)


@pytest.fixture(scope="session")
def analyzer():
    from emolens.pipeline import Analyzer

    with Analyzer() as shared:
        yield shared


def fixture_splits(data: Path, splits: dict[str, slice]) -> Path:
    """``data/<split>/<emotion>/*.jpg`` from the FER fixtures: each split takes its slice of each emotion's files."""
    for emotion_dir in FER_FIXTURES.iterdir():
        files = sorted(emotion_dir.glob("*.jpg"))
        for split, chosen in splits.items():
            (data / split / emotion_dir.name).mkdir(parents=True)
            for file in files[chosen]:
                shutil.copy(file, data / split / emotion_dir.name / file.name)
    return data
