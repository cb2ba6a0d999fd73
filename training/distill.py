"""Learn from a bigger exported model as well as from the labels (``emolens train --teacher``).

Knowledge distillation (Hinton et al., 2015), offline: the teacher reads each clean training
face once, before fitting, and the student's target becomes a blend of the face's own target
(its vote distribution or one-hot label) and the teacher's probabilities. Those come from the
teacher's exported model as the app runs it, with its own flip-TTA and temperature, which was
fitted to the crowd's votes on val, so they are the teacher's estimate of how people would vote.
A wider model over the cost budget can thus lend its accuracy to one within it.

Example::

    targets = blend_with_teacher(targets, x_train, Path("runs/wide/emotion.onnx"), labels, weight=0.5)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emolens.card import ModelCard
from emolens.classify import Classifier
from emolens.errors import EmolensError


def teacher_probabilities(teacher: Path, images: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """``float32 (n, K)``: the teacher's scores for uint8 faces, in ``labels``' order."""
    card = ModelCard.load(teacher)
    if card.labels != labels:
        raise EmolensError(f"--teacher {teacher} scores {', '.join(card.labels)}; this run learns "
                           f"{', '.join(labels)} (the same labels in the same order are needed)")
    if (*card.input_hw, card.channels) != images.shape[1:]:
        raise EmolensError(f"--teacher {teacher} reads {card.input_hw[0]}x{card.input_hw[1]}x{card.channels} faces; "
                           f"this run's are {'x'.join(map(str, images.shape[1:]))}")
    classifier = Classifier(card, device="cpu")
    return np.concatenate([classifier.predict(images[start:start + 512]) for start in range(0, len(images), 512)])


def blend_with_teacher(targets: np.ndarray, images: np.ndarray, teacher: Path, labels: tuple[str, ...],
                       weight: float) -> np.ndarray:
    """``(1 - weight) * targets + weight * teacher``: each row still sums to 1."""
    return ((1 - weight) * targets + weight * teacher_probabilities(teacher, images, labels)).astype(np.float32)
