"""A study session in the window: stimulus sync, the camera's analysis rate and the stimulus's dropped frames.

    emolens bench study-window [--quick]          # default benchmarks/study_window.md

The real ``MainWindow`` (offscreen unless ``QT_QPA_PLATFORM`` says otherwise) runs a ``StudySession``: the
"camera" is a generated 640x480 30 fps clip of a real face played in real time (a file source: each frame is
captured when it is due), the stimulus a 1280x720 25 fps clip of real faces with sound whose frames carry their
own number (``emolens.bench.numbered``), played by Qt Multimedia. Three figures:

* **sync**: for each recorded camera frame, its row's ``stimulus_t_s`` against the stimulus frame on screen
  when the camera frame was captured: the last frame that reached the player's video sink by then, its number
  read from its pixels (the luma plane), over 25 fps. The screen's own latency after the sink (compositor,
  monitor) is not seen here: it needs a camera filming the screen. For comparison, the same against the wall
  clock since the stimulus's first frame reached the sink (what a recording without the player's time writes).
* **camera analysis rate**: distinct camera frames recorded per second while the stimulus plays (goal >= 15).
* **dropped stimulus frames**: the stimulus's frames whose number never reached the sink, over its frame count
  (goal <= 1%).
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from emolens.bench.registry import BenchRun
from emolens.bench.timing import median_p95

STIMULUS_FPS = 25
STIMULUS_WH = (1280, 720)
CAMERA_WH, CAMERA_FPS = (640, 480), 30
SYNC_GOAL_MS, FPS_GOAL, DROPPED_GOAL = 40.0, 15.0, 0.01
_RATE = 48000


def run(bench: BenchRun) -> int:
    """``emolens bench study-window``: a 20 s stimulus (``quick``: 5 s); 1 when a goal is missed."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    seconds = 5.0 if bench.quick else 20.0
    with tempfile.TemporaryDirectory(prefix="emolens-bench-study-window-") as scratch:
        figures = _measure(Path(scratch), seconds, bench.log)
    sync_median, sync_p95 = median_p95(np.abs(figures["errors_ms"]))
    wall_median, wall_p95 = median_p95(np.abs(figures["wall_errors_ms"]))
    met = {"sync": sync_p95 <= SYNC_GOAL_MS, "fps": figures["fps"] >= FPS_GOAL,
           "dropped": figures["dropped"] <= DROPPED_GOAL}
    say = {True: "met", False: "MISSED"}
    bench.log(f"sync |stimulus_t_s - frame on screen|: median {sync_median:.1f} ms, p95 {sync_p95:.1f} ms; "
              f"camera analysed at {figures['fps']:.1f} fps; {figures['dropped']:.2%} stimulus frames dropped")
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, load average "
               f"{os.getloadavg()[0]:.2f} at the end, Python {platform.python_version()}, "
               f"Qt platform {os.environ['QT_QPA_PLATFORM']}")
    bench.write(
        "# Study session in the window\n\n"
        f"`{bench.command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine}. "
        f"{'A quick run. ' if bench.quick else ''}The frames on screen are read from the player's video sink every "
        f"4 ms, so a row can name the frame before one that reached the screen within those 4 ms: one frame "
        f"(40 ms) off.\n\n"
        f"A {seconds:g} s {STIMULUS_WH[0]}x{STIMULUS_WH[1]} {STIMULUS_FPS} fps stimulus with sound, numbered "
        f"frames, played by Qt Multimedia while the window analyses and records a {CAMERA_WH[0]}x{CAMERA_WH[1]} "
        f"{CAMERA_FPS} fps clip of a real face (`emolens/bench/study_window.py` says how each figure is taken).\n\n"
        "| measure | figure | goal | |\n| --- | ---: | ---: | --- |\n"
        f"| sync: row's stimulus_t_s - frame on screen, median | {sync_median:.1f} ms | | |\n"
        f"| sync: p95 ({len(figures['errors_ms'])} rows) | {sync_p95:.1f} ms | <= {SYNC_GOAL_MS:.0f} ms | "
        f"{say[met['sync']]} |\n"
        f"| camera analysed while the stimulus plays | {figures['fps']:.1f} fps | >= {FPS_GOAL:.0f} fps | "
        f"{say[met['fps']]} |\n"
        f"| stimulus frames dropped | {figures['dropped']:.2%} ({figures['missing']} of {figures['frames']}) | "
        f"<= {DROPPED_GOAL:.0%} | {say[met['dropped']]} |\n"
        f"| for comparison, the wall clock since the first frame: median, p95 | {wall_median:.1f} ms, "
        f"{wall_p95:.1f} ms | | |\n")
    return 0 if all(met.values()) or bench.quick else 1


def _measure(folder: Path, seconds: float, log) -> dict:
    from PySide6.QtCore import QEventLoop, QSettings

    from emolens.bench.media import write_video
    from emolens.bench.sound import ad_soundtrack, write_clip
    from emolens.gui.app import application
    from emolens.gui.main_window import MainWindow
    from emolens.gui.study_session import StudySession
    from emolens.study.file import create_study

    stimulus = write_clip(folder / "numbered.mp4", STIMULUS_WH, faces=2, fps=STIMULUS_FPS,
                          sound=ad_soundtrack(seconds, _RATE), rate=_RATE, numbered=True)
    camera = write_video(folder / "camera.mp4", CAMERA_WH, faces=1, seconds=seconds + 8, fps=CAMERA_FPS)
    study = folder / "study"
    create_study(study, [str(stimulus)], baseline_s=1.0)
    log(f"stimulus and camera clips written in {folder}")
    application()
    window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    window.show()
    opened = QEventLoop()
    window.worker.source_opened.connect(opened.quit)
    window.open_source(str(camera))
    opened.exec()
    session = StudySession(window, study, "bench", countdown_s=0)
    shown: list[tuple[float, int]] = []  # (perf_counter when it reached the sink, its number)
    asked: list[tuple[float, float]] = []  # (camera frame's capture time, the stimulus_t_s written for it)
    clock_at = session.clock.at

    def at(captured_s: float):
        answer = clock_at(captured_s)
        if answer is not None:
            asked.append((captured_s, answer[1]))
        return answer

    session.clock.at = at  # before start(): the worker is handed this one
    session.screen.frame_shown.connect(lambda frame: shown.append((time.perf_counter(), _number(frame))))
    done = QEventLoop()
    outcome = []
    session.finished.connect(lambda result: (outcome.append(result), done.quit()))
    session.start()
    done.exec()
    window.close()
    if not outcome or outcome[0].info is None:
        raise RuntimeError(f"the session was not written: {outcome[0].error if outcome else 'no outcome'}")
    rows = pd.read_csv(study / "sessions" / "bench.csv", keep_default_na=False)
    during = rows[rows["stimulus"] != ""].drop_duplicates("frame")
    span_s = pd.to_numeric(during["time_s"]).max() - pd.to_numeric(during["time_s"]).min()
    frames = int(seconds * STIMULUS_FPS)
    numbers = {number for _, number in shown}
    missing = len(set(range(frames)) - numbers)
    wall = [(captured_s, captured_s - shown[0][0]) for captured_s, _ in asked]
    return {"errors_ms": _sync_errors_ms(shown, asked), "wall_errors_ms": _sync_errors_ms(shown, wall),
            "fps": (len(during) - 1) / span_s, "dropped": missing / frames, "missing": missing, "frames": frames}


def _sync_errors_ms(shown: list[tuple[float, int]], asked: list[tuple[float, float]]) -> np.ndarray:
    """Each answer's position minus that of the numbered frame last shown by its capture time, in ms."""
    moments = np.array([moment for moment, _ in shown])
    errors = []
    for captured_s, position_s in asked:
        index = np.searchsorted(moments, captured_s, side="right") - 1
        if index >= 0:
            errors.append((position_s - shown[index][1] / STIMULUS_FPS) * 1000.0)
    return np.array(errors)


def _number(frame) -> int:
    """The number written into a ``QVideoFrame`` (read from its first plane: luma, for the decoder's YUV)."""
    from PySide6.QtMultimedia import QVideoFrame

    from emolens.bench.numbered import frame_number

    copy = QVideoFrame(frame)
    if not copy.map(QVideoFrame.MapMode.ReadOnly):
        return -1
    try:
        luma = np.frombuffer(copy.bits(0), np.uint8).reshape(copy.height(), copy.bytesPerLine(0))[:, :copy.width()]
        return frame_number(luma[..., None])
    finally:
        copy.unmap()
