"""The GPU sweep on this machine's CPU: pack a FER+ layout, fit two recipes at once (one stopped at the deadline),
bring them back and export one with ``emolens train --resume``; a backbone recipe fitted with no network at all."""

import io
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the 'train' extra (tensorflow, tf2onnx)")

from emolens.card import ModelCard  # noqa: E402
from emolens.training.backbones import FACERES, faceres_weights  # noqa: E402
from emolens.training.data import load_dataset  # noqa: E402
from emolens.training.sweep import FER_SIDE, faces_at  # noqa: E402

from ..conftest import fixture_splits  # noqa: E402
from ..evaluation.test_ferplus import votes, write_ferplus_split  # noqa: E402
from .conftest import UNREACHABLE  # noqa: E402

SWEEP = [sys.executable, "-m", "emolens", "sweep"]


def sweep(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*SWEEP, *args], capture_output=True, text=True, timeout=timeout, env=env)


def read_packed(path: Path) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(lzma.decompress(path.read_bytes()))) as arrays:
        return dict(arrays)


@pytest.fixture
def ferplus_data(tmp_path, fer_faces) -> Path:
    rows = [votes(**{column: 8, "neutral": 2}) for column in
            ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")] * 6
    for split in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        write_ferplus_split(tmp_path / "data" / split, fer_faces, rows)
    return tmp_path / "data"


@pytest.mark.slow
def test_a_sweep_packs_fits_two_recipes_at_once_and_exports_here(tmp_path, ferplus_data):
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps({
        "views": f"--epochs 1 --batch-size 16 --cache-dir '' --scene-views 0.5 "
                 f"--init-from {ModelCard.load().model_path}",
        "endless": "--epochs 100000 --batch-size 16 --cache-dir ''",
    }))
    pack_dir = tmp_path / "pack"
    packed = sweep("pack", str(ferplus_data), str(recipes), "--out", str(pack_dir))
    assert packed.returncode == 0, packed.stderr[-3000:]
    manifest = json.loads((pack_dir / "manifest.json").read_text())
    assert set(manifest["parts"]) == {"faces", "targets", "views0"}
    with np.load(io.BytesIO(lzma.decompress((pack_dir / "targets.npz.xz").read_bytes()))) as targets:
        assert set(targets.files) == {"train_y", "val_x", "val_y", "train_votes", "val_votes"}, "test stays here"
    assert manifest["recipes"]["views"]["views"] == "views0" and manifest["recipes"]["endless"]["views"] is None

    # A part left behind (a call that went to a fresh machine) is named, and nothing is fitted.
    shutil.move(pack_dir / "views0.npz.xz", tmp_path / "views0.npz.xz")
    incomplete = sweep("run", str(pack_dir), "--out", str(tmp_path / "back"), "--minutes", "1")
    assert incomplete.returncode == 1 and not (tmp_path / "back").exists()
    assert incomplete.stderr.strip().splitlines() == [(
        "emolens: error: this machine lacks 1 part(s) of the pack: views0.npz.xz "
        "(carry them, or carry them again if the machine was new)")]
    shutil.move(tmp_path / "views0.npz.xz", pack_dir / "views0.npz.xz")

    ran = sweep("run", str(pack_dir), "--out", str(tmp_path / "back"), "--runs", str(tmp_path / "fitted"),
                "--minutes", "1.5")
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in ran.stdout.strip().splitlines())
    assert lines["views"].startswith("1 epochs, best val accuracy"), ran.stdout
    assert "(stopped at the deadline)" in lines["endless"], ran.stdout
    bundles = sorted((tmp_path / "back").iterdir())
    assert [bundle.name for bundle in bundles] == ["endless.tar", "views.tar"]

    runs = tmp_path / "runs"
    unpacked = sweep("unpack", *map(str, bundles), "--runs", str(runs))
    assert unpacked.returncode == 0, unpacked.stderr
    state = json.loads((runs / "endless" / "state.json").read_text())
    assert 1 <= state["epoch"] < 100000 and state["stopped_early"]
    assert "pipeline views of" not in (runs / "views" / "fit.log").read_text(), "the views came from the pack"
    again = sweep("unpack", str(bundles[0]), "--runs", str(runs))
    assert again.returncode == 1 and "already exists" in again.stderr and len(again.stderr.splitlines()) == 1

    exported = subprocess.run([sys.executable, "-m", "emolens", "train", str(ferplus_data), "--out",
                               str(runs / "endless"), "--resume"], capture_output=True, text=True, timeout=600)
    assert exported.returncode == 0, exported.stderr[-3000:] + exported.stdout[-3000:]
    assert "images/s" not in exported.stdout, "a run stopped at the deadline is exported, not fitted again"
    card = ModelCard.load(runs / "endless" / "emotion.json")
    assert card.info["metrics"]["test"]["n"] == 42
    assert json.loads((runs / "endless" / "state.json").read_text())["epoch"] == state["epoch"]


@pytest.mark.parametrize("recipes, message", [
    ({"bad": "--mixup -1"}, "recipe bad: --mixup must be 0 (off) or a positive Beta parameter such as 0.2, got -1.0"),
    ({"bad": "--no-such-flag"}, "recipe bad: emolens train: error: unrecognized arguments: --no-such-flag"),
    ({"bad": "--out elsewhere"}, "recipe bad: the sweep sets --out and --resume itself"),
    ({"a": "--channels 1", "b": "--channels 3"}, "the recipes of one pack must agree on channels"),
    ({f"r{index}": "" for index in range(9)}, "holds 9 recipes; a GPU call gives back at most 8 runs"),
])
def test_a_bad_recipe_is_one_clear_line_before_any_data_is_read(tmp_path, recipes, message):
    (tmp_path / "recipes.json").write_text(json.dumps(recipes))
    result = sweep("pack", str(tmp_path / "no-data"), str(tmp_path / "recipes.json"), "--out", str(tmp_path / "p"))
    assert result.returncode == 1 and not (tmp_path / "p").exists()
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr


@pytest.mark.parametrize("size, channels", [(32, 1), (80, 1), (112, 1), (80, 3)])
def test_faces_packed_at_48_px_become_there_what_load_dataset_gives_at_each_size(ferplus_data, size, channels):
    """The GPU machine makes a recipe's --input-size from the packed 48 px faces: the very pixels loaded here."""
    packed = load_dataset(ferplus_data, FER_SIDE, channels)
    loaded = load_dataset(ferplus_data, size, channels)
    for split in ("train", "val"):
        resized, expected = faces_at(packed.splits[split][0], channels, size), loaded.splits[split][0]
        assert resized.shape == expected.shape and expected.shape[1:] == (size, size, channels)
        assert np.array_equal(resized, expected), split


def test_faces_of_another_size_are_packed_at_the_recipes_one_size_or_refused_in_one_line(tmp_path):
    """Faces stored at 64 px: resizing them to 48 and then to a recipe's size would not give load_dataset's pixels."""
    data = fixture_splits(tmp_path / "data", {"train": slice(0, 3), "val": slice(3, 5)})
    for path in data.rglob("*.jpg"):
        cv2.imwrite(str(path.with_suffix(".png")), cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (64, 64)))
        path.unlink()
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps({"a": "--cache-dir ''", "b": "--input-size 32 --cache-dir ''"}))
    mixed = sweep("pack", str(data), str(recipes), "--out", str(tmp_path / "mixed"))
    assert mixed.returncode == 1 and not (tmp_path / "mixed").exists()
    assert mixed.stderr.strip().splitlines() == [
        f"emolens: error: {data}'s faces are not 48 px, so recipes of different --input-size cannot share one pack "
        "of them: give every recipe one --input-size"]

    recipes.write_text(json.dumps({"a": "--input-size 64 --cache-dir ''", "b": "--input-size 64 --ema 0.99 "
                                                                               "--cache-dir ''"}))
    one_size = sweep("pack", str(data), str(recipes), "--out", str(tmp_path / "one"))
    assert one_size.returncode == 0, one_size.stderr[-3000:]
    expected = load_dataset(data, 64, 1).splits["train"][0]
    assert np.array_equal(read_packed(tmp_path / "one" / "faces.npz.xz")["train_x"], expected), "packed as loaded"


@pytest.mark.slow
def test_a_backbone_recipe_is_packed_with_its_weights_and_fitted_with_no_network(tmp_path, ferplus_data, faceres):
    """A faceres recipe at 32 px and a CNN at 48 px share one pack of 48 px faces; the backbone's weights travel in
    the pack, so the fit needs no registry (an empty home and every fetch through a closed port); exported here."""
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps({
        "faceres": "--backbone faceres --input-size 32 --epochs 1 --batch-size 16 --cache-dir ''",
        "cnn": "--epochs 1 --batch-size 16 --cache-dir ''",
    }))
    pack_dir = tmp_path / "pack"
    packed = sweep("pack", str(ferplus_data), str(recipes), "--out", str(pack_dir))
    assert packed.returncode == 0, packed.stderr[-3000:]
    assert set(json.loads((pack_dir / "manifest.json").read_text())["parts"]) == {"faces", "targets", "faceres"}
    assert read_packed(pack_dir / "faces.npz.xz")["train_x"].shape[1:] == (48, 48, 1)
    weights, backbone = faceres_weights(), read_packed(pack_dir / "faceres.npz.xz")
    assert backbone.keys() == weights.keys() and all(np.array_equal(backbone[k], weights[k]) for k in weights)

    home = tmp_path / "home"
    home.mkdir()
    offline = {**os.environ, "HOME": str(home), **UNREACHABLE}
    ran = sweep("run", str(pack_dir), "--out", str(tmp_path / "back"), "--runs", str(tmp_path / "fitted"),
                "--minutes", "8", env=offline)
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in ran.stdout.strip().splitlines())
    log = (tmp_path / "fitted" / "faceres" / "fit.log").read_text()
    assert lines["faceres"].startswith("1 epochs, best val accuracy"), ran.stdout + log[-3000:]
    assert lines["cnn"].startswith("1 epochs, best val accuracy"), ran.stdout
    assert not (home / ".cache" / "emolens").exists(), "nothing was fetched, nor looked for, in the user's cache"

    runs = tmp_path / "runs"
    assert sweep("unpack", str(tmp_path / "back" / "faceres.tar"), "--runs", str(runs)).returncode == 0
    config = json.loads((runs / "faceres" / "config.json").read_text())
    assert (config["backbone"], config["image_size"]) == ("faceres", 32), "the config emolens train writes"
    exported = subprocess.run([sys.executable, "-m", "emolens", "train", str(ferplus_data), "--out",
                               str(runs / "faceres"), "--resume"], capture_output=True, text=True, timeout=900)
    assert exported.returncode == 0, exported.stderr[-3000:] + exported.stdout[-3000:]
    card = ModelCard.load(runs / "faceres" / "emotion.json")
    assert card.input_hw == (32, 32) and card.channels == 1
    assert card.info["training"]["backbone"]["files"] == FACERES["files"]
    assert "--backbone faceres" in card.info["training"]["command"]
