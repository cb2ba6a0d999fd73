"""The GPU sweep on this machine's CPU: pack a FER+ layout, fit two recipes at once (one stopped at the deadline),
bring them back and export one with ``emolens train --resume``."""

import io
import json
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="training needs the 'train' extra (tensorflow, tf2onnx)")

from emolens.card import ModelCard  # noqa: E402

from ..evaluation.test_ferplus import votes, write_ferplus_split  # noqa: E402

SWEEP = [sys.executable, "-m", "emolens", "sweep"]


def sweep(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*SWEEP, *args], capture_output=True, text=True, timeout=timeout)


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
    ({"a": "--image-size 48", "b": "--image-size 64"}, "the recipes of one pack must agree on"),
    ({f"r{index}": "" for index in range(9)}, "holds 9 recipes; a GPU call gives back at most 8 runs"),
])
def test_a_bad_recipe_is_one_clear_line_before_any_data_is_read(tmp_path, recipes, message):
    (tmp_path / "recipes.json").write_text(json.dumps(recipes))
    result = sweep("pack", str(tmp_path / "no-data"), str(tmp_path / "recipes.json"), "--out", str(tmp_path / "p"))
    assert result.returncode == 1 and not (tmp_path / "p").exists()
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
