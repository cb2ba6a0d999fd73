"""How responsive the window stays while it processes: event-loop lag and display latency.

    emolens bench gui [--quick] [--out OUT.md]          # or: python -m emolens.bench.gui [OUT.md]
    python -m emolens.bench.gui --seconds 30 --faces 4 --size 960x720

Runs the real ``MainWindow`` (offscreen unless ``QT_QPA_PLATFORM`` says otherwise) on a video
of real faces generated for the run, played in real time as a user would watch it, with its
own temporary settings. Two figures:

* **event-loop lag**: a ``QTimer`` asks for a tick every 10 ms; how late each tick comes is
  how long the GUI thread was busy (painting, or blocked). A frozen GUI shows up here.
* **display latency**: from the moment a frame is captured (for a file played in real time:
  the moment it is due) to the end of the paint that shows it; frames skipped because
  inference was slower than the video are counted, not timed.

Median and p95 are printed and written, with the machine and the load, to ``benchmarks/gui.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from emolens.bench.registry import BenchRun
from emolens.bench.results import check_results_path, run_module, write_results
from emolens.bench.timing import median_p95

_TICK_S = 0.010
_WARM_UP_S = 1.0


def run(bench: BenchRun) -> int:
    """``emolens bench gui``: ``main`` with its defaults (``quick``: a short smoke run)."""
    return main([str(bench.out), *(["--seconds", "4"] if bench.quick else []),
                 *(["--overwrite"] if bench.overwrite else [])], command=bench.command)


def main(argv: list[str] | None = None, command: str | None = None) -> int:
    """Run the benchmark; ``command`` is how the results file says to reproduce it (default: this
    module's command line with ``argv``, which runs as written)."""
    parser = argparse.ArgumentParser(prog="python -m emolens.bench.gui", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", default="benchmarks/gui.md", help="Markdown results file")
    parser.add_argument("--overwrite", action="store_true", help="replace the results file if it exists")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the generated video")
    parser.add_argument("--faces", type=int, default=2, help="faces in the video")
    parser.add_argument("--size", default="640x480", help="video size WxH")
    parser.add_argument("--fps", type=float, default=20.0, help="video frame rate")
    args = parser.parse_args(argv)
    out = Path(args.out)
    check_results_path(out, args.overwrite)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer

    from emolens.bench.media import write_video
    from emolens.gui.app import application
    from emolens.gui.main_window import MainWindow

    size_wh = tuple(int(part) for part in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="emolens-bench-") as folder:
        video = write_video(Path(folder) / "bench.mp4", size_wh, args.faces, args.seconds, args.fps)
        application()
        window = MainWindow(QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat))
        window.resize(1280, 760)
        window.show()
        lags_s: list[float] = []
        latencies_s: dict[float, float] = {}
        shown = {"frames": 0, "fps": 0.0}
        measuring_from = [float("inf")]
        last_tick = [time.perf_counter()]

        def on_tick() -> None:
            now = time.perf_counter()
            if now >= measuring_from[0]:
                lags_s.append(max(now - last_tick[0] - _TICK_S, 0.0))
            last_tick[0] = now

        def on_painted(captured_s: float) -> None:
            now = time.perf_counter()
            if captured_s >= measuring_from[0] and captured_s not in latencies_s:
                latencies_s[captured_s] = now - captured_s

        def on_shown(update) -> None:
            if not shown["frames"]:
                measuring_from[0] = time.perf_counter() + _WARM_UP_S
            shown["frames"] += 1
            shown["fps"] = update.fps

        ticker = QTimer()
        ticker.setTimerType(Qt.TimerType.PreciseTimer)
        ticker.setInterval(int(_TICK_S * 1000))
        ticker.timeout.connect(on_tick)
        window.video_view.frame_painted.connect(on_painted)
        window.frame_shown.connect(on_shown)
        done = QEventLoop()
        window.source_ended.connect(done.quit)
        window.failed.connect(done.quit)
        ticker.start()
        window.open_source(str(video))
        done.exec()
        ticker.stop()
        provider = window.status_labels["provider"].text()
        window.close()

    if not latencies_s:
        print("emolens: error: no frame was shown; is the pipeline working? (try `emolens --source FILE`)",
              file=sys.stderr)
        return 1
    frames = int(args.seconds * args.fps)
    rows = {
        "event-loop lag (ms)": _stats(lags_s),
        "display latency (ms)": _stats(list(latencies_s.values())),
    }
    facts = {
        "video": f"{args.size}, {args.faces} faces, {args.seconds:g} s at {args.fps:g} fps ({frames} frames), "
                 f"played in real time",
        "shown": f"{shown['frames']} frames ({frames - shown['frames']} skipped as late), "
                 f"{shown['fps']:.1f} fps processed at the end",
        "samples": f"{len(lags_s)} timer ticks, {len(latencies_s)} painted frames (first {_WARM_UP_S:g} s skipped)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, load average "
                   f"{os.getloadavg()[0]:.2f} at the end; Python {platform.python_version()}, PySide6 {pyside_version}, "
                   f"Qt platform {os.environ['QT_QPA_PLATFORM']}; emotion model on {provider}",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command or shlex.join(["python", "-m", "emolens.bench.gui",
                                          *(argv if argv is not None else sys.argv[1:])]),
    }
    text = _markdown(rows, facts)
    print(text)
    write_results(out, text, args.overwrite)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _stats(values_s: list[float]) -> dict[str, float]:
    milliseconds = np.asarray(values_s) * 1000.0
    median, p95 = median_p95(milliseconds)
    return {"median": median, "p95": p95, "max": float(milliseconds.max())}


def _markdown(rows: dict[str, dict[str, float]], facts: dict[str, str]) -> str:
    lines = ["# GUI responsiveness", "",
             "The real window, offscreen, on a generated video of real faces played in real time "
             "(`emolens/bench/gui.py` says how each figure is taken).", "",
             "| measure | median | p95 | max |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {stats['median']:.1f} | {stats['p95']:.1f} | {stats['max']:.1f} |"
              for name, stats in rows.items()]
    lines += [""] + [f"- {name}: {value}" for name, value in facts.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    run_module(main)
