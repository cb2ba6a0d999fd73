"""Benchmark replay: seek anywhere in a one-hour 30 fps recording, play at 1x, redraw a 100,000-row chart.

    python -m emolens.bench.replay [RESULTS.md] [--minutes 60]     # default benchmarks/replay.md

A numbered video (``emolens.bench.numbered``: real faces, each frame stamped with its index) of
``--minutes`` at 30 fps, 320x240, is written with a synthetic timeline of four faces per frame
(``emolens.bench.report.synthesize_timeline``) beside it, and the real ``ReplayWindow`` opens it
(offscreen unless ``QT_QPA_PLATFORM`` says otherwise). Measured:

- seek: 100 random frames, from the request to the frame painted with its faces; every frame
  painted is checked to carry the number asked for. Target: p95 at most 200 ms.
- playback: 10 s at 1x from the middle; frames painted per second against the video's 30 fps.
- chart: a 100,000-row session's chart at 1200x260 repainted, cold (binning again) and warm.
  Target: at most 50 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from emolens.bench.media import face_tiles, render_frame
from emolens.bench.numbered import frame_number, stamp_number
from emolens.bench.registry import BenchRun
from emolens.bench.report import synthesize_timeline
from emolens.bench.results import check_results_path, run_module, write_results

FPS = 30.0
SIZE_WH = (320, 240)
SEEK_TARGET_MS = 200.0
CHART_TARGET_MS = 50.0
CHART_ROWS_SECONDS = 834.0  # 4 faces at 30 fps: about 100,000 rows


def run(bench: BenchRun) -> int:
    """``emolens bench replay``: ``main`` with its defaults (``quick``: a five-minute recording)."""
    return main([str(bench.out), *(["--minutes", "5"] if bench.quick else []),
                 *(["--overwrite"] if bench.overwrite else [])], command=bench.command)


def write_long_video(path: Path, minutes: float) -> int:
    """A numbered video of ``minutes`` at 30 fps (30 rendered pictures in a loop, each frame stamped); frames."""
    tiles = face_tiles(4)
    pictures = [render_frame(tiles, SIZE_WH, index / FPS) for index in range(30)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE_WH)
    frames = int(minutes * 60 * FPS)
    for index in range(frames):
        writer.write(stamp_number(pictures[index % 30].copy(), index))
    writer.release()
    return frames


def main(argv: list[str] | None = None, command: str | None = None) -> int:
    """Run the benchmark; 0 when the seek and chart targets are met, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m emolens.bench.replay", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="benchmarks/replay.md")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the recording (default 60)")
    parser.add_argument("--overwrite", action="store_true", help="replace the results file if it exists")
    given = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(given)
    check_results_path(Path(args.results), args.overwrite)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from emolens.gui.app import application, forget_opencv_qt_paths

    forget_opencv_qt_paths()
    application()
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "focus-group.mp4"  # the name synthesize_timeline gives as source
        print(f"writing {args.minutes:g} min of numbered video…", flush=True)
        frames = write_long_video(video, args.minutes)
        csv = Path(folder) / "session.csv"
        rows = synthesize_timeline(csv, seconds=frames / FPS, fps=FPS, faces=4)
        seeks, wrong, load_s = _seeks(csv, frames)
        played_fps = _playback(csv)
        chart_csv = Path(folder) / "chart.csv"
        chart_rows = synthesize_timeline(chart_csv, seconds=CHART_ROWS_SECONDS, fps=FPS, faces=4)
        cold, warm = _chart(chart_csv)
    p95 = float(np.percentile(seeks, 95))
    passed = p95 <= SEEK_TARGET_MS and max(np.percentile(cold, 95), np.percentile(warm, 95)) <= CHART_TARGET_MS
    passed = passed and not wrong
    command = command or shlex.join(["python", "-m", "emolens.bench.replay", *given])
    text = _results(command, args.minutes, frames, rows, load_s, seeks, wrong, played_fps, chart_rows, cold, warm,
                    passed)
    write_results(Path(args.results), text, args.overwrite)
    print(text)
    print(f"wrote {args.results}", file=sys.stderr)
    return 0 if passed else 1


def _open(csv: Path):
    from emolens.gui.replay_window import ReplayWindow
    from emolens.replay.recording import load_recording

    window = ReplayWindow(load_recording(csv))
    window.resize(1280, 820)
    window.show()
    return window


def _seeks(csv: Path, frames: int) -> tuple[list[float], int, float]:
    """Milliseconds from request to painted frame, for 100 random frames; how many showed another frame."""
    from emolens.gui.replay_app import wait_for_frame

    started = time.perf_counter()
    window = _open(csv)
    load_s = time.perf_counter() - started
    wait_for_frame(window, window.position)
    times, wrong = [], 0
    for frame in random.Random(0).sample(range(frames), 100):
        started = time.perf_counter()
        window.seek_frame(frame)
        wait_for_frame(window, frame)
        window.video_view.repaint()  # painted now, not at the next event
        times.append((time.perf_counter() - started) * 1000)
        wrong += frame_number(window.video_view._pixels) != frame
    window.close()
    return times, wrong, load_s


def _playback(csv: Path, seconds: float = 10.0) -> float:
    """Frames painted per second while playing at 1x from the middle."""
    from PySide6.QtCore import QEventLoop, QTimer

    window = _open(csv)
    painted: list[int] = []
    window.frame_shown.connect(painted.append)
    window.seek_frame(window.recording.last_frame // 2)
    window.play(1)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    window.close()
    return len(set(painted)) / seconds


def _chart(csv: Path, repeats: int = 30) -> tuple[list[float], list[float]]:
    """Milliseconds per repaint of the chart, cold (binned again) and warm."""
    from emolens.gui.replay_chart import ReplayChart
    from emolens.replay.recording import load_recording

    recording = load_recording(csv)
    chart = ReplayChart()
    chart.resize(1200, 260)
    chart.set_session(recording.timeline.faces, recording.labels, 0.0, recording.timeline.end_s)
    chart.show()
    cold, warm = [], []
    for index in range(repeats):
        chart.select(None)  # drops the cache
        started = time.perf_counter()
        chart.grab()
        cold.append((time.perf_counter() - started) * 1000)
        chart.set_position(index)
        started = time.perf_counter()
        chart.grab()
        warm.append((time.perf_counter() - started) * 1000)
    chart.close()
    return cold, warm


def _results(command: str, minutes: float, frames: int, rows: int, load_s: float, seeks: list[float], wrong: int,
             played_fps: float, chart_rows: int, cold: list[float], warm: list[float], passed: bool) -> str:
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
               f"Python {platform.python_version()}, OpenCV {cv2.__version__}")

    def ms(values: list[float], share: float) -> str:
        return f"{np.percentile(values, share):.1f} ms"

    return (
        "# Replay benchmark\n\n"
        f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine}; "
        f"Qt platform {os.environ.get('QT_QPA_PLATFORM')}.\n\n"
        f"Recording: {minutes:g} min numbered MPEG-4 video at {FPS:g} fps, {SIZE_WH[0]}x{SIZE_WH[1]} "
        f"({frames:,} frames), four faces per frame ({rows:,} timeline rows); the window opened it in {load_s:.1f} s.\n\n"
        "| measure | median | p95 | worst | target |\n| --- | ---: | ---: | ---: | --- |\n"
        f"| seek to a random frame, painted with its faces (100) | {ms(seeks, 50)} | {ms(seeks, 95)} | "
        f"{max(seeks):.1f} ms | p95 ≤ {SEEK_TARGET_MS:.0f} ms |\n"
        f"| chart of {chart_rows:,} rows, cold (binned again) | {ms(cold, 50)} | {ms(cold, 95)} | "
        f"{max(cold):.1f} ms | ≤ {CHART_TARGET_MS:.0f} ms |\n"
        f"| chart of {chart_rows:,} rows, warm (playhead moved) | {ms(warm, 50)} | {ms(warm, 95)} | "
        f"{max(warm):.1f} ms | ≤ {CHART_TARGET_MS:.0f} ms |\n\n"
        f"Frames that showed another number than the one asked for: {wrong} of {len(seeks)}.\n\n"
        f"Playback at 1x, four faces drawn: {played_fps:.1f} distinct frames painted per second "
        f"(the video's rate: {FPS:g} fps).\n\n"
        f"Targets {'met' if passed else 'missed'}.\n")


if __name__ == "__main__":
    run_module(main)
