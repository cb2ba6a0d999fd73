"""Camera-like scenes made from registered face crops, cut out again by the app's own code."""

import json
import subprocess
import sys

import numpy as np

from emolens.card import ModelCard
from emolens.detect import FaceDetector
from emolens.evaluation.scenes import FRAME_HW, pipeline_crops, render_scene

from ..conftest import FER_FIXTURES


def test_a_scene_is_a_camera_frame_and_the_same_seed_gives_the_same_frame(fer_faces):
    face = fer_faces[0][1]
    first = render_scene(face, np.random.default_rng(7))
    assert first.shape == (*FRAME_HW, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, render_scene(face, np.random.default_rng(7)))
    assert not np.array_equal(first, render_scene(face, np.random.default_rng(8)))


def test_the_app_finds_and_crops_most_faces_in_scenes(fer_faces):
    faces = np.stack([face for _, face in fer_faces])[..., None]
    card = ModelCard.load()
    with FaceDetector() as detector:
        crops, found = pipeline_crops(faces, card, detector, seed=0)
    assert crops.shape == (len(faces), *card.input_hw, card.channels)
    assert found.mean() > 0.5, "the detector should find most upscaled FER faces"
    # A found crop is the same face: it correlates with the original far better than with another face.
    originals = faces[found, :, :, 0].reshape(found.sum(), -1).astype(np.float64)
    cropped = crops[found, :, :, 0].reshape(found.sum(), -1).astype(np.float64)
    same = [np.corrcoef(a, b)[0, 1] for a, b in zip(originals, cropped)]
    other = [np.corrcoef(a, b)[0, 1] for a, b in zip(originals, np.roll(cropped, 1, axis=0))]
    assert np.median(same) > 0.45 > 0.3 > np.median(other)
    assert not crops[~found].any()


def test_evaluate_scenes_runs_the_whole_pipeline_on_scenes():
    result = subprocess.run([sys.executable, "-m", "emolens", "evaluate", str(FER_FIXTURES), "--scenes", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "scenes" and report["n"] == 42
    assert report["no_face"] < 21 and "accuracy_where_found" in report
