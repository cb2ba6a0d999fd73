"""Qt tests run offscreen, on real faces, with settings and documents in a temporary folder.

``EMOLENS_TEST_QT_PLATFORM=xcb`` runs them in real X11 windows instead (under ``xvfb-run``; see
``test_x11.py``)."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = os.environ.get("EMOLENS_TEST_QT_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QSettings, QStandardPaths  # noqa: E402

from emolens.bench.media import write_video  # noqa: E402
from emolens.gui.app import forget_opencv_qt_paths  # noqa: E402
from emolens.gui.main_window import MainWindow  # noqa: E402

forget_opencv_qt_paths()  # before pytest-qt creates the QApplication


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> str:
    """Four seconds of two real faces at 10 fps, 320x240."""
    return str(write_video(tmp_path_factory.mktemp("video") / "clip.mp4", (320, 240), faces=2, seconds=4.0, fps=10))


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory) -> str:
    """One and a half seconds of two real faces at 10 fps."""
    return str(write_video(tmp_path_factory.mktemp("video") / "short.mp4", (320, 240), faces=2, seconds=1.5, fps=10))


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> str:
    """Forty seconds of two real faces at 10 fps: time for a moderator to mark a session."""
    return str(write_video(tmp_path_factory.mktemp("video") / "long.mp4", (320, 240), faces=2, seconds=40.0, fps=10))


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path, monkeypatch):
    """Keep the user's settings and documents out of reach: QSettings and Documents point into tmp_path."""
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(settings_format, scope, str(tmp_path / "qsettings"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    QStandardPaths.setTestModeEnabled(True)


@pytest.fixture
def store(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, store):
    """Factory of main windows on ``store``; every window is closed after the test and its
    worker thread must have finished (no dangling threads)."""
    windows: list[MainWindow] = []

    def make(**kwargs) -> MainWindow:
        window = MainWindow(kwargs.pop("store", store), **kwargs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert window.worker.isFinished(), "the pipeline thread outlived its window"
