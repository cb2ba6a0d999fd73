"""Video jobs: each in its own folder, run to the same CSV timeline as ``emolens analyze``.

A job folder holds ``input<ext>`` (the upload), ``timeline.csv`` and, once asked for,
``report/``; nothing is written anywhere else. Jobs run one at a time on their own thread, in
upload order, independent of the client's connection; each frame borrows an analyzer from the
engine's pool, so image requests keep being served between frames. A job's folder is deleted
``limits.job_ttl_s`` after it ends, and every folder when the server stops.

The CSV matches ``emolens analyze`` row for row: the same tracker settings, ``CsvRecorder`` and
frame times; its ``source`` column holds the uploaded file's name rather than a server path.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from emolens.errors import EmolensError
from emolens.record import CsvRecorder
from emolens.serve.config import Limits
from emolens.serve.engine import Engine
from emolens.serve.errors import ApiError
from emolens.sources import VideoSource
from emolens.track import FaceTracker

log = logging.getLogger("emolens.serve")

TIMELINE = "timeline.csv"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Job:
    """One video's analysis. Counters are written by the job thread and only read elsewhere."""

    id: str
    folder: Path
    name: str
    keypoints: bool = False
    state: str = "queued"
    frames_done: int = 0
    frames_total: int = 0
    faces: int = 0
    error: str | None = None
    created: datetime = field(default_factory=_now)
    finished: datetime | None = None
    report_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def timeline(self) -> Path:
        return self.folder / TIMELINE


class JobStore:
    """Creates, runs, finds and expires jobs under ``root``."""

    def __init__(self, root: Path, engine: Engine, limits: Limits, owns_root: bool = False):
        self.root = root
        self.owns_root = owns_root
        self.engine = engine
        self.limits = limits
        self.jobs: dict[str, Job] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emolens-job")
        self._stop = threading.Event()

    def active(self) -> int:
        return sum(job.state in ("queued", "running") for job in self.jobs.values())

    def create(self, name: str, keypoints: bool) -> Job:
        """A new queued job with an empty folder, or 503 when ``limits.jobs`` are already active."""
        if self.active() >= self.limits.jobs:
            raise ApiError(503, f"busy: {self.limits.jobs} video jobs are queued or running; retry later",
                           {"Retry-After": "10"})
        job_id = uuid.uuid4().hex
        job = Job(id=job_id, folder=self.root / job_id, name=name or "upload", keypoints=keypoints)
        job.folder.mkdir(parents=True)
        return job

    def input_path(self, job: Job, filename: str) -> Path:
        """Where the upload goes: ``input`` plus the uploaded file's extension (which codecs may need)."""
        suffix = Path(filename).suffix.lower()
        return job.folder / ("input" + (suffix if suffix.isascii() and suffix[1:].isalnum() else ""))

    def start(self, job: Job, source: VideoSource) -> None:
        """Queue ``job`` to run over ``source`` (already opened and checked)."""
        job.frames_total = math.ceil(source.frame_count / source.every)
        self.jobs[job.id] = job
        self._executor.submit(self._run, job, source)

    def discard(self, job: Job) -> None:
        """Remove a job that never started (its upload was refused)."""
        shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self, job: Job, source: VideoSource) -> None:
        job.state = "running"
        options = self.engine.options
        tracker = FaceTracker(options.max_gap_s, options.tau_s)
        labels = self.engine.first.labels
        try:
            with source, CsvRecorder(job.timeline, labels, keypoints=job.keypoints) as recorder:
                for frame in source:
                    if self._stop.is_set():
                        raise EmolensError("the server stopped before the job finished")
                    if frame.t_s > self.limits.video_s:
                        raise EmolensError(f"video longer than the limit of {self.limits.video_s:.0f} s")
                    faces = tracker.update(self.engine.faces(frame.image), frame.t_s)
                    recorder.append(replace(frame, source=job.name), faces)
                    job.frames_done += 1
                    job.faces += len(faces)
            job.state = "done"
        except EmolensError as error:
            job.error, job.state = str(error), "failed"
        except Exception:  # a bug must fail this job, not the job thread
            log.exception("job %s failed", job.id)
            job.error, job.state = "internal error; the server log has the details", "failed"
        finally:
            job.finished = _now()

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r} (never created, or expired and deleted)")
        return job

    def expires(self, job: Job) -> datetime | None:
        return job.finished + timedelta(seconds=self.limits.job_ttl_s) if job.finished else None

    def report(self, job: Job) -> Path:
        """The job's HTML report, built on first request (blocking; call from a worker thread)."""
        from emolens.report import build_report

        with job.report_lock:
            html = job.folder / "report" / "report.html"
            if not html.is_file():
                html = build_report([job.timeline], job.folder / "report").html
            return html

    def sweep(self) -> int:
        """Delete the folders of jobs that ended more than ``job_ttl_s`` ago; returns how many."""
        now = _now()
        expired = [job for job in self.jobs.values() if job.finished and now >= self.expires(job)]
        for job in expired:
            del self.jobs[job.id]
            shutil.rmtree(job.folder, ignore_errors=True)
        return len(expired)

    def close(self) -> None:
        """Stop the running job and delete every job folder (and the root, when it was made for us)."""
        self._stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        for job in self.jobs.values():
            shutil.rmtree(job.folder, ignore_errors=True)
        self.jobs.clear()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
