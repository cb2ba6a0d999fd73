"""FER+ crowd labels: ten votes per face, turned into targets by the FER+ paper's rules.

FER+ (Barsoum et al., ICMI 2016) re-labelled every FER2013 face with ten crowd votes over
``neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF``
(NF: not a face). Microsoft's layout is ``FER2013Train|Valid|Test/label.csv`` beside the
PNGs; ``fer2013new.csv`` holds the same votes by row of ``fer2013.csv``.

The rules, from the paper's reference code (``src/ferplus.py``):

* **outlier removal**: a class with a single vote is set to zero first (optional);
* **majority**: the top class if it holds more than half of the remaining votes; a face
  whose majority is contempt, unknown or NF, or that has none, gets no majority label;
* **distribution**: the remaining votes of the model's emotions, normalised to sum to 1.

Contempt, unknown and NF are not among our seven emotions: their votes are dropped from
the distribution, and faces whose majority is one of them are left out.

Example::

    rows = read_label_csv(Path("FER2013Test/label.csv"))
    targets = crowd_targets(np.stack([votes for _, votes in rows]), card.labels)
    targets.majority, targets.distribution
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emolens.evaluation.labels import DataError
from emolens.evaluation.metrics import calibration_gap

#: Vote columns of ``label.csv`` (after the image name and face box) and of ``fer2013new.csv``.
VOTE_COLUMNS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                 "contempt", "unknown", "NF")
#: FER+ split folders and the split each one is.
SPLIT_FOLDERS: dict[str, str] = {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}
#: ``fer2013new.csv``'s ``Usage`` values and the split each one is.
USAGE_SPLITS: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

_CANONICAL = {"happiness": "happy", "sadness": "sad", "anger": "angry"}


@dataclass(frozen=True)
class CrowdTargets:
    """Per face: ``majority`` label index (-1: none among the labels) and the vote ``distribution``."""

    majority: np.ndarray  # int64 (n,)
    distribution: np.ndarray  # float32 (n, K); all zero when no vote falls on the labels

    @property
    def usable(self) -> np.ndarray:
        """Faces with a majority among the labels: the ones FER+ figures are computed on."""
        return self.majority >= 0


def is_ferplus_folder(path: Path) -> bool:
    """A FER+ split folder (``label.csv`` beside the images) or a root holding such folders."""
    return (path / "label.csv").is_file() or any((path / name / "label.csv").is_file() for name in SPLIT_FOLDERS)


def read_label_csv(path: Path) -> list[tuple[str, np.ndarray]]:
    """``(image name, votes float32 (10,))`` per row of a FER+ ``label.csv`` (no header).

    Raises:
        DataError: a row does not have an image name, a box and ten vote counts.
    """
    rows: list[tuple[str, np.ndarray]] = []
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            try:
                if len(row) != 2 + len(VOTE_COLUMNS):
                    raise ValueError(f"{len(row)} columns")
                rows.append((row[0], np.array([float(v) for v in row[2:]], np.float32)))
            except ValueError as error:
                raise DataError(f"{path}:{number}: not a FER+ label row (image, box, ten votes): {error}") from None
    return rows


def crowd_targets(votes: np.ndarray, labels: tuple[str, ...], drop_outliers: bool = True) -> CrowdTargets:
    """Majority labels and vote distributions over ``labels`` for ``votes (n, 10)``."""
    votes = np.asarray(votes, np.float32).reshape(-1, len(VOTE_COLUMNS))
    if drop_outliers:
        votes = np.where(votes == 1, 0, votes)
    names = [_CANONICAL.get(column, column) for column in VOTE_COLUMNS]
    columns = [names.index(label) for label in labels]
    total = votes.sum(axis=1)
    top = votes.argmax(axis=1)
    has_majority = votes.max(axis=1) > total / 2
    to_label = {column: index for index, column in enumerate(columns)}
    majority = np.array([to_label.get(int(t), -1) if ok else -1 for t, ok in zip(top, has_majority)], np.int64)
    emotion_votes = votes[:, columns]
    sums = emotion_votes.sum(axis=1, keepdims=True)
    distribution = np.divide(emotion_votes, sums, out=np.zeros_like(emotion_votes), where=sums > 0)
    return CrowdTargets(majority=majority, distribution=distribution.astype(np.float32))


def mean_kl(distribution: np.ndarray, probs: np.ndarray, eps: float = 1e-7) -> float:
    """Mean KL(crowd || model) in nats: how far the model's scores are from the vote distribution."""
    p = np.asarray(distribution, np.float64)
    q = np.clip(np.asarray(probs, np.float64), eps, 1.0)
    terms = np.where(p > 0, p * (np.log(np.maximum(p, eps)) - np.log(q)), 0.0)
    return float(terms.sum(axis=1).mean())


def crowd_ece(distribution: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Calibration against the crowd: the gap between the model's confidence in its top class
    and the share of votes that class got, over equal-width confidence bins."""
    top = probs.argmax(axis=1)
    return calibration_gap(probs.max(axis=1), distribution[np.arange(len(top)), top], bins)


def split_folders(root: Path) -> dict[str, Path]:
    """``split -> folder`` of a FER+ root, or ``{"test": root}``-style for a single split folder."""
    if (root / "label.csv").is_file():
        return {SPLIT_FOLDERS.get(root.name, "test"): root}
    return {split: root / name for name, split in SPLIT_FOLDERS.items() if (root / name / "label.csv").is_file()}


#: A raw face and an equalised JPG are the same face when, after equalising the raw one, they
#: differ by at most this many grey levels on average ...
MATCH_MAX_MEAN_DIFFERENCE = 10.0
#: ... each is the other's nearest face, and the second-nearest is at least twice as far.
MATCH_MAX_DISTANCE_RATIO = 0.5


def match_equalised(raw: np.ndarray, equalised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(raw index, equalised index)`` of the same face, where a clear one-to-one match exists.

    FER+ holds FER2013's raw pixels; the FER2013 copy in ``../shared`` is histogram-equalised
    and JPEG-compressed. Both are ``uint8 (n, 48, 48)``. Faces are compared at 12x12 for the
    nearest neighbours, then at full size for the mean difference.
    """
    raw_eq = np.stack([cv2.equalizeHist(face) for face in raw.reshape(len(raw), 48, 48)]).astype(np.float32)
    other = equalised.reshape(len(equalised), 48, 48).astype(np.float32)

    def small(faces: np.ndarray) -> np.ndarray:
        return faces.reshape(len(faces), 12, 4, 12, 4).mean(axis=(2, 4)).reshape(len(faces), -1)

    a, b = small(raw_eq), small(other)
    distance = np.sqrt(np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T, 0))
    nearest = np.argsort(distance, axis=1)[:, :2]
    rows = np.arange(len(a))
    mutual = np.argmin(distance, axis=0)[nearest[:, 0]] == rows
    clear = distance[rows, nearest[:, 0]] <= MATCH_MAX_DISTANCE_RATIO * distance[rows, nearest[:, 1]]
    close = np.abs(raw_eq - other[nearest[:, 0]]).mean(axis=(1, 2)) <= MATCH_MAX_MEAN_DIFFERENCE
    keep = np.flatnonzero(mutual & clear & close)
    return keep, nearest[keep, 0]
