"""``emolens train``'s mistakes: each is one line on stderr and exit status 1, found before anything is written,
and no file in ``--out`` is touched."""

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("tensorflow", reason="training needs the 'train' extra (tensorflow, tf2onnx)")

from emolens.training.train import TrainConfig  # noqa: E402

from ..conftest import FER_FIXTURES  # noqa: E402


def train(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emolens", "train", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("emolens: error: ") and message in result.stderr, result.stderr


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def test_an_out_folder_that_holds_other_files_is_refused(tmp_path):
    out = tmp_path / "run2"
    out.mkdir()
    for name in ("history.csv", "curves.png"):
        (out / name).write_text("mine\n")
    (out / "config.json").write_text('{"mine": true}')
    before = contents(out)
    for resume in ([], ["--resume"]):
        result = train(FER_FIXTURES, "--out", out, "--epochs", "1", "--cache-dir", "", *resume)
        assert_one_line_error(result, f"--out {out} holds files that are not an emolens run (config.json, "
                                      "curves.png, history.csv): give a new or empty folder")
        assert contents(out) == before


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be 1 or more, got 0"),
    (["--epochs", "-1"], "--epochs must be 1 or more, got -1"),
    (["--batch-size", "0"], "--batch-size must be 1 or more, got 0"),
    (["--learning-rate", "-1"], "--learning-rate must be a positive number"),
    (["--learning-rate", "0"], "--learning-rate must be a positive number"),
    (["--learning-rate", "nan"], "--learning-rate must be a positive number"),
    (["--input-size", "7"], "--image-size (--input-size) must be 16 or more for --backbone cnn with 4 stages"),
    (["--input-size", "7", "--widths", "8", "16", "32", "--convs", "1", "1", "1"], "must be 8 or more"),
    (["--input-size", "0", "--backbone", "faceres"], "must be 1 or more for --backbone faceres, got 0"),
    (["--widths", "8", "16"], "--widths and --convs must name as many stages, got 2 and 4"),
    (["--dropout", "1"], "--dropout must be a share from 0 up to (not including) 1, got 1.0"),
    (["--label-smoothing", "-0.1"], "--label-smoothing must be a share from 0 up to (not including) 1, got -0.1"),
    (["--scene-views", "2"], "--scene-views must be a probability from 0 to 1, got 2.0"),
    (["--class-weight-power", "nan"], "--class-weight-power must be 0 (no class weights) or more, got nan"),
    (["--limit-per-class", "0"], "--limit-per-class must be 1 or more, got 0"),
    (["--widths", "0", "16", "32", "64"], "--widths must all be 1 or more, got 0 16 32 64"),
    (["--map-label", "foo"], "--map-label 'foo': expected NAME=EMOTION"),
    (["--map-label", "foo=bar"], "--map-label foo=bar: 'bar' is not one of the emotions (angry, disgust, fear"),
])
def test_an_impossible_setting_is_one_line_before_anything_is_written(tmp_path, capsys, flags, message):
    from emolens.cli import main

    code = main(["train", str(FER_FIXTURES), "--out", str(tmp_path / "run"), "--cache-dir", "", *flags])
    assert_one_line_error(subprocess.CompletedProcess([], code, "", capsys.readouterr().err), message)
    assert not (tmp_path / "run").exists()


def test_the_smallest_input_sizes_checked_are_those_the_networks_take():
    """The cnn's four 2x2 poolings need 16 px; faceres's MobileNet pads every stride and takes even one pixel."""
    import keras

    from emolens.training.backbones import mobilenet_v1
    from emolens.training.cli import parse_args
    from emolens.training.model import build_model

    assert parse_args(["data", "--input-size", "16"])[0].image_size == 16
    assert parse_args(["data", "--input-size", "1", "--backbone", "faceres"])[0].image_size == 1
    build_model(7, (16, 16, 1))
    with pytest.raises(ValueError, match="output size would be zero or negative"):
        build_model(7, (15, 15, 1))
    assert mobilenet_v1(keras.Input((1, 1, 3))).shape[1:3] == (1, 1)


def test_an_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "hello.txt").write_text("hello")
    for out in (tmp_path / "hello.txt", tmp_path / "hello.txt" / "run"):
        assert_one_line_error(train(FER_FIXTURES, "--out", out, "--epochs", "1"),
                              f"--out {out}: {tmp_path / 'hello.txt'} is a file, not a folder")
        assert (tmp_path / "hello.txt").read_text() == "hello"


def test_a_damaged_state_is_named_with_what_to_do(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(asdict(TrainConfig(data=str(FER_FIXTURES), out=str(out)))))
    (out / "state.json").write_text("not json")
    before = contents(out)
    assert_one_line_error(train(FER_FIXTURES, "--out", out, "--resume", "--cache-dir", ""),
                          f"{out / 'state.json'} is not the state.json emolens train writes: it is not JSON "
                          "(Expecting value: line 1 column 1 (char 0)); restore it from a copy, or start the run "
                          "again in another --out")
    assert_one_line_error(train(FER_FIXTURES, "--out", out, "--cache-dir", ""),
                          f"{out} already holds a run: continue it with --resume")
    assert contents(out) == before


def test_help_names_the_default_out():
    result = train("--help")
    assert result.returncode == 0 and "(default runs/emotion)" in " ".join(result.stdout.split())
