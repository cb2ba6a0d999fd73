"""``emolens evaluate``'s mistakes: one line on stderr, exit status 1, found before the evaluation, and
``--predictions`` never replaces a file without ``--overwrite``."""

import subprocess
import sys

import pytest

from emolens.cli import main

from ..conftest import FER_FIXTURES


def assert_one_line_error(code: int, stderr: str, message: str) -> None:
    assert code == 1 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("emolens: error: ")]
    assert len(errors) == 1 and message in errors[0], stderr


def evaluate(capsys, *args: object) -> tuple[int, str]:
    """``emolens evaluate ARGS`` in this process: its exit status and its stderr."""
    code = main(["evaluate", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("existing", ["preds.csv", "preds_worst.png"])
def test_existing_predictions_are_refused_before_evaluating(tmp_path, existing):
    (tmp_path / existing).write_bytes(b"precious")
    result = subprocess.run([sys.executable, "-m", "emolens", "evaluate", str(FER_FIXTURES), "--crops",
                             "--predictions", str(tmp_path / "preds.csv")], capture_output=True, text=True,
                            timeout=300)
    assert_one_line_error(result.returncode, result.stderr, f"{tmp_path / existing} already exists; pass --overwrite "
                                                            "to replace it, or choose another file")
    assert result.stdout == "", "refused before evaluating"
    assert [path.name for path in tmp_path.iterdir()] == [existing]
    assert (tmp_path / existing).read_bytes() == b"precious"


def test_overwrite_replaces_both_predictions_files_whole(tmp_path, capsys):
    for name in ("preds.csv", "preds_worst.png"):
        (tmp_path / name).write_bytes(b"precious")
    assert evaluate(capsys, FER_FIXTURES, "--crops", "--predictions", tmp_path / "preds.csv", "--overwrite")[0] == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["preds.csv", "preds_worst.png"], "no partial left"
    assert (tmp_path / "preds.csv").read_text().startswith("file,truth,prediction,")
    assert (tmp_path / "preds_worst.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("folder, message", [
    ("preds.csv", "--predictions {tmp}/preds.csv: {tmp}/preds.csv is a folder; name a new file, e.g. "
                  "{tmp}/preds.csv/predictions.csv"),
    ("preds_worst.png", "--predictions {tmp}/preds.csv: {tmp}/preds_worst.png is a folder"),
])
def test_predictions_into_a_folder_are_refused_before_evaluating(tmp_path, capsys, folder, message):
    (tmp_path / folder).mkdir()
    code, stderr = evaluate(capsys, FER_FIXTURES, "--crops", "--predictions", tmp_path / "preds.csv")
    assert_one_line_error(code, stderr, message.format(tmp=tmp_path))
    assert [path.name for path in tmp_path.iterdir()] == [folder] and not any((tmp_path / folder).iterdir())


def test_predictions_under_a_file_are_refused(tmp_path, capsys):
    (tmp_path / "file").write_bytes(b"precious")
    code, stderr = evaluate(capsys, FER_FIXTURES, "--crops", "--predictions", tmp_path / "file" / "preds.csv")
    assert_one_line_error(code, stderr, f"{tmp_path / 'file'} is a file, not a folder")
    assert (tmp_path / "file").read_bytes() == b"precious"


@pytest.mark.parametrize("mapping, message", [
    ("foo", "--map-label 'foo': expected NAME=EMOTION"),
    ("happy=", "--map-label 'happy=': expected NAME=EMOTION"),
    ("happy=bar", "--map-label happy=bar: 'bar' is not one of the model's labels (angry, disgust, fear, happy, sad, "
                  "surprise, neutral); map happy to one of them, or to drop"),
])
def test_a_label_mapping_that_cannot_apply_is_one_line(capsys, mapping, message):
    code, stderr = evaluate(capsys, FER_FIXTURES, "--crops", "--map-label", mapping)
    assert_one_line_error(code, stderr, message)


def test_a_folder_without_a_readable_image_is_one_line(tmp_path, capsys):
    image = tmp_path / "happy" / "x.jpg"
    image.parent.mkdir()
    image.write_text("x\n")
    code, stderr = evaluate(capsys, tmp_path, "--predictions", tmp_path / "preds.csv")
    assert_one_line_error(code, stderr, f"none of the 1 images under {tmp_path} could be read (e.g. {image})")
    assert not (tmp_path / "preds.csv").exists()
