"""``emolens bench``: per-stage and end-to-end speed of the headless pipeline, on real faces.

For 1 and 8 faces at 640x480 and 1280x720 it writes a clip of the astronaut's face (see
``emolens.bench.media``), runs ``emolens analyze``'s own loop over it (decode in a
thread, detect, crop, classify, track, record to CSV) and reports the median and p95 of each
stage and the end-to-end frames per second. One face uses the default detector (the
short-range model: one pass at 640x480, overlapping squares at 1280x720). Eight faces come
in two scenes: a video-call gallery (faces fill their cells; the full-range model finds
them all in one pass) and a room seen from afar (small faces: the full-range model on the
frame plus 2x2 tiles). It also times
the classifier alone at batch 1 on one CPU core. CPU always; CUDA too when it loads.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from emolens.bench.media import write_video
from emolens.bench.registry import BenchRun
from emolens.bench.timing import median_p95, time_calls
from emolens.card import ModelCard
from emolens.classify import Classifier
from emolens.options import STAGES, AnalyzerOptions
from emolens.pipeline import Analyzer
from emolens.record import CsvRecorder
from emolens.sources import open_source


@dataclass(frozen=True)
class Scenario:
    """A clip to measure: its size, how many faces and how they are framed, and the detector for it."""

    size_wh: tuple[int, int]
    faces: int
    framing: str
    detector: str
    tiles: int = 1
    detect: str = AnalyzerOptions.detect

    @property
    def title(self) -> str:
        tiling = f", {self.tiles}x{self.tiles} tiles" if self.tiles > 1 else ""
        scene = {"room": "room", "gallery": "video-call gallery"}[self.framing]
        default = self.detector == "short" and self.detect == AnalyzerOptions.detect
        return (f"{self.size_wh[0]}x{self.size_wh[1]}, {self.faces} face(s) ({scene}), "
                f"{self.detector} detector{tiling}, --detect {self.detect}{' (default)' if default else ''}")


SCENARIOS = tuple(
    scenario
    for size_wh in ((640, 480), (1280, 720))
    for scenario in (Scenario(size_wh, 1, "room", "short"), Scenario(size_wh, 1, "room", "short", detect="full"),
                     Scenario(size_wh, 8, "gallery", "full"), Scenario(size_wh, 8, "room", "full", tiles=2))
)


def measure_scenario(scenario: Scenario, device: str, folder: Path, seconds: float, model: str = "fast") -> dict:
    """Run the analyze loop over a generated clip; stage timings (ms) and end-to-end fps."""
    video = folder / f"{scenario.size_wh[0]}x{scenario.size_wh[1]}_{scenario.faces}_{scenario.framing}.mp4"
    if not video.exists():
        write_video(video, scenario.size_wh, scenario.faces, seconds, fps=25.0, framing=scenario.framing)
    options = AnalyzerOptions(model=model, device=device, detector=scenario.detector, tiles=scenario.tiles,
                              detect=scenario.detect)
    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
    faces_seen = []
    with Analyzer(options) as analyzer, open_source(video) as source, \
            CsvRecorder(folder / "bench.csv", analyzer.labels) as recorder:
        started, cpu_started = time.perf_counter(), time.process_time()
        for result in analyzer.run(source, recorder):
            for stage in STAGES:
                timings[stage].append(result.timings_ms[stage])
            faces_seen.append(len(result.faces))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    frames = len(faces_seen)
    stages = {stage: median_p95(v) for stage, v in timings.items()}
    fps = frames / wall
    return {"stages": stages, "fps": fps, "frames": frames, "faces_mean": float(np.mean(faces_seen)),
            "cpu_fps": frames / cpu,
            "unaccounted_ms": 1000 / fps - sum(median for median, _ in stages.values())}


def measure_classifier(card: ModelCard, device: str, batch: int, repeats: int = 300) -> tuple[float, float, float]:
    """Median and p95 ms per call of the classifier alone (one thread on CPU), and the median CPU ms."""
    classifier = Classifier(card, device=device, threads=1)
    crops = np.random.default_rng(0).integers(0, 255, (batch, *card.input_hw, card.channels), dtype=np.uint8)
    return time_calls(lambda: classifier.predict(crops), repeats)


def run(bench: BenchRun) -> int:
    """Measure every scenario on CPU (and CUDA when it loads); write a Markdown report to ``bench.out``."""
    quick, log = bench.quick, bench.log
    card = ModelCard.load(bench.model)
    devices = ["cpu"]
    if Classifier(card, device="auto").provider == "CUDA":
        devices.append("cuda")
    seconds = 2.0 if quick else 8.0
    lines = [
        "# Pipeline benchmark",
        "",
        f"Command: `{bench.command}`; emotion model `{bench.model}` ({card.model_path.name}). "
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}, ai-edge-litert {version('ai-edge-litert')}, "
        f"onnxruntime {_onnxruntime_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average at the start {os.getloadavg()[0]:.1f}.",
        "",
        "Each clip is 25 fps real faces (the astronaut photo, see `assets/make_demo.py`), "
        f"{seconds:.0f} s long. Times in ms, median / p95 per frame. `decode` is the time the loop waited "
        "for the next frame (decoding runs ahead in its own thread); with "
        "`--detect tracked` about half the frames skip the detector, so `detect`'s median lies between the two "
        "costs and its p95 is a search's; `other` is what per-frame time the stages "
        "do not account for (Python overhead, thread hand-offs); detection runs on its own thread beside the other "
        "stages, so where the two overlap the stages add up to more than a frame's time and `other` is negative. "
        "`fps per CPU second` is frames over the CPU "
        "time the process used (all its threads): a cost that other work on the cores does not inflate; on "
        "an idle machine the end-to-end fps is about this, or higher where decoding runs on the second core.",
        "",
    ]
    with tempfile.TemporaryDirectory() as temporary:
        for device in devices:
            lines += [f"## {device.upper()}", "",
                      "| scenario | faces found | " + " | ".join(STAGES)
                      + " | other | end-to-end fps | fps per CPU second |",
                      "|---" * (len(STAGES) + 5) + "|"]
            for scenario in SCENARIOS:
                result = measure_scenario(scenario, device, Path(temporary), seconds, bench.model)
                cells = [f"{median:.2f} / {p95:.2f}" for median, p95 in result["stages"].values()]
                row = (f"| {scenario.title} | {result['faces_mean']:.1f} | " + " | ".join(cells)
                       + f" | {result['unaccounted_ms']:.2f} | **{result['fps']:.1f}** | {result['cpu_fps']:.1f} |")
                lines.append(row)
                log(f"{device} {scenario.title}: {result['fps']:.1f} fps, {result['cpu_fps']:.1f} per CPU second")
            lines.append("")
            for batch in (1, 8):
                median, p95, cpu = measure_classifier(card, device, batch)
                per_face = f", {median / batch:.2f} ms per face" if batch > 1 else ""
                threads = " on one CPU thread" if device == "cpu" else ""
                lines.append(f"- classifier alone, batch {batch}{threads}: median {median:.2f} ms, p95 {p95:.2f} ms"
                             f"{per_face}; CPU time median {cpu:.2f} ms")
                log(lines[-1])
            lines.append("")
    bench.write("\n".join(lines))
    return 0


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
