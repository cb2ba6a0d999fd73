"""Every benchmark by name, and the one way each is called: ``run(BenchRun) -> int``.

Each module named here has ``run(bench: BenchRun) -> int`` (0: its goals met or nothing to judge,
1: a goal missed). Modules load only when their benchmark runs (the window's needs PySide6, the
service's FastAPI, batch's Ray).

Example::

    run_bench("pipeline", BenchRun(Path("benchmarks/pipeline.md"), quick=True))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

BENCHES = {
    "pipeline": ("emolens.bench.pipeline", "per-stage and end-to-end speed of the headless pipeline"),
    "detection": ("emolens.bench.detection", "faces found (recall, precision) and the detector's cost"),
    "report": ("emolens.bench.report", "time and memory of a report on a one-hour session"),
    "study": ("emolens.bench.study", "time and memory of a study report: 30 viewers x 2 stimuli x 60 s"),
    "sync": ("emolens.bench.sync", "study add --sync audio: start error on recordings with a known offset"),
    "study-window": ("emolens.bench.study_window", "a study session in the window: stimulus sync, camera fps, "
                                                   "dropped stimulus frames"),
    "gui": ("emolens.bench.gui", "the live window: frame rate, display latency, dropped frames"),
    "replay": ("emolens.bench.replay", "the replay window: seek in a one-hour recording, playback, chart redraw"),
    "behaviour": ("emolens.bench.behaviour", "the landmarker's cost, per crop and whole frame"),
    "behaviour-validation": ("emolens.bench.behaviour_validation", "action units against FER+ emotions"),
    "soak": ("emolens.bench.soak", "memory over a long run (fails above 5% RSS growth)"),
    "serve": ("emolens.bench.serve", "the service under load: images per second, latency"),
    "panels": ("emolens.bench.panels", "remote panels: participants streaming at once, frames kept, latency"),
    "batch": ("emolens.bench.batch", "emolens batch: local and Ray engines"),
}


@dataclass(frozen=True)
class BenchRun:
    """What every benchmark is given.

    Attributes:
        out: the Markdown results file.
        quick: a short smoke run, not figures to quote.
        minutes: how long to run, for the benchmarks that run for a time (soak).
        log: where progress lines go.
        command: how the results file says to reproduce the run.
        model: the shipped emotion model the pipeline benchmark runs (``fast`` or ``accurate``).
        overwrite: an existing ``out`` may be replaced.
    """

    out: Path
    quick: bool = False
    minutes: float = 10.0
    log: Callable[[str], None] = print
    command: str = "emolens bench"
    model: str = "fast"
    overwrite: bool = False

    def write(self, text: str) -> None:
        """Write the results file (``emolens.bench.results.write_results``) and say where."""
        from emolens.bench.results import write_results  # not at import: the command line parses without numpy

        write_results(self.out, text, self.overwrite)
        self.log(f"wrote {self.out}")


def run_bench(name: str, bench: BenchRun) -> int:
    """Run the benchmark ``name`` (a key of ``BENCHES``); its exit status."""
    return import_module(BENCHES[name][0]).run(bench)
