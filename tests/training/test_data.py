"""Loaders for FER-style data: the Kaggle CSV and both folder layouts."""

import shutil

import cv2
import numpy as np
import pytest

from emolens.evaluation.labels import DataError
from emolens.training.data import load_dataset

from ..conftest import FER_FIXTURES


def write_csv(path, rows):
    lines = ["emotion,pixels,Usage"] + [f"{label},{' '.join(map(str, pixels))},{usage}"
                                        for label, pixels, usage in rows]
    path.write_text("\n".join(lines) + "\n")


def test_kaggle_csv_with_usage_splits(tmp_path, fer_faces):
    rows = [(i % 7, face.reshape(-1), usage) for i, (_, face) in enumerate(fer_faces[:21])
            for usage in ["Training"]] + [(3, fer_faces[0][1].reshape(-1), "PublicTest"),
                                          (6, fer_faces[1][1].reshape(-1), "PrivateTest"),
                                          (2, np.arange(10), "Training")]  # 10 pixels: not a square image
    write_csv(tmp_path / "fer2013.csv", rows)
    data = load_dataset(tmp_path / "fer2013.csv", image_size=48, channels=1)
    assert data.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert data.sizes() == {"train": 21, "val": 1, "test": 1}
    assert data.skipped == 1
    x, y = data.splits["train"]
    assert x.shape == (21, 48, 48, 1) and x.dtype == np.uint8
    assert np.array_equal(x[0, :, :, 0], fer_faces[0][1])
    assert data.splits["val"][1].tolist() == [3]


def test_split_folders_any_size_mode_and_format(tmp_path, fer_faces, astronaut):
    for split in ("train", "validation", "test"):
        for emotion in ("happiness", "Sad"):
            folder = tmp_path / split / emotion
            folder.mkdir(parents=True)
            cv2.imwrite(str(folder / "rgb.png"), astronaut)
            cv2.imwrite(str(folder / "gray16.png"), (fer_faces[0][1].astype(np.uint16) * 257))
            cv2.imwrite(str(folder / "rgba.png"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))
            cv2.imwrite(str(folder / "small.bmp"), fer_faces[1][1][:20, :20])
    (tmp_path / "train" / "Sad" / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    data = load_dataset(tmp_path, image_size=64, channels=3)
    assert data.labels == ("happy", "sad")
    assert data.sizes() == {"train": 8, "val": 8, "test": 8}
    assert data.skipped == 1
    assert data.splits["train"][0].shape == (8, 64, 64, 3)
    gray16 = load_dataset(tmp_path, image_size=48, channels=1).splits["train"][0]
    assert np.abs(gray16[0, :, :, 0].astype(int) - fer_faces[0][1]).max() <= 1


def test_class_folders_get_a_seeded_stratified_split(tmp_path):
    shutil.copytree(FER_FIXTURES, tmp_path / "faces")
    first = load_dataset(tmp_path / "faces", val_fraction=1 / 6, test_fraction=1 / 6, seed=3)
    again = load_dataset(tmp_path / "faces", val_fraction=1 / 6, test_fraction=1 / 6, seed=3)
    assert first.sizes() == {"train": 28, "val": 7, "test": 7}
    assert np.bincount(first.splits["val"][1]).tolist() == [1] * 7
    assert np.array_equal(first.splits["val"][0], again.splits["val"][0])


def test_unknown_label_names_it_and_says_how_to_map_or_drop(tmp_path):
    shutil.copytree(FER_FIXTURES, tmp_path / "faces")
    shutil.copytree(FER_FIXTURES / "happy", tmp_path / "faces" / "contempt")
    with pytest.raises(DataError, match=r"unknown emotion label 'contempt'.*--map-label contempt=drop"):
        load_dataset(tmp_path / "faces")
    dropped = load_dataset(tmp_path / "faces", label_map={"contempt": "drop"})
    assert len(dropped.labels) == 7
    mapped = load_dataset(tmp_path / "faces", label_map={"contempt": "disgust"}, val_fraction=0, test_fraction=0)
    assert np.bincount(mapped.splits["train"][1])[1] == 12


def test_class_subset(tmp_path):
    data = load_dataset(FER_FIXTURES, classes=["happiness", "surprise", "neutral"], val_fraction=0, test_fraction=0)
    assert data.labels == ("happy", "surprise", "neutral")
    assert data.sizes() == {"train": 18}
    with pytest.raises(DataError, match="unknown emotion label 'joyful'"):
        load_dataset(FER_FIXTURES, classes=["joyful"])


def test_cache_makes_the_second_load_identical(tmp_path):
    first = load_dataset(FER_FIXTURES, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    second = load_dataset(FER_FIXTURES, cache_dir=tmp_path)
    assert np.array_equal(first.splits["train"][0], second.splits["train"][0])
    assert second.labels == first.labels
