"""Evaluate a trained network: metrics, calibration, flip test-time augmentation, plots.

Temperature and the flip-TTA decision are fitted on ``val`` only; ``test`` is reported
once, with the settings chosen there.

Example::

    logits = predict_logits(network, x_val)
    temperature = fit_temperature(logits, y_val)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from emolens.evaluation.ferplus import crowd_ece, mean_kl
from emolens.evaluation.metrics import classification_metrics, expected_calibration_error


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def predict_logits(network, images: np.ndarray, flip: bool = False, batch_size: int = 512) -> np.ndarray:
    """Logits of ``uint8 (n, H, W, C)`` images; with ``flip``, of their mirror images."""
    pixels = images[:, :, ::-1] if flip else images
    return np.asarray(network.predict(pixels.astype("float32"), batch_size=batch_size, verbose=0))


def tta_probs(logits: np.ndarray, flipped_logits: np.ndarray | None, temperature: float) -> np.ndarray:
    """Probabilities, averaged with those of the mirrored image when ``flipped_logits`` is given."""
    probs = softmax(logits, temperature)
    if flipped_logits is None:
        return probs
    return (probs + softmax(flipped_logits, temperature)) / 2


def fit_temperature(logits: np.ndarray, targets: np.ndarray, flipped_logits: np.ndarray | None = None,
                    distribution: np.ndarray | None = None) -> float:
    """The temperature minimising validation negative log-likelihood (golden-section search).

    With ``distribution`` (crowd votes, ``(n, K)``) the likelihood is that of the votes, so the
    calibrated scores match how often people pick each emotion rather than one label.
    """
    soft = distribution if distribution is not None else np.eye(logits.shape[1])[targets]

    def nll(temperature: float) -> float:
        probs = tta_probs(logits, flipped_logits, temperature)
        return float(-(soft * np.log(probs + 1e-12)).sum(axis=1).mean())

    low, high = 0.25, 5.0
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return round((low + high) / 2, 4)


def metrics_report(probs: np.ndarray, targets: np.ndarray, labels: tuple[str, ...],
                   distribution: np.ndarray | None = None) -> dict:
    """Classification metrics and ECE; with crowd votes also the KL to them and ECE against them."""
    report = classification_metrics(targets, probs.argmax(axis=1), labels)
    report["ece"] = round(expected_calibration_error(probs, targets), 4)
    if distribution is not None:
        report["kl_to_crowd"] = round(mean_kl(distribution, probs), 4)
        report["crowd_ece"] = round(crowd_ece(distribution, probs), 4)
    return report


def save_confusion_png(confusion: list[list[int]], labels: tuple[str, ...], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.array(confusion, dtype=np.float64)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(6.5, 5.5))
    axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for row in range(len(labels)):
        for col in range(len(labels)):
            axes.text(col, row, f"{int(matrix[row, col])}\n{rates[row, col]:.0%}", ha="center", va="center",
                      fontsize=7, color="white" if rates[row, col] > 0.5 else "black")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def save_curves_png(history_csv: Path, path: Path) -> None:
    """Training and validation loss and accuracy per epoch, from Keras' CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(history_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    for key, axes in (("loss", loss_axes), ("accuracy", accuracy_axes)):
        axes.plot(epochs, [float(row[key]) for row in rows], label=f"train (augmented) {key}")
        axes.plot(epochs, [float(row[f"val_{key}"]) for row in rows], label=f"val {key}")
        axes.set_xlabel("epoch")
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
