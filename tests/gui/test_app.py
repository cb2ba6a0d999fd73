"""``run_gui``: screenshot mode end to end, errors as one line, and no Qt until it runs."""

import subprocess
import sys
from argparse import Namespace

from PySide6.QtGui import QImage

from emolens.gui.app import run


def gui_args(**given) -> Namespace:
    """The Namespace the CLI hands over, with its defaults."""
    defaults = dict(source=None, screenshot=None, frames=30, model=None, device=None, detector=None, tiles=1,
                    min_confidence=None, max_faces=None, tau_s=None, overwrite=False)
    return Namespace(**{**defaults, **given})


def test_screenshot_mode_saves_the_window_after_n_frames(clip, tmp_path, store):
    out = tmp_path / "shot.png"
    assert run(gui_args(source=clip, screenshot=str(out), frames=12), store) == 0
    image = QImage(str(out))
    assert image.width() >= 640 and image.height() >= 400
    assert len({image.pixel(x, y) for x in range(0, image.width(), 16) for y in range(0, image.height(), 16)}) > 100


def test_screenshot_mode_reports_a_bad_source_in_one_line(tmp_path, store, capfd):
    out = tmp_path / "shot.png"
    assert run(gui_args(source=str(tmp_path / "nothing.mp4"), screenshot=str(out), frames=5), store) == 1
    lines = capfd.readouterr().err.strip().splitlines()
    assert lines == [f"emolens: error: input not found: {tmp_path / 'nothing.mp4'}"]
    assert out.is_file()  # the window as the user would have seen it


def test_importing_the_gui_package_loads_no_qt():
    code = "import sys, emolens.gui; assert 'PySide6' not in sys.modules and callable(emolens.gui.run_gui)"
    subprocess.run([sys.executable, "-c", code], check=True)
