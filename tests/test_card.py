import json
import re
import shutil
from importlib import resources

import numpy as np
import pytest

from emolens.card import ModelCard, packaged_model_dir
from emolens.classify import Classifier
from emolens.errors import EmolensError

from .test_cli import assert_one_line_error, emolens


def test_shipped_card_is_complete():
    card = ModelCard.load()
    assert card.model_path.is_file()
    assert set(card.labels) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert card.input_hw == (48, 48) and card.channels == 1
    assert 1.0 < card.crop.scale < 1.6
    assert card.info["metrics"]["test"]["n"] == 3122  # FER+ test faces with a majority among the seven emotions
    assert card.info["metrics"]["fer2013_test"]["n"] == 3589
    assert card.info["quantization"]["dtype"] in ("int8", "float32")


def test_the_shipped_models_by_name_share_one_contract():
    fast, accurate = ModelCard.load("fast"), ModelCard.load("accurate")
    assert ModelCard.load() == fast and fast.model_path.name == "emotion.onnx"
    assert accurate.model_path.name == "emotion-accurate.onnx"
    assert (accurate.labels, accurate.input_hw, accurate.channels) == (fast.labels, fast.input_hw, fast.channels)
    assert accurate.info["metrics"]["test"]["n"] == 3122
    assert accurate.info["metrics"]["val"]["accuracy"] > fast.info["metrics"]["val"]["accuracy"]
    members = accurate.info["training"]["members"]
    assert [member["sha256"] for member in members][0] == fast.sha256
    backbone = members[1]["backbone"]
    assert (backbone["package"], backbone["version"]) == ("@vladmandic/human", "3.3.6")
    assert backbone["tarball_sha256"] == "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
    assert set(backbone["licences"]) == {"package", "upstream", "training_data"}
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1), dtype=np.uint8)
    fast_scores, accurate_scores = (Classifier(card, device="cpu").predict(faces) for card in (fast, accurate))
    np.testing.assert_allclose(accurate_scores.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(fast_scores, accurate_scores, atol=1e-3)


@pytest.fixture
def card_copy(tmp_path):
    for name in ("emotion.json", "emotion.onnx"):
        shutil.copy(packaged_model_dir() / name, tmp_path / name)
    return tmp_path / "emotion.json"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda card: (card.parent / "emotion.onnx").unlink(), "emotion model not found"),
        (lambda card: (card.parent / "emotion.onnx").write_bytes(b"not a model"), "does not match its card"),
        (lambda card: card.write_text("{"), "malformed"),
        (lambda card: card.write_text(json.dumps({**json.loads(card.read_text()), "crop": {}})), "malformed"),
        (lambda card: card.unlink(), "model card not found"),
    ],
)
def test_broken_model_files_give_clear_errors(card_copy, damage, message):
    damage(card_copy)
    with pytest.raises(EmolensError, match=message):
        ModelCard.load(card_copy)


def test_onnx_path_finds_its_card(card_copy):
    assert ModelCard.load(card_copy.with_suffix(".onnx")).card_path == card_copy


def edited(card_path, edit):
    """Rewrite the card with ``edit`` applied to its JSON (``edit`` returns a replacement or edits in place)."""
    raw = json.loads(card_path.read_text())
    replacement = edit(raw)
    card_path.write_text(json.dumps(raw if replacement is None else replacement))


CARD_DAMAGES = [
    # (what the user did to the card, the field the one-line error names)
    (lambda raw: raw.update(labels=raw["labels"][:6]), "labels has 6 names, the graph returns 7"),
    (lambda raw: raw.update(labels=[*raw["labels"], "contempt"]), "labels has 8 names, the graph returns 7"),
    (lambda raw: raw.update(labels=["happy", *raw["labels"][1:]]), "labels must be unique; repeated: happy"),
    (lambda raw: raw.update(labels=[]), "labels: List should have at least 1 item"),
    (lambda raw: raw["crop"].update(scale=0), "crop.scale: Input should be greater than 0"),
    (lambda raw: raw["crop"].update(scale=-1), "crop.scale: Input should be greater than 0"),
    (lambda raw: raw["crop"].update(scale="1.2"), "crop.scale: Input should be a valid number"),
    (lambda raw: raw.pop("output") and None, "output: Field required"),
    (lambda raw: raw["input"].update(height=64), "input.height, width, channels are (64, 48, 1), the graph takes"),
    (lambda raw: raw["input"].update(height=0), "input.height: Input should be greater than 0"),
    (lambda raw: raw["input"].update(channels=3), "input.height, width, channels are (48, 48, 3)"),
    (lambda raw: raw["input"].update(channels=2), "input.channels: Input should be 1 or 3"),
    (lambda raw: raw["input"].update(name="image"), "input.name is 'image', the graph's input is 'pixels'"),
    (lambda raw: raw["input"].update(dtype="float32"), "input.dtype: Input should be 'uint8'"),
    (lambda raw: raw["output"].update(name="logits"), "output.name is 'logits', the graph's output is 'probs'"),
    (lambda raw: [raw], "it must be a JSON object, not a list"),
]


@pytest.mark.parametrize(("damage", "message"), CARD_DAMAGES)
def test_a_card_that_does_not_fit_its_model_is_refused_at_load_naming_the_field(card_copy, damage, message):
    edited(card_copy, damage)
    with pytest.raises(EmolensError, match=re.escape(message)):
        Classifier(ModelCard.load(card_copy), "cpu")  # the schema when the card loads, the graph when the model does


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_the_model_is_read_into_one_session_per_classifier(monkeypatch, device):
    """Before: the card built a session only to check the graph, then the classifier built its own
    (and ``auto`` a third, for CUDA, on a machine without it)."""
    import onnxruntime as ort

    made = []
    real = ort.InferenceSession

    def counted(*args, **kwargs):
        made.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counted)
    classifier = Classifier(ModelCard.load(), device)
    assert len(made) == 1
    crops = np.zeros((2, *classifier.card.input_hw, classifier.card.channels), np.uint8)
    assert classifier.predict(crops).shape == (2, 7)


@pytest.mark.parametrize(("damage", "message"), [CARD_DAMAGES[0], CARD_DAMAGES[7], CARD_DAMAGES[8]])
def test_analyze_with_a_card_that_does_not_fit_writes_nothing(card_copy, tmp_path, damage, message):
    """Before: a header whose columns did not match its rows, or a traceback after a header-only CSV."""
    edited(card_copy, damage)
    out = tmp_path / "t.csv"
    result = emolens("analyze", resources.files("emolens.assets") / "astronaut.jpg", "-o", out, "--model", card_copy)
    assert_one_line_error(result, message)
    assert not out.exists()
