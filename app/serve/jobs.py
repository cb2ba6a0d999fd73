"""Video jobs: each in its own folder, run to the same CSV timeline as ``emolens analyze``.

A job folder holds ``input<ext>`` (the upload, deleted once the job ends unless the client asked
to keep it), ``timeline.csv`` and, once asked for, ``report/``; nothing is written anywhere else.
Folders are ``0700`` and files ``0600``: only the service's own user can read participants' faces.
Jobs run one at a time on their own thread, in upload order, independent of the client's
connection; each frame borrows a set of models from the pool, so image requests keep being
served between frames. A job's folder is deleted on ``DELETE``, ``limits.job_ttl_s`` after it
ends, and when the server stops.

Uploads in progress count against ``limits.jobs``, and every job's bytes (uploads as they arrive)
against ``limits.disk_bytes``. Each folder the service makes holds an owner file with its pid, so
a server that was killed (``kill -9``, power loss) leaves folders that the next start deletes;
folders without that file, or whose server still runs, are never touched.

The CSV matches ``emolens analyze`` row for row: the same tracker settings, ``CsvRecorder`` and
frame times; its ``source`` column holds the uploaded file's name rather than a server path.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from emolens.errors import EmolensError, SettingError
from emolens.pipeline import Session
from emolens.record import CsvRecorder
from emolens.serve.config import Limits
from emolens.serve.errors import ApiError
from emolens.serve.pool import ModelPool
from emolens.sources import VideoSource

log = logging.getLogger("emolens.serve")

TIMELINE = "timeline.csv"
OWNER = ".emolens-serve.pid"  # in every folder the service makes: the pid of the server that made it
TEMP_PREFIX = "emolens-jobs-"


def private_file(path: str, flags: int) -> int:
    """An ``open`` opener that creates files ``0600`` whatever the umask."""
    return os.open(path, flags, 0o600)


def _make_owned(folder: Path) -> None:
    folder.mkdir(mode=0o700, exist_ok=True)
    with open(folder / OWNER, "x", opener=private_file) as owner:
        owner.write(str(os.getpid()))


def _restrict(folder: Path) -> None:
    """Owner-only modes for everything under ``folder`` (``CsvRecorder`` and reports follow the umask)."""
    for path in folder.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def _size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (what vanishes meanwhile counts 0)."""
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            with suppress(OSError):
                total += os.stat(os.path.join(top, name)).st_size
    return total


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale(parent: Path, pattern: str) -> int:
    """Delete the folders matching ``pattern`` in ``parent`` that a server which no longer runs made
    (their owner file names a dead pid); returns how many."""
    removed = 0
    for folder in parent.glob(pattern):
        try:
            pid = int((folder / OWNER).read_text())
        except (OSError, ValueError):
            continue  # not ours, or not readable by us
        if not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _make_root(jobs_dir: Path) -> None:
    """Create ``jobs_dir`` ``0700`` (with its parents) unless it exists.

    Raises:
        SettingError: it is a file, or cannot be created.
    """
    try:
        jobs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise SettingError(f"{{jobs_dir}} {jobs_dir} is a file, not a folder") from None
    except OSError as error:
        raise SettingError(f"cannot make the {{jobs_dir}} folder {jobs_dir}: {error.strerror or error}") from None


def open_root(jobs_dir: Path | None) -> tuple[Path, bool]:
    """The folder for the job folders, after deleting what killed servers left there: ``jobs_dir``
    (created ``0700`` when missing) or a new folder in the temp dir; True when it is the latter."""
    if jobs_dir is None:
        stale = sweep_stale(Path(tempfile.gettempdir()), TEMP_PREFIX + "*")
        root, made = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX)), True
        _make_owned(root)
    else:
        _make_root(jobs_dir)
        stale = sweep_stale(jobs_dir, "*")
        root, made = jobs_dir, False
    if stale:
        log.warning("deleted %d job folder(s) left by a server that did not stop", stale)
    return root, made


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Job:
    """One video's analysis. Counters are written by the job thread and only read elsewhere."""

    id: str
    folder: Path
    name: str
    keypoints: bool = False
    keep_upload: bool = False
    upload: Path | None = None
    stored: int = 0  # bytes counted against limits.disk_bytes
    deleted: bool = False
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


class UploadSink:
    """A job's upload file that counts each write against ``limits.disk_bytes`` (507 beyond it)."""

    def __init__(self, store: JobStore, job: Job, path: Path):
        self.store, self.job = store, job
        self.file = open(path, "xb", opener=private_file)

    def write(self, data: bytes) -> None:
        limit = self.store.limits.disk_bytes
        if self.store.disk_used() + len(data) > limit:
            raise ApiError(507, f"no room for this upload: the job folders may hold {limit / 2**20:.0f} MiB "
                                f"and hold {self.store.disk_used() / 2**20:.0f} MiB; retry later or delete "
                                f"finished jobs", {"Retry-After": "10"})
        self.file.write(data)
        self.job.stored += len(data)

    def __enter__(self) -> UploadSink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.file.close()


class JobStore:
    """Creates, runs, finds and expires jobs under ``jobs_dir`` (see ``open_root``)."""

    def __init__(self, jobs_dir: Path | None, pool: ModelPool, limits: Limits):
        self.root, self.owns_root = open_root(jobs_dir)
        self.pool = pool
        self.limits = limits
        self.jobs: dict[str, Job] = {}
        self.uploading: dict[str, Job] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emolens-job")
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a job's end against its deletion

    def active(self) -> int:
        """Jobs uploading, queued or running."""
        return len(self.uploading) + sum(job.state in ("queued", "running") for job in self.jobs.values())

    def disk_used(self) -> int:
        return sum(job.stored for job in (*self.uploading.values(), *self.jobs.values()))

    def create(self, name: str, keypoints: bool, keep_upload: bool = False) -> Job:
        """A new job, uploading into its empty folder, or 503 when ``limits.jobs`` are already active."""
        if self.active() >= self.limits.jobs:
            raise ApiError(503, f"busy: {self.limits.jobs} video jobs are uploading, queued or running; "
                                f"retry later", {"Retry-After": "10"})
        job_id = uuid.uuid4().hex
        job = Job(id=job_id, folder=self.root / job_id, name=name or "upload", keypoints=keypoints,
                  keep_upload=keep_upload)
        _make_owned(job.folder)
        self.uploading[job_id] = job
        return job

    def sink(self, job: Job, path: Path) -> UploadSink:
        """A new ``0600`` file at ``path`` for ``job``'s upload, counted against ``limits.disk_bytes``."""
        return UploadSink(self, job, path)

    def input_path(self, job: Job, filename: str) -> Path:
        """Where the upload goes: ``input`` plus the uploaded file's extension (which codecs may need)."""
        suffix = Path(filename).suffix.lower()
        return job.folder / ("input" + (suffix if suffix.isascii() and suffix[1:].isalnum() else ""))

    def start(self, job: Job, source: VideoSource) -> None:
        """Queue ``job`` to run over ``source`` (its upload, already opened and checked)."""
        job.frames_total = math.ceil(source.frame_count / source.every)
        del self.uploading[job.id]
        self.jobs[job.id] = job
        self._executor.submit(self._run, job, source)

    def discard(self, job: Job) -> None:
        """Remove a job that never started (its upload was refused)."""
        self.uploading.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self, job: Job, source: VideoSource) -> None:
        job.state = "running"
        options = self.pool.options
        session = Session(options)
        labels = self.pool.first.labels
        try:
            with source, CsvRecorder(job.timeline, labels, keypoints=job.keypoints,
                                     behaviour=options.behaviour) as recorder:
                _restrict(job.folder)
                for frame in source:
                    if self._stop.is_set() or job.deleted:
                        raise EmolensError("the server stopped or the job was deleted before it finished")
                    if frame.t_s > self.limits.video_s:
                        raise EmolensError(f"video longer than the limit of {self.limits.video_s:.0f} s")
                    faces = self.pool.analyze(frame.image, session, frame.t_s)
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
            self._end(job)

    def _end(self, job: Job) -> None:
        """Drop the upload unless it is to be kept; delete the folder if the job was deleted meanwhile."""
        if job.upload and not job.keep_upload:
            job.upload.unlink(missing_ok=True)
        with self._lock:
            job.finished = _now()
            deleted = job.deleted
        if deleted:
            shutil.rmtree(job.folder, ignore_errors=True)
        else:
            job.stored = _size(job.folder)

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
                _restrict(job.folder)
                job.stored = _size(job.folder)
            return html

    def pop(self, job_id: str) -> Job:
        """Take a job off the list (404 if unknown); ``erase`` then deletes its folder."""
        job = self.get(job_id)
        del self.jobs[job_id]
        return job

    def erase(self, job: Job) -> None:
        """Delete a popped job's folder now, or, while it runs, stop it and let it delete its folder
        (blocking until any report build ends; call from a worker thread)."""
        with self._lock:
            job.deleted = True
            ended = job.finished is not None
        if ended:
            with job.report_lock:
                shutil.rmtree(job.folder, ignore_errors=True)

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
        for job in (*self.jobs.values(), *self.uploading.values()):
            shutil.rmtree(job.folder, ignore_errors=True)
        self.jobs.clear()
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
