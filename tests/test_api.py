"""The Python API as a notebook user calls it: ``Analyzer().analyze`` on paths, PIL images and arrays,
the README's video example, and ``faces.to_pandas()``; on the real astronaut photo."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

import emolens
from emolens import EmolensError
from emolens.card import ModelCard

LABELS = ModelCard.load().labels


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    cv2.imwrite(str(path), astronaut)
    return path


def one_face(faces) -> np.ndarray:
    assert len(faces) == 1 and faces.face_id.tolist() == [1] and faces.labels == LABELS
    return faces.probs[0]


def test_a_path_a_pil_image_a_bgr_array_and_an_rgb_array_give_the_same_face(analyzer, photo, astronaut):
    expected = one_face(analyzer.analyze(astronaut))
    rgb = astronaut[:, :, ::-1]  # a view in RGB order, not contiguous
    for faces in (analyzer.analyze(str(photo)), analyzer.analyze(photo), analyzer.analyze(Image.open(photo)),
                  analyzer.analyze(rgb=rgb), analyzer.analyze(rgb=np.ascontiguousarray(rgb))):
        np.testing.assert_allclose(one_face(faces), expected, atol=0.03)  # JPEG once more for the file


def test_gray_and_rgba_inputs(analyzer, astronaut):
    gray = cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY)
    assert len(analyzer.analyze(gray)) == 1
    rgba = cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGBA)
    assert len(analyzer.analyze(rgb=rgba)) == 1 and len(analyzer.analyze(Image.fromarray(rgba))) == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda a, tmp: a.analyze(cv2.imread(str(tmp / "missing.jpg"))), "no image given (None): if it came from cv2.imread"),
    (lambda a, tmp: a.analyze(), "no image given"),
    (lambda a, tmp: a.analyze(str(tmp / "missing.jpg")), "image not found"),
    (lambda a, tmp: a.analyze(tmp / "noise.jpg"), "cannot read image"),
    (lambda a, tmp: a.analyze(np.zeros((4, 4, 3), np.uint8), rgb=np.zeros((4, 4, 3), np.uint8)), "give one image"),
    (lambda a, tmp: a.analyze(np.zeros((4, 4, 5), np.uint8)), "must be pixels of shape"),
    (lambda a, tmp: a.analyze(np.zeros((0, 4, 3), np.uint8)), "must be pixels of shape"),
    (lambda a, tmp: a.analyze(np.array([["a"]])), "must hold numbers"),
    (lambda a, tmp: a.analyze([[1, 2], [3, 4]]), "cannot analyze a list"),
])
def test_bad_input_is_a_clear_emolens_error(analyzer, tmp_path, call, message):
    (tmp_path / "noise.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(EmolensError, match=None) as raised:
        call(analyzer, tmp_path)
    assert message in str(raised.value)


def test_to_pandas_has_the_labels_as_columns(analyzer, astronaut):
    table = analyzer.analyze(astronaut).to_pandas(keypoints=True)
    assert list(table.columns[:6]) == ["face_id", "x", "y", "w", "h", "det_score"]
    assert list(table.columns[6:6 + len(LABELS)]) == list(LABELS)
    assert table.columns[6 + len(LABELS)] == "dominant" and table.columns[-1] == "kp5_y"
    assert len(table) == 1 and table[list(LABELS)].sum(axis=1).iloc[0] == pytest.approx(1, abs=1e-4)
    assert table["dominant"].iloc[0] == table[list(LABELS)].idxmax(axis=1).iloc[0]
    empty = analyzer.analyze(np.full((240, 320, 3), 90, np.uint8)).to_pandas()
    assert len(empty) == 0 and list(empty.columns) == list(table.columns[:7 + len(LABELS)])


def test_the_readme_video_example_runs(tmp_path, two_face_video):
    script = f"""
from emolens import Analyzer, CsvRecorder, open_source
with Analyzer() as analyzer, open_source({str(two_face_video)!r}) as source, \\
        CsvRecorder({str(tmp_path / 'clip.csv')!r}, analyzer.labels) as recorder:
    for result in analyzer.run(source, recorder):
        pass
print(recorder.rows)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == 40  # 20 frames, two faces each


def test_the_public_names_are_exported():
    for name in emolens.__all__:
        assert getattr(emolens, name) is not None
