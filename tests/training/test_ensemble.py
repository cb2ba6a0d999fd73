"""``emolens ensemble``: exported models averaged in one ONNX graph behind the first member's contract."""

import json
import subprocess
import sys

import numpy as np
import pytest

from emolens.card import ModelCard, sha256_of
from emolens.classify import Classifier
from emolens.images import to_model_pixels

onnx = pytest.importorskip("onnx", reason="emolens ensemble needs the 'train' extra (onnx comes with tf2onnx)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def brightness_model(folder, side: int, labels: list[str] | None = None):
    """A real exported model of another input size: its scores follow the face's mean brightness."""
    fast = ModelCard.load()
    weights = np.linspace(-3, 3, len(fast.labels), dtype=np.float32)[None, :] / 255
    graph = helper.make_graph(
        [helper.make_node("Cast", ["pixels"], ["values"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["values"], ["mean"], axes=[1, 2, 3], keepdims=1),
         helper.make_node("Reshape", ["mean", "column"], ["brightness"]),
         helper.make_node("MatMul", ["brightness", "weights"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "brightness",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", side, side, 1])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", len(fast.labels)])],
        initializer=[numpy_helper.from_array(weights, "weights"),
                     numpy_helper.from_array(np.array([-1, 1], np.int64), "column")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir()
    path = folder / "emotion.onnx"
    onnx.save(model, path)
    card = json.loads(fast.card_path.read_text())
    card["model"].update(file=path.name, sha256=sha256_of(path), bytes=path.stat().st_size)
    card["input"].update(height=side, width=side)
    card["labels"] = labels or card["labels"]
    (folder / "emotion.json").write_text(json.dumps(card))
    return path


def ensemble(*args):
    return subprocess.run([sys.executable, "-m", "emolens", "ensemble", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_an_ensemble_averages_its_members_each_at_its_own_size(tmp_path, fer_faces):
    fast = ModelCard.load()
    member = brightness_model(tmp_path / "bright", 64)
    out = tmp_path / "accurate.onnx"
    result = ensemble(fast.model_path, member, "--out", out)
    assert result.returncode == 0, result.stderr
    card = ModelCard.load(out)
    assert (card.input_hw, card.channels, card.crop, card.labels) == (fast.input_hw, 1, fast.crop, fast.labels)
    assert [entry["sha256"] for entry in card.info["training"]["members"]] == [fast.sha256, sha256_of(member)]
    assert card.info["training"]["cost"]["ms_per_face_median"] > 0

    faces = np.stack([to_model_pixels(face, (48, 48), 1) for _, face in fer_faces])
    resized = np.stack([to_model_pixels(face, (64, 64), 1) for face in faces])
    expected = (Classifier(fast, device="cpu").predict(faces)
                + Classifier(ModelCard.load(member), device="cpu").predict(resized)) / 2
    np.testing.assert_allclose(Classifier(card, device="cpu").predict(faces), expected, atol=2e-3)


def test_an_existing_ensemble_is_kept_without_overwrite(tmp_path):
    fast = ModelCard.load().model_path
    out = tmp_path / "accurate.onnx"
    out.write_bytes(b"someone's model")
    result = ensemble(fast, fast, "--out", out)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"emolens: error: {out} exists; pass --overwrite to replace it"
    assert out.read_bytes() == b"someone's model" and not out.with_suffix(".json").exists()
    assert ensemble(fast, fast, "--out", out, "--overwrite").returncode == 0
    assert ModelCard.load(out).info["name"] == "emolens-emotion-ensemble"


def test_members_with_other_labels_are_one_clear_line(tmp_path):
    fast = ModelCard.load()
    member = brightness_model(tmp_path / "reversed", 48, labels=list(fast.labels[::-1]))
    result = ensemble(fast.model_path, member, "--out", tmp_path / "mixed.onnx")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"emolens: error: {member} scores neutral, surprise")
    assert not (tmp_path / "mixed.onnx").exists()


def test_a_failed_build_leaves_no_half_made_model(tmp_path):
    fast = ModelCard.load().model_path
    (tmp_path / "not-ferplus").mkdir()
    out = tmp_path / "models" / "accurate.onnx"
    result = ensemble(fast, fast, "--out", out, "--data", tmp_path / "not-ferplus")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("emolens: error:")]) == 1
    assert list(out.parent.iterdir()) == [], "neither the model, nor its card, nor the folder it was built in"
