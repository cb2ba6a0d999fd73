"""The ``emolens`` command end to end, as a user runs it: real video, real models, real exits."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import pandas as pd
import pytest

from emolens.card import ModelCard, packaged_model_dir
from emolens.record import timeline_columns

from .conftest import FER_FIXTURES, fer_dataset_or_skip


def emolens(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emolens", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("emolens: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_analyze_writes_the_timeline(tmp_path, two_face_video):
    out = tmp_path / "timeline.csv"
    result = emolens("analyze", two_face_video, "-o", out, "--every", "2")
    assert result.returncode == 0, result.stderr
    assert "on CPU" in result.stderr or "on CUDA" in result.stderr
    assert "frames 10, faces 20" in result.stderr and "dominant emotion:" in result.stderr
    table = pd.read_csv(out)
    labels = ModelCard.load().labels
    assert list(table.columns) == timeline_columns(labels)
    assert table["frame"].tolist() == [i for i in range(0, 20, 2) for _ in range(2)]
    assert sorted(table["face_id"].unique()) == [1, 2]
    assert table[list(labels)].sum(axis=1).round(3).eq(1).all()


def test_analyze_folder_with_an_unreadable_image(tmp_path, astronaut):
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.jpg"), astronaut)
    (folder / "2.jpg").write_bytes(b"garbage")
    cv2.imwrite(str(folder / "3.png"), astronaut[:, :, 0])
    blank = astronaut.copy()
    blank[:] = 90
    cv2.imwrite(str(folder / "4.png"), blank)
    result = emolens("analyze", folder, "-o", tmp_path / "t.csv", "--keypoints")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 unreadable image(s)" in result.stderr
    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == 3 and table["face_id"].isna().tolist() == [False, False, True]
    assert table["kp0_x"].notna().sum() == 2


@pytest.mark.parametrize(("args", "message"), [
    (["analyze", "missing.mp4", "-o", "{tmp}/t.csv"], "input not found: missing.mp4"),
    (["analyze", "{tmp}/noise.mp4", "-o", "{tmp}/t.csv"], "cannot read video"),
    (["analyze", "{video}", "-o", "{tmp}/file/t.csv"], "cannot write"),
    (["analyze", "{video}", "-o", "{tmp}/t.csv", "--model", "{tmp}/nope.onnx"], "model card not found"),
    (["analyze", "{video}", "-o", "{tmp}/t.csv", "--model", "{tmp}/bad/emotion.json"], "does not match its card"),
    (["analyze", "{video}", "-o", "{tmp}/t.csv", "--min-confidence", "2"], "--min-confidence"),
    (["analyze", "7", "-o", "{tmp}/t.csv"], "camera 7 not found"),
    (["evaluate", "{tmp}/nothing"], "not a folder"),
    (["report", "{tmp}/noise.mp4", "-o", "{tmp}/r"], ""),
])
def test_user_mistakes_give_one_line_and_exit_1(tmp_path, two_face_video, args, message):
    (tmp_path / "noise.mp4").write_bytes(b"\x00\x01" * 3000)
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "bad").mkdir()
    shutil.copy(packaged_model_dir() / "emotion.json", tmp_path / "bad" / "emotion.json")
    (tmp_path / "bad" / "emotion.onnx").write_bytes(b"corrupt")
    result = emolens(*(a.format(tmp=tmp_path, video=two_face_video) for a in args))
    assert_one_line_error(result, message)
    assert not (tmp_path / "t.csv").exists()


def test_kill_9_during_analyze_keeps_every_flushed_row(tmp_path, two_face_video):
    out = tmp_path / "t.csv"
    inputs = [two_face_video] * 40  # long enough to still be running when killed
    process = subprocess.Popen([sys.executable, "-m", "emolens", "analyze", *map(str, inputs), "-o", str(out)],
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    text = out.read_text()
    assert text.endswith("\n"), "a half-written row"
    table = pd.read_csv(out)
    assert len(table) >= 100
    assert table["frame"].notna().all() and table["neutral"].notna().all()


def test_evaluate_crops_json(tmp_path):
    result = emolens("evaluate", FER_FIXTURES, "--crops", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {"accuracy", "macro_f1", "per_class_recall", "confusion", "no_face", "n"}
    assert report["n"] == 42 and report["no_face"] == 0
    assert sum(map(sum, report["confusion"])) == 42


def test_evaluate_full_pipeline_counts_images_without_faces(tmp_path, astronaut):
    for emotion, image in (("happy", astronaut), ("neutral", astronaut * 0 + 100)):
        (tmp_path / emotion).mkdir()
        cv2.imwrite(str(tmp_path / emotion / "1.png"), image)
    result = emolens("evaluate", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no face 1" in result.stdout and "confusion" in result.stdout


def test_evaluate_reproduces_the_cards_fer2013_test_accuracy():
    test_dir = fer_dataset_or_skip() / "test"
    result = emolens("evaluate", test_dir, "--crops", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    card = ModelCard.load().info["metrics"]["fer2013_test"]
    assert measured["n"] == card["n"] == 3589
    assert measured["accuracy"] == pytest.approx(card["accuracy"], abs=1 / 3589)
    assert measured["macro_f1"] == pytest.approx(card["macro_f1"], abs=1e-3)


def test_the_app_runs_without_tensorflow(tmp_path, astronaut):
    """The app's install has no TensorFlow: block it and run the API end to end."""
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut)
    script = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "import cv2\n"
        "from emolens import Analyzer\n"
        f"faces = Analyzer().analyze(cv2.imread({str(tmp_path / 'a.jpg')!r}))\n"
        "print(len(faces), faces.face_id.tolist(), faces.probs.shape)\n"
        "assert 'PySide6' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 [1] (1, 7)"


def test_help_lists_the_subcommands():
    result = emolens("--help")
    assert result.returncode == 0
    for command in ("analyze", "evaluate", "bench", "report", "train"):
        assert command in result.stdout


def test_the_window_without_a_display_is_one_clear_line():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "emolens", "--source", "0"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert_one_line_error(result, "no display to open the window on")
