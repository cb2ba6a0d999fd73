import numpy as np
import onnxruntime as ort
import pytest

from emolens.card import ModelCard
from emolens.classify import Classifier
from emolens.errors import EmolensError
from emolens.images import to_model_pixels


@pytest.fixture(scope="module")
def classifier():
    return Classifier(ModelCard.load(), device="cpu")


def test_batch_equals_single_calls(classifier, fer_faces):
    card = classifier.card
    crops = np.stack([to_model_pixels(face, card.input_hw, card.channels) for _, face in fer_faces])
    batch = classifier.predict(crops)
    singles = np.concatenate([classifier.predict(crops[i:i + 1]) for i in range(len(crops))])
    assert batch.shape == (len(crops), len(card.labels)) and batch.dtype == np.float32
    assert np.allclose(batch.sum(axis=1), 1, atol=1e-5)
    assert np.allclose(batch, singles, atol=1e-5)


def test_model_beats_chance_on_fer_fixtures(classifier, fer_faces):
    card = classifier.card
    crops = np.stack([to_model_pixels(face, card.input_hw, card.channels) for _, face in fer_faces])
    truth = np.array([card.labels.index(emotion) for emotion, _ in fer_faces])
    accuracy = (classifier.predict(crops).argmax(axis=1) == truth).mean()
    assert accuracy > 0.5  # training faces: the shipped model knows them better than test faces


def test_empty_batch(classifier):
    assert classifier.predict(np.zeros((0, 48, 48, 1), np.uint8)).shape == (0, 7)


def test_cpu_provider_is_named_in_one_line(classifier):
    assert classifier.provider == "CPU"
    assert classifier.describe().startswith("emotion model emotion.onnx on CPU")
    assert "\n" not in classifier.describe()


def test_auto_falls_back_to_cpu_with_a_reason_or_uses_cuda():
    auto = Classifier(ModelCard.load(), device="auto")
    if auto.provider == "CPU":
        assert "CUDA" in auto.describe() or "CUDAExecutionProvider" not in ort.get_available_providers()
    else:
        assert auto.describe().endswith("on CUDA")


def test_cuda_request_fails_clearly_without_cuda():
    probe = Classifier(ModelCard.load(), device="auto")
    if probe.provider == "CUDA":
        pytest.skip("this machine has a working CUDA provider")
    with pytest.raises(EmolensError, match="CUDA is not usable here"):
        Classifier(ModelCard.load(), device="cuda")


def test_unknown_device():
    with pytest.raises(EmolensError, match="unknown device"):
        Classifier(ModelCard.load(), device="tpu")
