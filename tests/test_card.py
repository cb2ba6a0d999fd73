import json
import shutil

import pytest

from emolens.card import ModelCard, packaged_model_dir
from emolens.errors import EmolensError


def test_shipped_card_is_complete():
    card = ModelCard.load()
    assert card.model_path.is_file()
    assert set(card.labels) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert card.input_hw == (48, 48) and card.channels == 1
    assert 1.0 < card.crop.scale < 1.6
    assert card.info["metrics"]["test"]["n"] == 3589
    assert card.info["quantization"]["dtype"] in ("int8", "float32")


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
