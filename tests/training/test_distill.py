"""``emolens train --teacher``: the targets blend an exported model's scores, run by ONNX Runtime as the app runs it."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emolens.card import ModelCard
from emolens.classify import Classifier
from emolens.training.distill import blend_with_teacher

from ..conftest import fixture_splits


def test_each_target_keeps_its_share_and_takes_the_teacher_s(fer_faces):
    card = ModelCard.load()
    faces = np.stack([face for _, face in fer_faces])[..., None]
    own = np.eye(len(card.labels), dtype=np.float32)[[card.labels.index(emotion) for emotion, _ in fer_faces]]
    scores = Classifier(card, device="cpu").predict(faces)

    blended = blend_with_teacher(own, faces, card.model_path, card.labels, weight=0.3)
    np.testing.assert_allclose(blended.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(blended, 0.7 * own + 0.3 * scores, atol=1e-6)
    only_the_teacher = blend_with_teacher(own, faces, card.model_path, card.labels, weight=1.0)
    assert (only_the_teacher.argmax(axis=1) == scores.argmax(axis=1)).all()
    assert not np.allclose(only_the_teacher, own), "the teacher's scores are its own, not the labels"


@pytest.mark.slow
def test_a_teacher_with_other_labels_is_one_clear_line(tmp_path):
    pytest.importorskip("tensorflow", reason="training needs the 'train' extra (tensorflow, tf2onnx)")
    shipped = ModelCard.load()
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    shutil.copy(shipped.model_path, teacher / shipped.model_path.name)
    card = json.loads(shipped.card_path.read_text())
    card["labels"] = card["labels"][::-1]
    (teacher / "emotion.json").write_text(json.dumps(card))
    data = fixture_splits(tmp_path / "data", {"train": slice(0, 4), "val": slice(4, 5)})
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--out", str(tmp_path / "run"),
                             "--epochs", "1", "--cache-dir", "", "--teacher", str(teacher / "emotion.onnx")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"emolens: error: --teacher {teacher / 'emotion.onnx'} scores neutral, surprise")
    assert "the same labels in the same order are needed" in error
