"""The live desktop app (PySide6): webcam or file view with per-face emotions, a timeline chart,
recording with markers. ``emolens`` with no subcommand calls ``run_gui``.

Qt is imported only when ``run_gui`` runs, so ``import emolens.gui`` stays cheap.
"""

from __future__ import annotations

import argparse


def run_gui(args: argparse.Namespace) -> int:
    """Open the main window; returns the process exit status.

    ``args`` fields:
        source: camera index (digits), video file, image or image folder; None = the saved camera.
        screenshot: save the window to this image after ``frames`` frames and return, or None.
        frames: frames to process before the screenshot (as fast as possible).
        overwrite: replace an existing ``screenshot`` file.
        model: emotion model card or .onnx, None = the shipped one.
        device, detector, min_confidence, max_faces, tau_s: this run's pipeline settings;
            None keeps the saved one.

    Returns 0 on a normal close. A problem the user can fix is shown in the window; in
    screenshot mode it is printed as one line on stderr and 1 is returned.
    """
    from emolens.gui.app import run

    return run(args)


def run_replay(args: argparse.Namespace) -> int:
    """Open the replay window on ``args.session_csv`` (``emolens replay``), or a study folder's session list
    first; returns the exit status.

    ``args`` fields: session_csv, session (1-based), at (seconds to open at, or None),
    screenshot (save the window at ``at`` to this image and return, or None), overwrite (replace an existing
    screenshot file).
    """
    from emolens.gui.replay_app import run_replay as run

    return run(args)
