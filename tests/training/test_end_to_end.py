"""``emolens train`` on a tiny subset: fit, evaluate, export, parity, card; the app then loads it."""

import json
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the 'train' extra (tensorflow, tf2onnx)")

from emolens.card import ModelCard  # noqa: E402
from emolens.options import AnalyzerOptions  # noqa: E402
from emolens.pipeline import Analyzer  # noqa: E402
from emolens.training.cli import parse_args  # noqa: E402
from emolens.training.train import TrainConfig  # noqa: E402
from emolens.training.warm_start import trained_widths  # noqa: E402

from ..conftest import fixture_splits  # noqa: E402


@pytest.mark.slow
def test_train_one_epoch_export_and_use(tmp_path, astronaut):
    data = fixture_splits(tmp_path / "data", {"train": slice(0, 4), "val": slice(4, 5), "test": slice(5, None)})
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--out", str(out),
                             "--epochs", "1", "--batch-size", "16", "--cache-dir", "", "--quantize", "on",
                             "--calibration", "percentile"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "images/s" in result.stdout and "parity max |dp|" in result.stdout
    for name in ("emotion.onnx", "emotion_fp32.onnx", "emotion.json", "confusion_val.png", "confusion_test.png",
                 "curves.png",
                 "evaluation.json", "last.keras", "best.weights.h5"):
        assert (out / name).is_file(), name
    card = ModelCard.load(out / "emotion.json")
    assert card.info["training"]["parity_max_abs_diff"] <= 1e-4
    assert card.info["quantization"]["dtype"] == "int8"
    assert "percentile calibration on" in card.info["quantization"]["method"]
    assert card.info["metrics"]["test"]["n"] == 7 and card.info["data"]["sizes"]["train"] == 28
    assert set(json.loads((out / "evaluation.json").read_text())["val_variants"]) == {"plain", "flip_tta"}
    assert 0 < card.info["training"]["cost"]["ms_per_face_median"] <= card.info["training"]["cost"]["ms_per_face_p95"]
    assert card.info["training"]["cost"]["shipped_model_ms_per_face_median"] > 0, "the machine's speed, for scale"
    with Analyzer(AnalyzerOptions(model=str(out / "emotion.onnx"), device="cpu")) as analyzer:
        faces = analyzer.analyze(astronaut)
    assert len(faces) == 1 and faces.probs.shape == (1, 7)

    assert_a_slow_export_stops_before_test(data, out)

    resumed = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--out", str(out),
                              "--epochs", "2", "--resume", "--cache-dir", "", "--calibration", "entropy",
                              "--max-ms-per-face", "1000"],  # the run keeps the refused budget until one is given
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "epoch 2/2" in resumed.stdout and "epoch 1/2" not in resumed.stdout
    assert json.loads((out / "state.json").read_text())["epoch"] == 2
    assert "ignored" not in resumed.stderr, "the calibration decides only the export: a resumed run takes it"
    assert ModelCard.load(out / "emotion.json").info["training"]["config"]["max_ms_per_face"] == 1000
    assert "entropy calibration on" in ModelCard.load(out / "emotion.json").info["quantization"]["method"]


def assert_a_slow_export_stops_before_test(data: Path, out: Path) -> None:
    """Over ``--max-ms-per-face`` the export stops in one line, and the run's last export stays as it was."""
    exported = {name: (out / name).read_bytes() for name in ("emotion.onnx", "emotion.json", "evaluation.json")}
    refused = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--out", str(out), "--resume",
                              "--cache-dir", "", "--max-ms-per-face", "0.001"], capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "ignored" not in refused.stderr, "the budget decides only the export: a resumed run takes it"
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith("emolens: error: ") and "over --max-ms-per-face 0.001: not exported and test not read" \
        in error
    assert "ms per face" in refused.stdout and "int8 val accuracy" in refused.stdout
    assert {name: (out / name).read_bytes() for name in exported} == exported


def test_train_without_data_is_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "emolens: error: data set not found" in result.stderr
    assert not (tmp_path / "runs").exists(), "a mistyped data path leaves no run folder behind"


def test_a_fresh_run_never_overwrites_a_run_folder(tmp_path):
    checkpoint = tmp_path / "run" / "last.keras"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"hours of training")
    config = checkpoint.with_name("config.json")
    config.write_text('{"epochs": 30}')
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(tmp_path), "--out", str(checkpoint.parent)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"emolens: error: {checkpoint.parent} already holds a run: continue it with "
                                     "--resume, or start this one in another --out")
    assert checkpoint.read_bytes() == b"hours of training" and config.read_text() == '{"epochs": 30}'


@pytest.mark.parametrize("flag, value", [("--mixup", "-1"), ("--mixup", "nan"), ("--ema", "1.5"), ("--ema", "0"),
                                         ("--max-ms-per-face", "0"), ("--max-ms-per-face", "nan"),
                                         ("--teacher-weight", "0"), ("--teacher-weight", "1.5")])
def test_an_out_of_range_option_is_one_clear_line(tmp_path, flag, value):
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(tmp_path), "--out", str(tmp_path / "run"),
                             flag, value], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"emolens: error: {flag} must be")
    assert not (tmp_path / "run").exists(), "nothing is written before the options are checked"


def test_shipped_cards_command_reproduces_its_config():
    """Every setting of the shipped run is either a default or spelled in the card's command."""
    training = ModelCard.load().info["training"]
    config, _ = parse_args(shlex.split(training["command"])[2:])
    parsed = json.loads(json.dumps(asdict(config)))  # tuples as lists, as the card stores them
    ignored = ("cache_dir",)  # where decoded data is cached, not what is trained
    # Settings added after the shipped run are absent from its card; their defaults (off) are what it ran with.
    recorded = {**asdict(TrainConfig(data=config.data)), **training["config"]}
    assert {k: v for k, v in parsed.items() if k not in ignored} == \
        {k: v for k, v in json.loads(json.dumps(recorded)).items() if k not in ignored}
    assert Path(config.data).name == "ferplus"


SHIPPED_WIDTHS = trained_widths(ModelCard.load())
WIDER = tuple(width + width // 4 for width in SHIPPED_WIDTHS)  # 40-80-160-320 is shipped: 50-100-200-400


def warm_started(widths: tuple[int, ...], faces: np.ndarray, noise: float = 0.0):
    """A network of the shipped model's depth and ``widths``, started from the shipped weights."""
    from emolens.training.warm_start import network_from_card

    return network_from_card(ModelCard.load(), widths, np.concatenate([faces] * 8), noise)


def test_warm_start_reproduces_the_shipped_model(fer_faces):
    """Weights read back out of the shipped ONNX give the shipped model's predictions in Keras."""
    from emolens.classify import Classifier
    from emolens.training.evaluate import tta_probs

    card = ModelCard.load()
    faces = np.stack([face for _, face in fer_faces])[..., None]
    network = warm_started(SHIPPED_WIDTHS, faces)
    logits = network.predict(faces.astype("float32"), verbose=0)
    flipped = network.predict(faces[:, :, ::-1].astype("float32"), verbose=0)
    output = card.info["output"]
    keras_probs = tta_probs(logits, flipped if output["flip_tta"] else None, output["temperature"])
    onnx_probs = Classifier(card, device="cpu").predict(faces)
    # The shipped graph runs int8 activations; the Keras copy runs float: close, not equal.
    assert np.abs(keras_probs - onnx_probs).max() < 0.1
    assert (keras_probs.argmax(axis=1) == onnx_probs.argmax(axis=1)).mean() >= 0.9


def test_the_exported_graph_runs_both_views_in_one_pass_and_warm_starts(tmp_path, fer_faces):
    """The export's graph (face and mirror as one batch through one copy of the network, ReLU folded into the int8
    convolutions) computes what Keras does, and ``--init-from`` reads it back as it reads the shipped one."""
    import onnx
    import onnxruntime as ort

    from emolens.training.evaluate import tta_probs
    from emolens.training.export import calibration_set, export_onnx, quantize_int8
    from emolens.training.model import build_model
    from emolens.training.warm_start import load_onnx_weights

    faces = np.stack([face for _, face in fer_faces])[..., None]
    network = warm_started(SHIPPED_WIDTHS, faces)
    float_model = export_onnx(network, tmp_path / "fp32.onnx", temperature=0.8, flip_tta=True)
    # 168 faces: five whole batches of 32 (a shorter sixth would break the histogram calibrations).
    calibration = calibration_set(np.concatenate([faces] * 4))
    assert len(calibration) == 160
    int8_model = quantize_int8(float_model, tmp_path / "int8.onnx", calibration, "percentile")
    nodes = [node.op_type for node in onnx.load(str(int8_model)).graph.node]
    assert nodes.count("Conv") == 7 and "Relu" not in nodes, "one copy of the network; ReLU inside the convolutions"

    keras_probs = tta_probs(network.predict(faces.astype("float32"), verbose=0),
                            network.predict(faces[:, :, ::-1].astype("float32"), verbose=0), 0.8)
    onnx_probs = ort.InferenceSession(str(int8_model), providers=["CPUExecutionProvider"]).run(
        None, {"pixels": faces})[0]
    assert np.abs(keras_probs - onnx_probs).max() < 0.1
    assert (keras_probs.argmax(axis=1) == onnx_probs.argmax(axis=1)).mean() >= 0.9

    again = build_model(7, (48, 48, 1), SHIPPED_WIDTHS)
    load_onnx_weights(again, int8_model, np.concatenate([faces] * 8))
    assert (again.predict(faces.astype("float32"), verbose=0).argmax(1) == keras_probs.argmax(1)).mean() >= 0.9


def test_a_wider_network_starts_as_the_shipped_model(fer_faces):
    """Net2Wider: extra filters copy existing ones and the next layer shares their weights, so without noise the
    wider network computes what the shipped one does; the default noise parts the copies without changing that."""
    faces = np.stack([face for _, face in fer_faces])[..., None]
    same = warm_started(SHIPPED_WIDTHS, faces, noise=0.0).predict(faces.astype("float32"), verbose=0)
    exact = warm_started(WIDER, faces, noise=0.0)
    assert np.abs(exact.predict(faces.astype("float32"), verbose=0) - same).max() < 1e-3
    noisy = warm_started(WIDER, faces, noise=0.03)
    assert (noisy.predict(faces.astype("float32"), verbose=0).argmax(1) == same.argmax(1)).mean() >= 0.9
    for network in (exact, noisy):
        kernel = network.get_layer("stage4_conv2").kernel.numpy()
        originals, copies = kernel[..., :SHIPPED_WIDTHS[-1]], kernel[..., SHIPPED_WIDTHS[-1]:]
        nearest = np.abs(copies[..., :, None] - originals[..., None, :]).max(axis=(0, 1, 2)).min(axis=1)
        # Each copy equals some original exactly without noise, and none does with it.
        assert (nearest < 1e-6).all() if network is exact else (nearest > 1e-4).all()


def test_init_from_a_wider_model_is_one_clear_line(tmp_path):
    data = fixture_splits(tmp_path / "data", {"train": slice(0, 2), "val": slice(0, 2)})
    result = subprocess.run([sys.executable, "-m", "emolens", "train", str(data), "--out", str(tmp_path / "run"),
                             "--epochs", "1", "--cache-dir", "", "--widths", "16", "32", "64", "128",
                             "--init-from", str(ModelCard.load().model_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("emolens: error: --init-from") and "fewer than" in last, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_train_on_ferplus_votes_from_the_shipped_weights(tmp_path, fer_faces):
    """FER+ layout, labels drawn from the votes, pipeline views, mixup, a weight average and a teacher, started from
    the shipped model."""
    from ..evaluation.test_ferplus import votes, write_ferplus_split

    rows = [votes(**{column: 8, "neutral": 2}) for column in
            ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")] * 6
    for split in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        write_ferplus_split(tmp_path / "data" / split, fer_faces, rows)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "emolens", "train", str(tmp_path / "data"), "--out", str(out), "--epochs", "1",
               "--batch-size", "16", "--cache-dir", "", "--targets", "probability", "--scene-views", "0.5",
               "--init-from", str(ModelCard.load().model_path), "--mixup", "0.2", "--ema", "0.9",
               "--teacher", str(ModelCard.load().model_path), "--teacher-weight", "0.3"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "pipeline views of" in result.stdout and "each target is 0.3 " in result.stdout
    card = ModelCard.load(out / "emotion.json")
    assert {"kl_to_crowd", "crowd_ece"} <= set(card.info["metrics"]["test"])
    assert card.info["metrics"]["val_scenes"]["mode"] == "scenes"
    assert "--targets probability" in card.info["training"]["command"]
    assert "--init-from" in card.info["training"]["command"]
    assert trained_widths(card) == SHIPPED_WIDTHS, "--init-from's width, not the default"
    assert "--mixup 0.2 --ema 0.9" in card.info["training"]["command"]
    assert "--teacher-weight 0.3" in card.info["training"]["command"]
    assert_best_weights_are_the_average(out)

    resumed = subprocess.run(command[:7] + ["--resume", "--cache-dir", "", "--dropout", "0.5"],
                             capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "its own dropout (0.25); the 0.5 given is ignored" in resumed.stderr


def assert_best_weights_are_the_average(out: Path) -> None:
    """The checkpoint keeps the raw weights (to resume); the best weights, validated and exported, the average.

    The run has one epoch, so without the average its best weights would be the checkpoint's."""
    import keras

    from emolens.training.model import RandomErasing

    raw = keras.saving.load_model(out / "last.keras", custom_objects={"RandomErasing": RandomErasing})
    network = raw.get_layer("emolens_cnn")
    kernel = network.get_layer("logits").kernel.numpy()
    network.load_weights(out / "best.weights.h5")
    averaged = network.get_layer("logits").kernel.numpy()
    assert not np.allclose(kernel, averaged)


def test_a_run_with_mapped_labels_can_be_repeated_from_its_command():
    from emolens.training.train import _command

    config, _ = parse_args(["my_faces/", "--map-label", "contempt=drop", "--map-label", "joy=happy"])
    again, _ = parse_args(shlex.split(_command(config))[2:])
    assert again.label_map == {"contempt": "drop", "joy": "happy"}
