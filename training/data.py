"""Load FER-style data sets into uint8 arrays, labels in one fixed order.

Five layouts are understood:

* the Kaggle CSV ``fer2013.csv`` (columns ``emotion,pixels,Usage``; splits from ``Usage``),
* FER+ in Microsoft's layout: ``ROOT/FER2013Train|Valid|Test/label.csv`` beside the PNGs,
* FER+ as ``fer2013new.csv`` (the votes), joined by row to ``fer2013.csv`` in the same folder,
* ``ROOT/<split>/<emotion>/*`` (splits ``train``, ``val``/``validation``, ``test``),
* ``ROOT/<emotion>/*``, split into train/val/test with a seeded, stratified draw.

FER+ faces keep their crowd votes: ``Dataset.distributions[split]`` holds each face's vote
distribution over the labels (``emolens.evaluation.ferplus`` has the rules), and the integer label is
the majority; faces without a majority among the labels are left out.

Every image, whatever its size, mode (gray, RGB, RGBA, 16-bit) or format, becomes
``uint8 (size, size, channels)``. Unreadable files are skipped and counted. Decoded
arrays are cached as ``.npz`` so that a second run starts in seconds.

Example::

    data = load_dataset("fer2013/", image_size=48, channels=1)
    x, y = data.splits["train"]
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolens.evaluation.ferplus import (
    USAGE_SPLITS,
    VOTE_COLUMNS,
    crowd_targets,
    is_ferplus_folder,
    read_label_csv,
    split_folders,
)
from emolens.evaluation.labels import FER2013_LABELS, DataError, normalise_label
from emolens.images import IMAGE_SUFFIXES, read_image, to_model_pixels

_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "publictest": "val", "test": "test", "privatetest": "test"}
_CACHE_VERSION = "2"


@dataclass
class Dataset:
    """Images and integer labels per split, with ``labels[i]`` naming class ``i``.

    ``distributions[split]`` (FER+ only) is ``float32 (n, K)``: each face's crowd votes.
    """

    labels: tuple[str, ...]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    skipped: int = 0
    source: str = ""
    notes: list[str] = field(default_factory=list)
    distributions: dict[str, np.ndarray] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {name: int(len(y)) for name, (_, y) in self.splits.items()}


def load_dataset(
    root: str | os.PathLike,
    image_size: int = 48,
    channels: int = 1,
    classes: list[str] | None = None,
    label_map: dict[str, str] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    drop_single_votes: bool = True,
) -> Dataset:
    """Load a CSV or folder data set; see the module docstring for the layouts.

    Args:
        classes: keep only these classes (canonical names), in canonical order.
        label_map: extra ``name -> emotion`` or ``name -> "drop"`` mappings.
        val_fraction, test_fraction: used only for the ``ROOT/<emotion>/*`` layout.
        cache_dir: where decoded arrays are cached; ``None`` disables the cache.
        drop_single_votes: FER+ only: the paper's outlier rule (a class with one vote gets none).
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"data set not found: {root}")
    options = (image_size, channels, sorted(classes or []), sorted((label_map or {}).items()),
               val_fraction, test_fraction, seed, drop_single_votes)
    cache = _cache_path(root, options, cache_dir) if cache_dir else None
    if cache and cache.exists():
        return _read_cache(cache)
    if _is_ferplus(root):
        dataset = _read_ferplus(root, image_size, channels, classes, drop_single_votes)
    else:
        if root.is_file():
            items, skipped = _read_csv(root, image_size, channels, label_map)
        else:
            items, skipped = _read_folders(root, image_size, channels, label_map, val_fraction, test_fraction, seed)
        dataset = _assemble(items, skipped, classes, str(root))
    if cache:
        _write_cache(cache, dataset)
    return dataset


def model_pixels(images: Sequence[np.ndarray], image_size: int, channels: int) -> np.ndarray:
    """Faces of any size and mode as ``uint8 (n, image_size, image_size, channels)``: the resize FER+ faces get here
    (a sweep's GPU machine makes each recipe's size from 48 px faces with it)."""
    return np.stack([to_model_pixels(image, (image_size, image_size), channels) for image in images])


def _is_ferplus(root: Path) -> bool:
    if root.is_file():
        with open(root, newline="") as handle:
            header = next(csv.reader(handle), [])
        return set(VOTE_COLUMNS) <= set(header)
    return is_ferplus_folder(root)


def _read_ferplus(root: Path, image_size: int, channels: int, classes: list[str] | None,
                  drop_single_votes: bool) -> Dataset:
    """FER+ faces with a majority among the labels, their majority label and vote distribution."""
    labels = tuple(name for name in FER2013_LABELS if not classes or name in {normalise_label(c) for c in classes})
    per_split, skipped = _ferplus_csv_pair(root) if root.is_file() else _ferplus_folders(root)
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    distributions: dict[str, np.ndarray] = {}
    for split, (images, votes) in per_split.items():
        if not images:
            continue
        targets = crowd_targets(np.stack(votes), labels, drop_outliers=drop_single_votes)
        keep = np.flatnonzero(targets.usable)
        if not len(keep):
            continue
        pixels = model_pixels([images[i] for i in keep], image_size, channels)
        splits[split] = (pixels, targets.majority[keep].astype(np.int32))
        distributions[split] = targets.distribution[keep]
    if "train" not in splits:
        raise DataError(f"no FER+ training faces found in {root}")
    return Dataset(labels=labels, splits=splits, skipped=skipped, source=str(root), distributions=distributions)


_Votes = dict[str, tuple[list[np.ndarray], list[np.ndarray]]]


def _ferplus_folders(root: Path) -> tuple[_Votes, int]:
    out: _Votes = {}
    skipped = 0
    for split, folder in split_folders(root).items():
        images, votes = out.setdefault(split, ([], []))
        for name, row_votes in read_label_csv(folder / "label.csv"):
            image = read_image(folder / name)
            if image is None:
                skipped += 1
                continue
            images.append(image)
            votes.append(row_votes)
    return out, skipped


def _ferplus_csv_pair(votes_csv: Path) -> tuple[_Votes, int]:
    """``fer2013new.csv`` joined by row to the ``fer2013.csv`` beside it (rows without an image name are dropped)."""
    pixels_csv = votes_csv.with_name("fer2013.csv")
    if not pixels_csv.is_file():
        raise DataError(f"{votes_csv} holds FER+ votes only; its pixels come from fer2013.csv, "
                        f"expected beside it at {pixels_csv}")
    out: _Votes = {}
    skipped = 0
    with open(votes_csv, newline="") as votes_handle, open(pixels_csv, newline="") as pixels_handle:
        for vote_row, pixel_row in zip(csv.DictReader(votes_handle), csv.DictReader(pixels_handle)):
            if not (vote_row.get("Image name") or "").strip():
                continue
            values = np.array(pixel_row["pixels"].split(), dtype=np.uint8)
            side = int(round(np.sqrt(values.size)))
            if side == 0 or side * side != values.size:
                skipped += 1
                continue
            split = USAGE_SPLITS.get(vote_row["Usage"].strip(), "train")
            images, votes = out.setdefault(split, ([], []))
            images.append(values.reshape(side, side))
            votes.append(np.array([float(vote_row[column]) for column in VOTE_COLUMNS], np.float32))
    return out, skipped


# An item is (split, canonical label, image).
_Item = tuple[str, str, np.ndarray]


def _read_csv(path: Path, image_size: int, channels: int,
              label_map: dict[str, str] | None) -> tuple[list[_Item], int]:
    items: list[_Item] = []
    skipped = 0
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: not a FER2013 CSV, missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            raw_label = row["emotion"].strip()
            name = FER2013_LABELS[int(raw_label)] if raw_label.isdigit() and int(raw_label) < 7 else raw_label
            label = normalise_label(name, label_map)
            pixels = np.array(row["pixels"].split(), dtype=np.uint8) if row["pixels"] else np.empty(0, np.uint8)
            side = int(round(np.sqrt(pixels.size)))
            if label is None:
                continue
            if side == 0 or side * side != pixels.size:
                skipped += 1
                continue
            image = to_model_pixels(pixels.reshape(side, side), (image_size, image_size), channels)
            split = _SPLIT_ALIASES.get(row.get("Usage", "Training").strip().lower(), "train")
            items.append((split, label, image))
    return items, skipped


def _read_folders(root: Path, image_size: int, channels: int, label_map: dict[str, str] | None,
                  val_fraction: float, test_fraction: float, seed: int) -> tuple[list[_Item], int]:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    split_dirs = {p: _SPLIT_ALIASES[p.name.lower()] for p in subdirs if p.name.lower() in _SPLIT_ALIASES}
    items: list[_Item] = []
    skipped = 0
    if split_dirs:
        for split_dir, split in split_dirs.items():
            split_items, split_skipped = _read_class_folders(split_dir, split, image_size, channels, label_map)
            items += split_items
            skipped += split_skipped
        return items, skipped
    items, skipped = _read_class_folders(root, "train", image_size, channels, label_map)
    return _stratified_split(items, val_fraction, test_fraction, seed), skipped


def _read_class_folders(root: Path, split: str, image_size: int, channels: int,
                        label_map: dict[str, str] | None) -> tuple[list[_Item], int]:
    items: list[_Item] = []
    skipped = 0
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = normalise_label(class_dir.name, label_map)
        if label is None:
            continue
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = read_image(file)
            if image is None:
                skipped += 1
                continue
            items.append((split, label, to_model_pixels(image, (image_size, image_size), channels)))
    return items, skipped


def _stratified_split(items: list[_Item], val_fraction: float, test_fraction: float, seed: int) -> list[_Item]:
    rng = np.random.default_rng(seed)
    out: list[_Item] = []
    for label in sorted({label for _, label, _ in items}):
        members = [item for item in items if item[1] == label]
        order = rng.permutation(len(members))
        n_val = int(round(len(members) * val_fraction))
        n_test = int(round(len(members) * test_fraction))
        for rank, index in enumerate(order):
            split = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
            out.append((split, label, members[index][2]))
    return out


def _assemble(items: list[_Item], skipped: int, classes: list[str] | None, source: str) -> Dataset:
    present = {label for _, label, _ in items}
    if classes:
        wanted = [normalise_label(name) for name in classes]
        absent = [name for name in wanted if name not in present]
        if absent:
            raise DataError(f"class(es) {', '.join(absent)} have no images in {source}")
        present = set(wanted)
    labels = tuple(name for name in FER2013_LABELS if name in present)
    if not labels:
        raise DataError(f"no labelled images found in {source}")
    index = {name: i for i, name in enumerate(labels)}
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "val", "test"):
        chosen = [(image, index[label]) for s, label, image in items if s == split and label in index]
        if chosen:
            images, targets = zip(*chosen)
            splits[split] = (np.stack(images), np.array(targets, dtype=np.int32))
    if "train" not in splits:
        raise DataError(f"no training images found in {source}")
    return Dataset(labels=labels, splits=splits, skipped=skipped, source=source)


def _cache_path(root: Path, options: tuple, cache_dir: str | os.PathLike) -> Path:
    listing = root.stat() if root.is_file() else [(p.name, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))]
    digest = hashlib.sha256(repr((_CACHE_VERSION, str(root.resolve()), listing, options)).encode()).hexdigest()
    return Path(cache_dir) / f"{root.name}-{digest[:16]}.npz"


def _write_cache(path: Path, dataset: Dataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{split}_{kind}": array for split, pair in dataset.splits.items()
              for kind, array in zip(("x", "y"), pair)}
    arrays.update({f"{split}_votes": array for split, array in dataset.distributions.items()})
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, labels=np.array(dataset.labels), skipped=dataset.skipped,
             source=np.array(dataset.source), **arrays)
    temporary.replace(path)


def _read_cache(path: Path) -> Dataset:
    with np.load(path) as archive:
        splits = {split: (archive[f"{split}_x"], archive[f"{split}_y"])
                  for split in ("train", "val", "test") if f"{split}_x" in archive}
        distributions = {split: archive[f"{split}_votes"] for split in splits if f"{split}_votes" in archive}
        return Dataset(labels=tuple(str(s) for s in archive["labels"]), splits=splits,
                       skipped=int(archive["skipped"]), source=str(archive["source"]), distributions=distributions)
