"""The installed ``emolens`` command opens a real X11 window under Xvfb and saves its screenshot."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

EMOLENS = Path(sys.executable).with_name("emolens")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (apt-get install xvfb xauth)")
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
