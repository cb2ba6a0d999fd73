"""Why no face was found, judged on real pictures: the astronaut photo darkened, shrunk to a tiny face on
a big canvas, a man turned to the side (scikit-image's cameraman), and a blank frame."""

import cv2
import numpy as np
import pytest

from emolens.detect import FaceDetector, FaintLook
from emolens.diagnose import NoFaceReason, why_no_face


def darkened(astronaut: np.ndarray) -> np.ndarray:
    """The photo at 5 % of its light, with a camera's faint noise: the default detector finds no face."""
    noise = np.random.default_rng(0).normal(0, 2, astronaut.shape)
    return np.clip(astronaut * 0.05 + noise, 0, 255).astype(np.uint8)


def tiny(astronaut: np.ndarray) -> np.ndarray:
    """The whole photo shrunk to 48 px (a face of about 9 px) on a 1920x1080 grey frame."""
    canvas = np.full((1080, 1920, 3), 90, np.uint8)
    canvas[500:548, 900:948] = cv2.resize(astronaut, (48, 48), interpolation=cv2.INTER_AREA)
    return canvas


def turned(_: np.ndarray) -> np.ndarray:
    """scikit-image's cameraman: his head turned to his left, nose beyond his eye."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (the dev extra) holds the cameraman photo")
    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


def blank(_: np.ndarray) -> np.ndarray:
    return np.full((480, 640, 3), 128, np.uint8)


@pytest.mark.parametrize(("picture", "reason", "detail"), [
    (darkened, "too dark", "mean brightness 6 of 255"),
    (tiny, "too small", "a face of about 39 px in a 1920x1080 frame"),
    (turned, "turned away", "the nose lies beside the eyes"),
    (blank, "none found", ""),
])
def test_the_likely_reason_no_face_was_found(astronaut, picture, reason, detail):
    image = picture(astronaut)
    with FaintLook() as look:
        assert look.why_no_face(image) == NoFaceReason(reason, detail)


@pytest.mark.parametrize("picture", [darkened, tiny, blank])
def test_the_default_detector_finds_no_face_in_these_pictures(astronaut, picture):
    with FaceDetector() as detector:
        assert len(detector.detect(picture(astronaut))) == 0


def test_darkness_comes_first_and_reads_as_one_line(astronaut):
    dark = darkened(astronaut)
    face = np.array([[171, 72, 275, 176]], np.float32)  # a likely face of good size in the dark
    keypoints = np.array([[[204, 109], [243, 107], [223, 134], [226, 153], [190, 116], [269, 111]]], np.float32)
    assert str(why_no_face(dark, face, np.array([0.9]), keypoints)) == "too dark (mean brightness 6 of 255)"
    assert str(why_no_face(astronaut, face, np.array([0.9]), keypoints)) == "none found"  # upright, large, lit
