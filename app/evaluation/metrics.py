"""Classification metrics shared by ``emolens evaluate`` and the trainer (numpy only)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``int64 (K, K)``: rows are true classes, columns predicted ones."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    ``y_pred`` may hold -1 for "no prediction" (no face found): counted wrong, never a class.
    """
    num_classes = len(labels)
    valid = y_pred >= 0
    matrix = confusion_matrix(y_true[valid], y_pred[valid], num_classes)
    support = np.bincount(y_true, minlength=num_classes)
    true_positive = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    precision = np.divide(true_positive, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros(num_classes), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes),
                   where=(precision + recall) > 0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(true_positive.sum() / max(len(y_true), 1)),
        "macro_f1": float(f1.mean()),
        "per_class_precision": dict(zip(labels, precision.round(4).tolist())),
        "per_class_recall": dict(zip(labels, recall.round(4).tolist())),
        "per_class_f1": dict(zip(labels, f1.round(4).tolist())),
        "confusion": matrix.tolist(),
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over equal-width bins."""
    return calibration_gap(probs.max(axis=1), (probs.argmax(axis=1) == y_true).astype(np.float64), bins)


def calibration_gap(confidence: np.ndarray, outcome: np.ndarray, bins: int = 15) -> float:
    """Mean |outcome - confidence| within equal-width confidence bins, weighted by each bin's share.

    ``outcome`` is 1/0 for "the top class was right" (ECE) or, against a crowd, the share of
    votes the top class got.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            error += members.mean() * abs(outcome[members].mean() - confidence[members].mean())
    return float(error)
