"""The installed ``emolens`` command opens a real X11 window under Xvfb and saves its screenshot."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

EMOLENS = Path(sys.executable).with_name("emolens")
NEEDS_XVFB = pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (apt-get install xvfb xauth)")


@pytest.mark.slow
@NEEDS_XVFB
@pytest.mark.skipif(not EMOLENS.is_file(), reason=f"the emolens command is not installed beside {sys.executable}")
def test_screenshot_mode_in_a_real_x11_window(clip, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("QT_")}
    env.update(QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(tmp_path / "config"))  # xcb or fail: no fallback
    out = tmp_path / "window.png"
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", str(EMOLENS), "--source", clip,
                           "--screenshot", str(out), "--frames", "30"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    image = QImage(str(out))
    assert image.width() >= 640 and image.height() >= 400


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def run_tests_under_x11(tmp_path, test_file: str, *args: str) -> str:
    """Run ``test_file`` (beside this one) in a pytest of its own whose windows are real X11 windows (xcb,
    under ``xvfb-run``) instead of the offscreen platform; asserts it passed and returns its output."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QT_")}
    env.update(EMOLENS_TEST_QT_PLATFORM="xcb", XDG_CONFIG_HOME=str(tmp_path / "config"))
    # A test that hangs there prints every thread's stack after 120 s (faulthandler), shown here when it times out.
    command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "pytest",
               str(Path(__file__).with_name(test_file)), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "-o", "faulthandler_timeout=120", *args]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as hung:
        raise AssertionError(f"{test_file} hung under X11; its stacks:\n{_text(hung.stderr)[-6000:]}") from None
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
    return done.stdout


@pytest.mark.slow
@NEEDS_XVFB
def test_a_moderator_marks_a_session_in_a_real_x11_window(tmp_path):
    """The marker tests, keys and clicks through a real X server (xcb), not the offscreen platform."""
    run_tests_under_x11(tmp_path, "test_markers.py")


@pytest.mark.slow
@NEEDS_XVFB
def test_the_replay_window_seeks_steps_marks_and_exports_in_a_real_x11_window(tmp_path):
    """The replay tests (seek, step, markers, export, frame and row agreement on real faces) through a real X
    server (xcb), not the offscreen platform."""
    run_tests_under_x11(tmp_path, "test_replay_window.py")


@pytest.mark.slow
@NEEDS_XVFB
def test_a_whole_study_session_runs_in_a_real_x11_window(tmp_path):
    """A study session (the stimulus with its sound through Qt Multimedia, a clip of real faces as the camera,
    then `emolens study report`) through a real X server (xcb), not the offscreen platform."""
    pytest.importorskip("PySide6.QtMultimedia", reason="Qt Multimedia is in PySide6-Addons (the study extra)")
    output = run_tests_under_x11(tmp_path, "test_study_window.py", "-k", "players_time or esc_ends")
    assert "2 passed" in output
