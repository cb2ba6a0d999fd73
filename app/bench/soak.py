"""``emolens bench soak``: does memory stay flat over a long run? RSS growth of the headless pipeline.

It runs ``emolens analyze``'s own loop (decode thread, detect, crop, classify, track, record
to one CSV) over the demo clip of real faces again and again, each pass a new input as in
``emolens analyze a.mp4 b.mp4 ...``, for the given minutes, and samples the process's
resident memory (RSS) after each pass. The first fifth of the passes (at least one) is
warm-up: caches, allocator pools and ONNX Runtime's arena settle there. The passes after it
are split into an early and a late half; growth is the late half's median RSS against the
early half's (medians, because the allocator's pools make single samples swing by a few
percent either way). Above ``limit_pct`` (5%) the benchmark fails, so a leak fails CI
instead of a user's overnight recording.

Example::

    emolens bench soak --minutes 30        # writes benchmarks/soak.md; exit status 1 above 5%
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import psutil

from emolens.bench.pipeline import median_p95
from emolens.bench.registry import BenchRun
from emolens.pipeline import Analyzer
from emolens.record import CsvRecorder
from emolens.sources import open_source

LIMIT_PCT = 5.0
_MIB = 1 << 20


@dataclass(frozen=True)
class SoakResult:
    """What a soak run measured: passes and frames, RSS samples (bytes) and per-frame times (ms)."""

    minutes: float
    passes: int
    frames: int
    warmup_passes: int
    rss: list[int]
    frame_ms: list[float]

    @property
    def early_late_rss(self) -> tuple[float, float]:
        """Median RSS (bytes) of the early and the late half of the passes after warm-up."""
        measured = self.rss[self.warmup_passes:]
        half = len(measured) // 2
        return float(np.median(measured[:half])), float(np.median(measured[-half:]))

    @property
    def growth_pct(self) -> float:
        """The late half's median RSS against the early half's, in percent."""
        early, late = self.early_late_rss
        return 100.0 * (late - early) / early


def soak(minutes: float, video: Path | None = None, log: Callable[[str], None] = print) -> SoakResult:
    """Run the analyze loop over ``video`` (default: the demo clip) pass after pass for ``minutes``."""
    video = video or Path(str(resources.files("emolens.assets") / "demo.mp4"))
    process = psutil.Process()
    rss: list[int] = []
    frame_ms: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder, Analyzer() as analyzer, \
            CsvRecorder(Path(folder) / "soak.csv", analyzer.labels) as recorder:
        while time.monotonic() - started < minutes * 60 or len(rss) < 3:
            with open_source(video) as source:
                analyzer.reset()
                clock = time.perf_counter()
                for _ in analyzer.run(source, recorder):
                    now = time.perf_counter()
                    frame_ms.append((now - clock) * 1000.0)
                    clock = now
            rss.append(process.memory_info().rss)
            if len(rss) % 10 == 0:
                log(f"soak: {len(rss)} passes, RSS {rss[-1] / _MIB:.1f} MiB")
    return SoakResult(minutes=(time.monotonic() - started) / 60, passes=len(rss), frames=len(frame_ms),
                      warmup_passes=max(1, len(rss) // 5), rss=rss, frame_ms=frame_ms)


def run(bench: BenchRun) -> int:
    """Soak for ``bench.minutes`` (12 s for ``quick``), write the Markdown report to ``bench.out``; 1 if RSS
    grew above ``LIMIT_PCT``."""
    log, limit_pct = bench.log, LIMIT_PCT
    minutes = 0.2 if bench.quick else bench.minutes
    result = soak(minutes, log=log)
    median, p95 = median_p95(result.frame_ms)
    growth = result.growth_pct
    verdict = "pass" if growth <= limit_pct else "FAIL"
    early, late = (value / _MIB for value in result.early_late_rss)
    lines = [
        "# Soak benchmark",
        "",
        f"Command: `emolens bench soak --minutes {minutes:g}`. Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "The demo clip (real faces, `assets/demo.mp4`) analysed pass after pass into one CSV, each pass a new "
        "input as with `emolens analyze a.mp4 b.mp4 ...`. RSS is sampled after each pass; after the warm-up "
        "passes (the first fifth), growth is the median RSS of the late half of the passes against that of the "
        f"early half. The run fails above {limit_pct:g}%.",
        "",
        "| minutes | passes (inputs) | frames | frame ms (median / p95) | RSS early (median) | RSS late (median) "
        "| growth | |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {result.minutes:.1f} | {result.passes} | {result.frames} | {median:.2f} / {p95:.2f} | {early:.1f} MiB | "
        f"{late:.1f} MiB | **{growth:+.2f}%** | {verdict} |",
        "",
    ]
    log(f"soak: {result.passes} passes, {result.frames} frames in {result.minutes:.1f} min; median RSS {early:.1f} MiB "
        f"early -> {late:.1f} MiB late ({growth:+.2f}%, limit {limit_pct:g}%): {verdict}")
    bench.write("\n".join(lines))
    return 0 if growth <= limit_pct else 1
