"""Load FER-style data sets into uint8 arrays, labels in one fixed order.

Three layouts are understood:

* the Kaggle CSV ``fer2013.csv`` (columns ``emotion,pixels,Usage``; splits from ``Usage``),
* ``ROOT/<split>/<emotion>/*`` (splits ``train``, ``val``/``validation``, ``test``),
* ``ROOT/<emotion>/*``, split into train/val/test with a seeded, stratified draw.

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolens.images import IMAGE_SUFFIXES, read_image, to_model_pixels
from emolens.labels import FER2013_LABELS, DataError, normalise_label

_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "publictest": "val", "test": "test", "privatetest": "test"}
_CACHE_VERSION = "1"


@dataclass
class Dataset:
    """Images and integer labels per split, with ``labels[i]`` naming class ``i``."""

    labels: tuple[str, ...]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    skipped: int = 0
    source: str = ""
    notes: list[str] = field(default_factory=list)

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
) -> Dataset:
    """Load a CSV or folder data set; see the module docstring for the layouts.

    Args:
        classes: keep only these classes (canonical names), in canonical order.
        label_map: extra ``name -> emotion`` or ``name -> "drop"`` mappings.
        val_fraction, test_fraction: used only for the ``ROOT/<emotion>/*`` layout.
        cache_dir: where decoded arrays are cached; ``None`` disables the cache.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"data set not found: {root}")
    options = (image_size, channels, sorted(classes or []), sorted((label_map or {}).items()),
               val_fraction, test_fraction, seed)
    cache = _cache_path(root, options, cache_dir) if cache_dir else None
    if cache and cache.exists():
        return _read_cache(cache)
    if root.is_file():
        items, skipped = _read_csv(root, image_size, channels, label_map)
    else:
        items, skipped = _read_folders(root, image_size, channels, label_map, val_fraction, test_fraction, seed)
    dataset = _assemble(items, skipped, classes, str(root))
    if cache:
        _write_cache(cache, dataset)
    return dataset


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
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, labels=np.array(dataset.labels), skipped=dataset.skipped,
             source=np.array(dataset.source), **arrays)
    temporary.replace(path)


def _read_cache(path: Path) -> Dataset:
    with np.load(path) as archive:
        splits = {split: (archive[f"{split}_x"], archive[f"{split}_y"])
                  for split in ("train", "val", "test") if f"{split}_x" in archive}
        return Dataset(labels=tuple(str(s) for s in archive["labels"]), splits=splits,
                       skipped=int(archive["skipped"]), source=str(archive["source"]))
