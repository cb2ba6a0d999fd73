"""Start the desktop app: Qt set up, settings loaded, window shown, and screenshot mode.

``run(args)`` is what ``emolens`` with no subcommand calls (through ``emolens.gui.run_gui``).
In screenshot mode (``args.screenshot``) it processes ``args.frames`` frames as fast as
possible, saves the whole window as an image and returns, without waiting for the user. The screenshot is
checked before anything opens (``check_screenshot``) and written whole or not at all (``save_screenshot``).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import cv2
from PySide6.QtCore import QEventLoop, QSettings
from PySide6.QtGui import QColor, QImageWriter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from emolens.errors import EmolensError, SettingError
from emolens.gui.main_window import MainWindow
from emolens.gui.settings import Settings, overrides_from_args
from emolens.gui.worker import SourceEnd, Update
from emolens.record import partial_path, publish, refuse_existing

ORGANIZATION = APPLICATION = "Emolens"


def forget_opencv_qt_paths() -> None:
    """Drop the Qt plugin and font paths that ``import cv2`` points into its own folder.

    The non-headless OpenCV wheels that MediaPipe needs set ``QT_QPA_PLATFORM_PLUGIN_PATH``
    and ``QT_QPA_FONTDIR`` to ``cv2/qt``, whose xcb plugin was built for another Qt: with some
    OpenCV builds PySide6 then fails with "Could not load the Qt platform plugin xcb". Call it
    before creating the QApplication.
    """
    cv2_folder = Path(cv2.__file__).resolve().parent
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(name)
        if value and Path(value).resolve().is_relative_to(cv2_folder):
            del os.environ[name]


def application() -> QApplication:
    """The running QApplication, or a new one with the Fusion style and a dark palette
    (the video, the chart and a projector all read better on dark)."""
    existing = QApplication.instance()
    if existing is not None:
        return existing
    if (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        raise EmolensError("no display to open the window on (DISPLAY is not set); use `emolens analyze` for "
                           "headless work, or QT_QPA_PLATFORM=offscreen with --screenshot")
    forget_opencv_qt_paths()
    app = QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2b2e", QPalette.ColorRole.WindowText: "#e8e8e8",
        QPalette.ColorRole.Base: "#1e1e21", QPalette.ColorRole.AlternateBase: "#2b2b2e",
        QPalette.ColorRole.Text: "#e8e8e8", QPalette.ColorRole.Button: "#3a3a3e",
        QPalette.ColorRole.ButtonText: "#e8e8e8", QPalette.ColorRole.Highlight: "#4e79a7",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#3a3a3e",
        QPalette.ColorRole.ToolTipText: "#e8e8e8", QPalette.ColorRole.PlaceholderText: "#8a8a90",
    }
    for role, color in roles.items():
        palette.setColor(role, QColor(color))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#77777c"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#77777c"))
    app.setPalette(palette)
    return app


def run(args: argparse.Namespace, store: QSettings | None = None) -> int:
    """Show the window on ``args.source`` until the user closes it (or, with ``args.screenshot``,
    until ``args.frames`` frames are processed and the window is saved). See ``run_gui``.

    Raises:
        EmolensError: a command-line value out of range, or a screenshot refused (the CLI prints it as one line).
    """
    overrides = overrides_from_args(args)
    try:
        replace(Settings(), **overrides)
    except ValueError as error:
        raise EmolensError(str(error)) from None
    if args.screenshot:
        sources = [Path(args.source)] if args.source and not args.source.isdigit() else []
        check_screenshot(Path(args.screenshot), sources, args.overwrite)
    app = application()
    window = MainWindow(store or QSettings(ORGANIZATION, APPLICATION), overrides, tiles=args.tiles,
                        realtime=not args.screenshot)
    window.show()
    window.behaviour.apply_args(args)
    window.open_source(args.source)
    if args.screenshot:
        return _screenshot(window, Path(args.screenshot), args.frames, args.overwrite)
    app.exec()
    return 0


def check_screenshot(path: Path, inputs: list[Path], overwrite: bool) -> None:
    """Refuse a screenshot before anything is opened: one that is an input (or lies in an input folder),
    that is not named for an image format Qt writes, whose folder is missing, or that exists (without
    ``overwrite``).

    Raises:
        EmolensError: naming the problem and the way out.
    """
    for source in inputs:
        if _writes_into(path, source):
            raise EmolensError(f"the screenshot {path} is {'in ' if source.is_dir() else ''}the input {source}; "
                               f"saving it would damage the input: choose another --screenshot")
    formats = sorted(bytes(name).decode() for name in QImageWriter.supportedImageFormats())
    if path.suffix.lower()[1:] not in formats:
        raise EmolensError(f"--screenshot {path}: name the screenshot .png, or another image format Qt writes "
                           f"({', '.join('.' + name for name in formats)})")
    if not path.parent.is_dir():
        raise EmolensError(f"cannot write the screenshot {path}: the folder {path.parent} does not exist")
    refuse_existing(path, overwrite)


def _writes_into(path: Path, source: Path) -> bool:
    """Whether writing ``path`` would change ``source``: the same file (through links too), or one in the folder."""
    target, read = Path(os.path.realpath(path)), Path(os.path.realpath(source))
    if read.is_dir():
        return target.is_relative_to(read)
    return target == read or (path.exists() and read.exists() and os.path.samefile(path, read))


def save_screenshot(shot: QPixmap, path: Path, overwrite: bool) -> None:
    """Write ``shot`` to a hidden partial file beside ``path`` that takes the name only once saved whole (over
    an existing file only with ``overwrite``): a failed save leaves no file, and an older one as it was.

    Raises:
        EmolensError: the image cannot be written, or (without ``overwrite``) a file took the name meanwhile.
    """
    target = Path(os.path.realpath(path))  # a symlinked screenshot: the link stays, its target is replaced
    partial = partial_path(target)
    try:
        if not shot.save(str(partial), target.suffix[1:].lower()):
            raise EmolensError(f"cannot write the screenshot {path}")
        publish(partial, target, overwrite)
    except FileExistsError:
        raise SettingError(f"{path} appeared while the window was rendered; pass {{overwrite}} to replace it, "
                           f"or choose another file") from None
    except OSError as error:
        raise EmolensError(f"cannot write the screenshot {path}: {error.strerror or error}") from None
    finally:
        partial.unlink(missing_ok=True)


def _screenshot(window: MainWindow, path: Path, frames: int, overwrite: bool) -> int:
    """Wait for ``frames`` processed frames (or the source's end), close the window and save it.

    A failure (no camera, unreadable file, broken model) is saved too, as the user would see it (the
    path was checked before anything opened), then reported as one line on stderr with exit status 1.

    Raises:
        EmolensError: the screenshot cannot be written (see ``save_screenshot``).
    """
    problem: list[str] = []
    loop = QEventLoop()

    def on_frame(update: Update) -> None:
        if update.processed >= frames:
            loop.quit()

    def on_end(end: SourceEnd) -> None:
        if end.failed:
            problem.append(end.message)
        loop.quit()

    def on_failed(message: str) -> None:
        problem.append(message)
        loop.quit()

    window.frame_shown.connect(on_frame)
    window.source_ended.connect(on_end)
    window.failed.connect(on_failed)
    loop.exec()
    shot = window.snapshot()
    window.close()
    save_screenshot(shot, path, overwrite)
    if problem:
        print(f"emolens: error: {problem[0]}", file=sys.stderr)
        return 1
    return 0
