"""Accuracy of the shipped (or any) model on a labelled folder ``DIR/<emotion>/*``.

Two modes:

* full pipeline (default): detect the most confident face, crop it with the card's
  geometry, classify it; an image with no face counts as wrong (and in ``no_face``);
* ``crops=True``: every image already is a face crop (FER-style) and goes straight to the
  classifier, converted to the card's size and channels like the trainer's loader does.

Example::

    report = evaluate_folder("fer2013/test", crops=True)
    report["accuracy"], report["confusion"]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from emolens.classify import Classifier
from emolens.errors import EmolensError
from emolens.images import IMAGE_SUFFIXES, read_image, to_bgr8, to_model_pixels
from emolens.labels import normalise_label
from emolens.metrics import classification_metrics
from emolens.pipeline import Analyzer, AnalyzerOptions

_BATCH = 256


def labelled_files(root: Path, labels: tuple[str, ...]) -> list[tuple[Path, int]]:
    """``(file, label index)`` for every image under ``root/<emotion>/``, in name order.

    Raises:
        EmolensError: no such folder, no class folders, or a class the model does not know.
    """
    if not root.is_dir():
        raise EmolensError(f"not a folder: {root} (expected DIR/<emotion>/*.jpg)")
    index = {name: i for i, name in enumerate(labels)}
    items: list[tuple[Path, int]] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = normalise_label(class_dir.name)
        if label not in index:
            raise EmolensError(f"class folder {class_dir.name!r} is not one of the model's labels: {', '.join(labels)}")
        items += [(f, index[label]) for f in sorted(class_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise EmolensError(f"no images found under {root}/<emotion>/")
    return items


def evaluate_folder(root: str | Path, crops: bool = False, options: AnalyzerOptions | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Metrics (see ``emolens.metrics.classification_metrics``) plus ``no_face`` and ``unreadable``."""
    analyzer = Analyzer(options)
    try:
        items = labelled_files(Path(root), analyzer.labels)
        targets = np.array([label for _, label in items])
        predictions = np.full(len(items), -1)
        unreadable = no_face = 0
        predict = _crop_predictor(analyzer.classifier) if crops else _pipeline_predictor(analyzer)
        for start in range(0, len(items), _BATCH):
            batch = [read_image(path) for path, _ in items[start:start + _BATCH]]
            readable = [i for i, image in enumerate(batch) if image is not None]
            unreadable += len(batch) - len(readable)
            found = predict([batch[i] for i in readable])
            for i, prediction in zip(readable, found):
                predictions[start + i] = prediction
            no_face += sum(prediction < 0 for prediction in found)
            if progress:
                progress(min(start + _BATCH, len(items)), len(items))
    finally:
        analyzer.close()
    report = classification_metrics(targets, predictions, analyzer.labels)
    report.update(no_face=int(no_face), unreadable=int(unreadable), mode="crops" if crops else "pipeline",
                  model=str(analyzer.card.model_path))
    return report


def _crop_predictor(classifier: Classifier) -> Callable[[list[np.ndarray]], list[int]]:
    card = classifier.card

    def predict(images: list[np.ndarray]) -> list[int]:
        if not images:
            return []
        pixels = np.stack([to_model_pixels(image, card.input_hw, card.channels) for image in images])
        return classifier.predict(pixels).argmax(axis=1).tolist()

    return predict


def _pipeline_predictor(analyzer: Analyzer) -> Callable[[list[np.ndarray]], list[int]]:
    def predict(images: list[np.ndarray]) -> list[int]:
        labels = []
        for image in images:
            faces = analyzer.analyze(to_bgr8(image))
            labels.append(int(faces.probs[0].argmax()) if len(faces) else -1)
        return labels

    return predict


def format_report(report: dict) -> str:
    """A readable multi-line summary: headline numbers, per-class recall, confusion matrix."""
    labels = list(report["per_class_recall"])
    width = max(len(label) for label in labels) + 2
    lines = [
        f"{report['mode']} evaluation of {report['model']} on {report['n']} images",
        f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   "
        f"no face {report['no_face']}   unreadable {report['unreadable']}",
        "",
        "per-class recall: " + "  ".join(f"{label} {value:.3f}" for label, value in report["per_class_recall"].items()),
        "",
        "confusion (rows true, columns predicted):",
        " " * width + "".join(f"{label[:8]:>9}" for label in labels),
    ]
    for label, row in zip(labels, report["confusion"]):
        lines.append(f"{label:<{width}}" + "".join(f"{count:>9}" for count in row))
    return "\n".join(lines)
