"""Training batches that change every epoch: pipeline views and labels drawn from crowd votes.

Keras fits on a ``PyDataset`` so that each epoch can (a) show some faces as the app's
pipeline crops them instead of their clean crop and (b) in the FER+ paper's
"probability" mode, draw each face's label afresh from its vote distribution.

Example::

    batches = TrainingBatches(x, targets, weights, batch_size=128, seed=0, views=views, view_probability=0.5)
    trainer.fit(batches, epochs=30)
"""

from __future__ import annotations

import math

import keras
import numpy as np


class TrainingBatches(keras.utils.PyDataset):
    """``(float32 images, float32 targets (n, K), float32 sample weights)`` batches, reshuffled each epoch.

    Args:
        targets: ``(n, K)`` one-hot labels or vote distributions.
        views: ``(n, H, W, C)`` alternative images (a zero-area mask ``view_found`` marks missing ones).
        draw_labels: replace each target by a one-hot label drawn from it, every epoch.
        mixup: blend each face, its target and its weight with another face of the batch by a
            ``Beta(mixup, mixup)`` weight (Zhang et al., 2018); 0 leaves the batch as it is.
    """

    def __init__(self, images: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int, seed: int,
                 views: np.ndarray | None = None, view_found: np.ndarray | None = None,
                 view_probability: float = 0.0, draw_labels: bool = False, mixup: float = 0.0):
        super().__init__()
        self.images, self.targets, self.weights = images, targets.astype(np.float32), weights
        self.views, self.view_probability, self.draw_labels = views, view_probability, draw_labels
        self.mixup = mixup
        self.view_found = view_found if view_found is not None else np.ones(len(images), bool)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.epoch_images[rows].astype(np.float32)
        targets, weights = self.epoch_targets[rows], self.weights[rows]
        if self.mixup > 0:
            share = self.rng.beta(self.mixup, self.mixup, len(rows)).astype(np.float32)
            partner = self.rng.permutation(len(rows))
            images = _blend(images, images[partner], share[:, None, None, None])
            targets = _blend(targets, targets[partner], share[:, None])
            weights = _blend(weights, weights[partner], share)
        return images, targets, weights

    def on_epoch_end(self) -> None:
        count = len(self.images)
        self.order = self.rng.permutation(count)
        self.epoch_images = self.images
        if self.views is not None and self.view_probability > 0:
            use_view = self.view_found & (self.rng.random(count) < self.view_probability)
            self.epoch_images = np.where(use_view[:, None, None, None], self.views, self.images)
        self.epoch_targets = self.targets
        if self.draw_labels:
            cumulative = np.cumsum(self.targets, axis=1)
            drawn = (self.rng.random((count, 1)) * cumulative[:, -1:] < cumulative).argmax(axis=1)
            self.epoch_targets = np.eye(self.targets.shape[1], dtype=np.float32)[drawn]


def _blend(first: np.ndarray, second: np.ndarray, share: np.ndarray) -> np.ndarray:
    return share * first + (1 - share) * second
