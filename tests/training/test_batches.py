"""Training batches: mixup blends each face, its target and its weight by one and the same share."""

import numpy as np
import pytest

pytest.importorskip("keras", reason="training needs the 'train' extra")

from emolens.training.batches import TrainingBatches  # noqa: E402


def batches_of_known_faces(mixup: float) -> TrainingBatches:
    """Faces whose pixels and weight encode their class, so any blend can be checked against its target."""
    classes = np.arange(700) % 7
    images = np.broadcast_to(classes[:, None, None, None], (700, 4, 4, 1)).astype(np.uint8)
    targets = np.eye(7, dtype=np.float32)[classes]
    return TrainingBatches(images, targets, (classes + 1).astype(np.float32), batch_size=700, seed=0, mixup=mixup)


def test_mixup_blends_faces_targets_and_weights_alike():
    images, targets, weights = batches_of_known_faces(mixup=0.2)[0]
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(images[:, 0, 0, 0], targets @ np.arange(7), atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(1, 2, 3)), 0.0, atol=1e-4)  # whole faces blended, not patches
    np.testing.assert_allclose(weights, targets @ np.arange(1, 8), atol=1e-4)
    blended = targets.max(axis=1) < 0.99
    assert 0.2 < blended.mean() < 0.9, "Beta(0.2, 0.2) leaves many faces nearly whole and blends the rest"


def test_without_mixup_the_batch_is_the_data():
    images, targets, weights = batches_of_known_faces(mixup=0.0)[0]
    assert set(np.unique(targets)) == {0.0, 1.0}
    np.testing.assert_array_equal(images[:, 0, 0, 0], targets.argmax(axis=1))
    np.testing.assert_array_equal(weights, targets.argmax(axis=1) + 1)
