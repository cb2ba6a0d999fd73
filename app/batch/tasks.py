"""One unit of batch work: analyse one input into its timeline, in whichever process or Ray worker runs it.

A ``BatchWorker`` loads the model and detector once and then runs any number of ``Task``s. It
decodes its input itself (frames never travel between processes) and records the rows with
`emolens analyze`'s own loop and row values (``analyze_source`` + ``TimelineRows``) straight into
``timelines/<id>.parquet`` under ``--out`` (timeline.py, dataset.py), and with ``--csv`` into the CSV
`emolens analyze` would write.
Every failure of an input, expected (``EmolensError``) or not, comes back as a failed
``TaskResult`` with a one-line error: one bad input never stops a worker.

Face IDs start at 1 in every input and continue over the whole recording, exactly as
`emolens analyze` numbers them: an input is never split into time chunks (an archive has far more
recordings than workers, so whole inputs keep every worker busy, and tracking and smoothing need
the frames in order). An ID is unique within its ``input_id``, not across inputs.

Example::

    worker = BatchWorker(AnalyzerOptions(threads=1))
    result = worker.run(Task(item, "out/", fingerprint(item, card.sha256, settings), settings))
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from emolens.analyze import AnalyzeSummary, analyze_source
from emolens.batch.dataset import DatasetStore, timeline_schema
from emolens.batch.inputs import BatchInput
from emolens.batch.timeline import ParquetRecorder
from emolens.errors import EmolensError
from emolens.options import AnalyzerOptions
from emolens.pipeline import Analyzer
from emolens.record import CsvRecorder, TimelineRows
from emolens.sources import open_source

# Options that change the numbers, so a change of any of them makes every input pending again;
# device and threads only change speed (and float rounding), so they are left out.
_RESULT_OPTIONS = ("detector", "tiles", "min_confidence", "max_faces", "detect", "max_gap_s", "tau_s", "behaviour",
                   "behaviour_hz", "behaviour_budget_hz")


@dataclass(frozen=True)
class BatchSettings:
    """What a batch asks of every input: the analyzer options and what to write."""

    options: AnalyzerOptions
    every: int = 1
    keypoints: bool = False
    write_csv: bool = False

    def schema(self, labels: tuple[str, ...]) -> pa.Schema:
        """The Parquet schema of every timeline of this batch."""
        return timeline_schema(labels, self.keypoints, self.options.behaviour)

    def fingerprint_options(self) -> dict:
        """The options that shape the rows, as a JSON-able dict (part of every fingerprint)."""
        chosen = {name: getattr(self.options, name) for name in _RESULT_OPTIONS}
        return {**chosen, "every": self.every, "keypoints": self.keypoints}


def fingerprint(item: BatchInput, model_sha256: str, settings: BatchSettings) -> dict:
    """What a timeline was made from; an output whose stored fingerprint differs is stale."""
    return {"input": item.path, "size": item.size, "mtime_ns": item.mtime_ns,
            "content_sha256": item.content_sha256, "model_sha256": model_sha256,
            "options": settings.fingerprint_options()}


@dataclass(frozen=True)
class Task:
    """One input to analyse into ``out``; ``fingerprint`` is stored in its output's footer."""

    item: BatchInput
    out: str
    fingerprint: dict
    settings: BatchSettings


@dataclass(frozen=True)
class TaskResult:
    """How one input went. ``status`` is ``done`` or ``failed`` (then ``error`` is one line)."""

    input_id: str
    status: str
    error: str = ""
    duration_s: float = 0.0
    frames: int = 0
    faces: int = 0
    rows: int = 0
    wall_s: float = 0.0
    worker: str = ""
    worker_rss_mb: float = 0.0


class BatchWorker:
    """The model, detector and tracker of one worker process, loaded once, reused for every task.

    Args:
        options: analyzer options; ``threads`` is the classifier's share of this worker's cores.
    """

    def __init__(self, options: AnalyzerOptions):
        self.analyzer = Analyzer(options)
        self.labels = self.analyzer.labels

    def run(self, task: Task) -> TaskResult:
        """Analyse one input and publish its timeline; never raises for a bad input."""
        started = time.perf_counter()
        try:
            counts = self._analyze(task)
            status, error = "done", ""
        except EmolensError as problem:
            counts, status, error = {}, "failed", _one_line(str(problem))
        except Exception as problem:  # noqa: BLE001 - any failure of one input is that input's, not the batch's
            counts, status, error = {}, "failed", _one_line(f"{type(problem).__name__}: {problem}")
        return TaskResult(task.item.input_id, status, error, wall_s=time.perf_counter() - started,
                          worker=f"{socket.gethostname()}:{os.getpid()}", worker_rss_mb=peak_rss_mb(), **counts)

    def _analyze(self, task: Task) -> dict:
        settings, item = task.settings, task.item
        summary = AnalyzeSummary(output=Path(item.path))
        store = DatasetStore(task.out)
        with tempfile.TemporaryDirectory(prefix="emolens-batch-") as scratch, \
                open_source(item.path, every=settings.every) as source:
            duration_s = source.frame_count / source.fps if source.fps else 0.0
            # With --csv, the rows also go to a scratch CSV (rebuilt on a retry, so flushed once a second).
            with (CsvRecorder(Path(scratch) / "timeline.csv", self.labels, keypoints=settings.keypoints, flush_s=1.0,
                              behaviour=settings.options.behaviour) if settings.write_csv else nullcontext()) as csv, \
                    store.timeline_writer(item.input_id, settings.schema(self.labels), task.fingerprint) as writer:
                timeline = csv.timeline if csv else TimelineRows(self.labels, settings.keypoints,
                                                                  settings.options.behaviour)
                recorder = ParquetRecorder(writer, item.input_id, item.display_path, timeline, csv)
                analyze_source(self.analyzer, source, recorder, summary)
                if summary.warnings:  # a file that ended early is not published as complete
                    raise EmolensError(summary.warnings[0])
                recorder.finish()
                if csv:  # before the Parquet file, whose rename is what marks the input done
                    csv.close()
                    store.copy_csv(csv.path, item.input_id)
        return {"duration_s": duration_s, "frames": summary.frames, "faces": summary.face_rows,
                "rows": recorder.rows}

    def close(self) -> None:
        self.analyzer.close()


def worker_options(options: AnalyzerOptions, threads: int) -> AnalyzerOptions:
    """``options`` with the classifier limited to ``threads`` (a worker's share of the cores)."""
    return dataclasses.replace(options, threads=max(1, threads))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (0 where the OS does not say, e.g. Windows)."""
    try:
        import resource
    except ImportError:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500] or "unknown error"
