"""Benchmark ``emolens study report``: 30 viewers x 2 stimuli x 60 s at 30 fps (target: under 15 s, under 1 GiB).

    emolens bench study [--quick]            # default benchmarks/study.md

Each viewer's timeline is synthesised by ``emolens.bench.report.synthesize_timeline`` (one face, smooth
emotion curves) for a 5 s baseline and the two stimuli, imported with ``emolens study add`` (not timed);
the stimuli are short low-resolution clips of real faces 60 s long. The report is then built in a fresh
child process, whose own time and peak memory are the figures (imports included).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from emolens.bench.media import write_video
from emolens.bench.registry import BenchRun
from emolens.bench.report import _peak_mib, synthesize_timeline

TARGET_S = 15.0
TARGET_MIB = 1024.0
BASELINE_S = 5.0


def make_study(folder: Path, viewers: int, stimulus_s: float, fps: float = 30.0) -> Path:
    """A study of ``viewers`` synthetic sessions and two stimuli of ``stimulus_s`` seconds each."""
    from emolens.study.file import create_study
    from emolens.study.sessions import add_session

    clips = [write_video(folder / f"ad_{name}.mp4", (160, 120), faces=1, seconds=stimulus_s, fps=5.0)
             for name in ("a", "b")]
    study = folder / "study"
    create_study(study, [str(clip) for clip in clips], baseline_s=BASELINE_S, shuffle=True, seed=1)
    for viewer in range(viewers):
        timeline = folder / f"viewer{viewer}.csv"
        synthesize_timeline(timeline, seconds=BASELINE_S + 2 * stimulus_s + 1, fps=fps, faces=1, seed=viewer)
        add_session(study, timeline, f"P{viewer + 1:02d}", stimulus_at=BASELINE_S, log=lambda _: None)
    return study


def run(bench: BenchRun) -> int:
    """``emolens bench study``: the report's time and peak memory against the targets (``quick``: 5 viewers, 10 s)."""
    viewers, stimulus_s = (5, 10.0) if bench.quick else (30, 60.0)
    with tempfile.TemporaryDirectory(prefix="emolens-bench-study-") as scratch:
        started = time.perf_counter()
        study = make_study(Path(scratch), viewers, stimulus_s)
        bench.log(f"synthesised {viewers} sessions x 2 stimuli x {stimulus_s:g} s in "
                  f"{time.perf_counter() - started:.1f} s")
        done = subprocess.run([sys.executable, "-m", "emolens.bench.study", str(study)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the study report failed: {done.stderr.strip()}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
    passed = figures["seconds"] < TARGET_S and figures["peak_mib"] < TARGET_MIB
    line = (f"study report of {viewers} viewers x 2 stimuli x {stimulus_s:g} s at 30 fps: {figures['seconds']:.1f} s, "
            f"peak memory {figures['peak_mib']:.0f} MiB (targets {TARGET_S:.0f} s, {TARGET_MIB:.0f} MiB: "
            f"{'met' if passed else 'MISSED'})")
    bench.log(line)
    _write_results(bench, viewers, stimulus_s, figures, passed)
    return 0 if passed or bench.quick else 1


def _report_once(study: Path) -> None:
    from emolens.study.report import build_study_report

    started = time.perf_counter()
    build_study_report(study)
    print(json.dumps({"seconds": time.perf_counter() - started, "peak_mib": _peak_mib()}))


def _write_results(bench: BenchRun, viewers: int, stimulus_s: float, figures: dict, passed: bool) -> None:
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    bench.write(
        "# Study report benchmark\n\n"
        f"`{bench.command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine}.\n\n"
        f"| viewers | stimuli | seconds each | fps | report | peak memory | targets ({TARGET_S:.0f} s, 1 GiB) |\n"
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        f"| {viewers} | 2 | {stimulus_s:g} | 30 | {figures['seconds']:.1f} s | {figures['peak_mib']:.0f} MiB | "
        f"{'met' if passed else 'missed'} |\n\n"
        "The report runs in a fresh process (imports included in the memory figure): it reads every session, "
        "bootstraps every curve (1000 resamples), and writes the page, the charts, the CSV tables and "
        "frames.parquet.\n")


if __name__ == "__main__":
    _report_once(Path(sys.argv[1]))
