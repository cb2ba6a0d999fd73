"""Accuracy of the shipped (or any) model on a labelled folder.

Two layouts:

* ``DIR/<emotion>/*``: one label per image (FER2013, your own photos); hidden folders are
  ignored and ``label_map`` maps or drops other folder names (``contempt=drop``);
* FER+ (``DIR/label.csv`` beside the PNGs, Microsoft's layout): ten crowd votes per face.
  Faces with a majority among the model's labels are scored against it, and the scores are
  compared with the vote distribution: mean KL divergence and calibration against the crowd.

Three modes:

* full pipeline (default for ``DIR/<emotion>/*``): detect the most confident face, crop it
  with the card's geometry, classify it; an image with no face counts as wrong (``no_face``);
* ``crops``: every image already is a face crop (FER-style) and goes straight to the
  classifier, converted to the card's size and channels like the trainer's loader does
  (the default for FER+, whose images are registered crops);
* ``scenes``: every crop is first put into a camera-like frame (``emolens.evaluation.scenes``: resized,
  lit unevenly, blurred, JPEG-compressed, sometimes across the frame's edge), then the full
  pipeline runs on it: what the app makes of these faces from a camera.

Example::

    report = evaluate_folder("fer2013/test", mode="crops")
    report["accuracy"], report["confusion"]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from emolens.errors import EmolensError, SettingError
from emolens.evaluation.ferplus import (
    crowd_ece,
    crowd_targets,
    is_ferplus_folder,
    match_equalised,
    mean_kl,
    read_label_csv,
)
from emolens.evaluation.labels import DataError, check_label_map, normalise_label
from emolens.evaluation.metrics import classification_metrics, expected_calibration_error
from emolens.images import IMAGE_SUFFIXES, read_image, to_bgr8, to_model_pixels
from emolens.options import AnalyzerOptions
from emolens.pipeline import Analyzer
from emolens.record import file_in_the_way, partial_path, publish, refuse_existing

MODES = ("pipeline", "crops", "scenes")
_BATCH = 256
_SCENE_SEED = 2016  # scenes are drawn from a fixed seed, so every run measures the same frames
_SHEET_FACES, _SHEET_SIDE = 48, 96


@dataclass(frozen=True)
class LabelledSet:
    """Images to score: ``files[i]`` has label index ``targets[i]`` (and crowd ``votes[i]`` for FER+)."""

    files: list[Path]
    targets: np.ndarray
    votes: np.ndarray | None = None
    dropped: int = 0  # FER+ faces without a majority among the labels
    layout: str = "folders"


def labelled_set(root: Path, labels: tuple[str, ...], label_map: dict[str, str] | None = None,
                 fer2013_labels: Path | None = None) -> LabelledSet:
    """The images of a ``DIR/<emotion>/*`` or FER+ folder, in name order.

    With ``fer2013_labels`` (a FER2013 ``<emotion>/`` folder of the same split), a FER+ folder's
    raw faces are scored against FER2013's original labels instead of the crowd's, for the
    faces that match one FER2013 image clearly (``emolens.evaluation.ferplus.match_equalised``).

    Raises:
        EmolensError: no such folder, no images, a class the model does not know, or a ``label_map`` to one.
    """
    check_label_map(label_map or {}, labels)
    if not root.is_dir():
        raise EmolensError(f"not a folder: {root} (expected DIR/<emotion>/*.jpg or a FER+ folder with label.csv)")
    if fer2013_labels:
        return _ferplus_with_fer2013_labels(root, labels, fer2013_labels, label_map)
    if is_ferplus_folder(root):
        return _ferplus_set(root, labels)
    index = {name: i for i, name in enumerate(labels)}
    files: list[Path] = []
    targets: list[int] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            label = normalise_label(class_dir.name, label_map)
        except DataError:
            label = class_dir.name
        if label is None:
            continue
        if label not in index:
            raise EmolensError(f"class folder {class_dir.name!r} is not one of the model's labels "
                               f"({', '.join(labels)}): map it with --map-label {class_dir.name.lower()}=<emotion> "
                               f"or leave it out with --map-label {class_dir.name.lower()}=drop")
        images = [f for f in sorted(class_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
        files += images
        targets += [index[label]] * len(images)
    if not files:
        raise EmolensError(f"no images found under {root}/<emotion>/")
    return LabelledSet(files, np.array(targets, np.int64))


def _ferplus_set(root: Path, labels: tuple[str, ...]) -> LabelledSet:
    if not (root / "label.csv").is_file():
        splits = sorted(p.name for p in root.iterdir() if (p / "label.csv").is_file())
        raise EmolensError(f"{root} holds several FER+ splits; evaluate one of them, e.g. {root / splits[-1]}")
    rows = read_label_csv(root / "label.csv")
    if not rows:
        raise EmolensError(f"{root / 'label.csv'} has no rows")
    crowd = crowd_targets(np.stack([votes for _, votes in rows]), labels)
    keep = np.flatnonzero(crowd.usable)
    return LabelledSet([root / rows[i][0] for i in keep], crowd.majority[keep], crowd.distribution[keep],
                       dropped=int(len(rows) - len(keep)), layout="ferplus")


def _ferplus_with_fer2013_labels(root: Path, labels: tuple[str, ...], fer2013: Path,
                                 label_map: dict[str, str] | None) -> LabelledSet:
    if not (root / "label.csv").is_file():
        raise SettingError(f"{{fer2013_labels}} needs one FER+ split folder (label.csv beside the PNGs), not {root}")
    original = labelled_set(fer2013, labels, label_map)
    raw_files = [root / name for name, _ in read_label_csv(root / "label.csv")]
    raw = np.stack([to_model_pixels(read_image(f), (48, 48), 1) for f in raw_files])
    equalised = np.stack([to_model_pixels(read_image(f), (48, 48), 1) for f in original.files])
    raw_index, original_index = match_equalised(raw, equalised)
    return LabelledSet([raw_files[i] for i in raw_index], original.targets[original_index],
                       dropped=len(raw_files) - len(raw_index), layout="ferplus pixels, FER2013 labels")


def evaluate_folder(root: str | Path, mode: str | None = None, options: AnalyzerOptions | None = None,
                    progress: Callable[[int, int], None] | None = None, label_map: dict[str, str] | None = None,
                    predictions: Path | None = None, fer2013_labels: Path | None = None,
                    overwrite: bool = False) -> dict:
    """Metrics (see ``emolens.evaluation.metrics.classification_metrics``) plus ``no_face`` and ``unreadable``.

    Args:
        mode: ``pipeline``, ``crops`` or ``scenes`` (see the module docstring); ``None``: crops for
            FER+, the pipeline otherwise.
        predictions: write one CSV row per image there, and the worst mistakes as a PNG beside it
            (``worst_path``); existing files are replaced only with ``overwrite``.
        fer2013_labels: score a FER+ split's raw faces against FER2013's labels (see ``labelled_set``).

    Raises:
        EmolensError: see ``labelled_set``; no image could be read; ``predictions`` is a folder or (without
            ``overwrite``) exists, checked before anything is evaluated.
    """
    if predictions:
        check_predictions(predictions, overwrite)
    analyzer = Analyzer(options)
    try:
        items = labelled_set(Path(root), analyzer.labels, label_map, fer2013_labels)
        mode = mode or ("crops" if items.layout.startswith("ferplus") else "pipeline")
        if mode not in MODES:
            raise EmolensError(f"unknown evaluation mode {mode!r} (one of {', '.join(MODES)})")
        probs = np.full((len(items.files), len(analyzer.labels)), np.nan, np.float32)
        readable = np.zeros(len(items.files), bool)
        predict = _predictor(analyzer, mode)
        for start in range(0, len(items.files), _BATCH):
            batch = [read_image(path) for path in items.files[start:start + _BATCH]]
            present = [i for i, image in enumerate(batch) if image is not None]
            readable[[start + i for i in present]] = True
            if present:
                probs[[start + i for i in present]] = predict([batch[i] for i in present], [start + i for i in present])
            if progress:
                progress(min(start + _BATCH, len(items.files)), len(items.files))
    finally:
        analyzer.close()
    if not readable.any():
        raise EmolensError(f"none of the {len(items.files)} images under {root} could be read (e.g. "
                           f"{items.files[0]}): are they images?")
    found = ~np.isnan(probs).any(axis=1)
    predicted = np.where(found, np.nan_to_num(probs).argmax(axis=1), -1)
    report = classification_metrics(items.targets, predicted, analyzer.labels)
    report.update(no_face=int((readable & ~found).sum()), unreadable=int((~readable).sum()), mode=mode,
                  layout=items.layout, model=str(analyzer.card.model_path))
    if found.any():
        report["ece"] = round(expected_calibration_error(probs[found], items.targets[found]), 4)
        report["accuracy_where_found"] = float((predicted[found] == items.targets[found]).mean())
    if items.layout == "ferplus pixels, FER2013 labels":
        report["unmatched"] = items.dropped
    if items.votes is not None:
        report["dropped_no_majority"] = items.dropped
        if found.any():
            report["kl_to_crowd"] = round(mean_kl(items.votes[found], probs[found]), 4)
            report["crowd_ece"] = round(crowd_ece(items.votes[found], probs[found]), 4)
    if predictions:
        write_predictions(predictions, items, probs, readable, analyzer.labels, overwrite)
        report["predictions"] = str(predictions)
    return report


def _predictor(analyzer: Analyzer, mode: str) -> Callable[[list[np.ndarray], list[int]], np.ndarray]:
    """``predict(images, their indices) -> float32 (n, K)`` probabilities, NaN rows where no face was found."""
    card = analyzer.card
    if mode == "crops":
        def predict(images: list[np.ndarray], indices: list[int]) -> np.ndarray:
            pixels = np.stack([to_model_pixels(image, card.input_hw, card.channels) for image in images])
            return analyzer.classifier.predict(pixels)

        return predict

    from emolens.evaluation.scenes import render_scene

    def predict_frames(images: list[np.ndarray], indices: list[int]) -> np.ndarray:
        out = np.full((len(images), len(analyzer.labels)), np.nan, np.float32)
        for offset, (image, index) in enumerate(zip(images, indices)):
            frame = to_bgr8(image)
            if mode == "scenes":  # a seed per image: the same frame whatever the batching
                frame = render_scene(frame, np.random.default_rng((_SCENE_SEED, index)))
            faces = analyzer.analyze(frame)
            if len(faces):
                out[offset] = faces.probs[int(np.argmax(faces.det_score))]
        return out

    return predict_frames


def worst_path(predictions: Path) -> Path:
    """The contact sheet of the worst mistakes written beside ``predictions``: ``<stem>_worst.png``."""
    return predictions.with_name(f"{predictions.stem}_worst.png")


def check_predictions(path: Path, overwrite: bool) -> None:
    """Refuse a predictions path under a file, whose CSV or picture is a folder (or a device), or exists (without
    ``overwrite``).

    Raises:
        EmolensError: names the file.
    """
    taken = file_in_the_way(path.parent)
    if taken is not None:
        raise EmolensError(f"--predictions {path}: {taken} is a file, not a folder")
    for output in (path, worst_path(path)):
        if output.exists() and not output.is_file():
            kind = "a folder" if output.is_dir() else "not a regular file"
            raise EmolensError(f"--predictions {path}: {output} is {kind}; name a new file, e.g. "
                               f"{path / 'predictions.csv' if path.is_dir() else path.with_name('predictions.csv')}")
        refuse_existing(output, overwrite)


def write_predictions(path: Path, items: LabelledSet, probs: np.ndarray, readable: np.ndarray,
                      labels: tuple[str, ...], overwrite: bool = False) -> None:
    """One row per image (file, truth, prediction, probabilities, face found) and ``<stem>_worst.png``, each
    written to a hidden partial file that then takes its name (over an existing file only with ``overwrite``)."""
    found = ~np.isnan(probs).any(axis=1)
    table = pd.DataFrame({"file": [str(f) for f in items.files], "truth": [labels[t] for t in items.targets],
                          "prediction": [labels[int(np.nan_to_num(p).argmax())] if ok else "" for p, ok in
                                         zip(probs, found)]})
    for index, label in enumerate(labels):
        table[label] = probs[:, index]
    table["face_found"] = found
    table["readable"] = readable
    if items.votes is not None:
        for index, label in enumerate(labels):
            table[f"crowd_{label}"] = items.votes[:, index]
    targets = [Path(os.path.realpath(output)) for output in (path, worst_path(path))]  # a link stays a link
    partials = [partial_path(target) for target in targets]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(partials[0], index=False)
        _write_contact_sheet(partials[1], items, probs, found, labels)
        for partial, target in zip(partials, targets):
            _publish(partial, target, overwrite)
    except OSError as error:
        raise EmolensError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)


def _publish(partial: Path, target: Path, overwrite: bool) -> None:
    """``publish``, naming a ``target`` that appeared during the evaluation (without ``overwrite``).

    Raises:
        SettingError: that file.
    """
    try:
        publish(partial, target, overwrite)
    except FileExistsError:
        raise SettingError(f"{target} appeared during the evaluation; pass {{overwrite}} to replace it, or choose "
                           f"another file") from None


def _write_contact_sheet(path: Path, items: LabelledSet, probs: np.ndarray, found: np.ndarray,
                         labels: tuple[str, ...]) -> None:
    """The most confident mistakes, each face captioned "truth > prediction (confidence)"."""
    predicted = np.nan_to_num(probs).argmax(axis=1)
    wrong = np.flatnonzero(found & (predicted != items.targets))
    worst = wrong[np.argsort(-probs[wrong, predicted[wrong]])][:_SHEET_FACES]
    columns = 8
    rows = max(1, -(-len(worst) // columns))
    sheet = np.full((rows * (_SHEET_SIDE + 18), columns * _SHEET_SIDE, 3), 255, np.uint8)
    for slot, index in enumerate(worst):
        image = read_image(items.files[index])
        face = cv2.resize(to_bgr8(image), (_SHEET_SIDE, _SHEET_SIDE), interpolation=cv2.INTER_AREA)
        top, left = (slot // columns) * (_SHEET_SIDE + 18), (slot % columns) * _SHEET_SIDE
        sheet[top:top + _SHEET_SIDE, left:left + _SHEET_SIDE] = face
        caption = f"{labels[items.targets[index]][:3]}>{labels[predicted[index]][:3]} {probs[index].max():.2f}"
        cv2.putText(sheet, caption, (left + 2, top + _SHEET_SIDE + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
    if not cv2.imwrite(str(path), sheet):
        raise EmolensError(f"cannot write {path}")


def format_report(report: dict) -> str:
    """A readable multi-line summary: headline numbers, per-class recall, confusion matrix."""
    labels = list(report["per_class_recall"])
    width = max(len(label) for label in labels) + 2
    lines = [
        f"{report['mode']} evaluation of {report['model']} on {report['n']} images ({report['layout']})",
        f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   "
        f"no face {report['no_face']}   unreadable {report['unreadable']}",
    ]
    if "ece" in report:
        lines.append(f"ECE {report['ece']:.4f}   accuracy where a face was found {report['accuracy_where_found']:.4f}")
    if "unmatched" in report:
        lines.append(f"FER2013 labels on raw pixels: {report['unmatched']} FER+ faces without a clear FER2013 match "
                     f"(left out)")
    if "kl_to_crowd" in report:
        lines.append(f"crowd: mean KL(votes || scores) {report['kl_to_crowd']:.4f}   "
                     f"ECE against the votes {report['crowd_ece']:.4f}   "
                     f"faces without a majority among the labels (left out) {report['dropped_no_majority']}")
    lines += [
        "",
        "per-class recall: " + "  ".join(f"{label} {value:.3f}" for label, value in report["per_class_recall"].items()),
        "",
        "confusion (rows true, columns predicted):",
        " " * width + "".join(f"{label[:8]:>9}" for label in labels),
    ]
    for label, row in zip(labels, report["confusion"]):
        lines.append(f"{label:<{width}}" + "".join(f"{count:>9}" for count in row))
    if "predictions" in report:
        lines += ["", f"per-image predictions: {report['predictions']} (worst mistakes: "
                      f"{worst_path(Path(report['predictions']))})"]
    return "\n".join(lines)
