"""The service's settings: where it listens, who may call it, and how much it accepts.

Every limit has a default stated here (and in the README); ``emolens serve`` options override them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from emolens.errors import EmolensError
from emolens.options import AnalyzerOptions

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_ENV = "EMOLENS_TOKEN"
# Two inference workers keep both cores of a small machine busy (benchmarks/serve.md measures 1 and 2);
# more than two were not measured.
DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the service; beyond any of these it answers 413 or 503.

    Attributes:
        image_bytes: largest image upload (default 20 MiB).
        video_bytes: largest video upload (default 500 MiB).
        pixels: most pixels in an image or a video frame (default 40 megapixels, above 8K UHD),
            checked from the file's header before it is decoded.
        video_s: longest video, by its frame count and rate (default 600 s).
        queue: image requests admitted at once, running or waiting; one more gets 503 with
            ``Retry-After`` (default 32). Raising it absorbs bursts but lets latency and memory
            (``queue * image_bytes`` at worst) grow.
        streams: WebSocket streams open at once (default 8).
        jobs: video jobs queued or running at once (default 16).
        job_ttl_s: a finished job's folder is deleted this long after it ends (default 3600 s).
    """

    image_bytes: int = 20 * 2**20
    video_bytes: int = 500 * 2**20
    pixels: int = 40_000_000
    video_s: float = 600.0
    queue: int = 32
    streams: int = 8
    jobs: int = 16
    job_ttl_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("image_bytes", "video_bytes", "pixels", "video_s", "queue", "streams", "jobs", "job_ttl_s"):
            if getattr(self, name) <= 0:
                raise EmolensError(f"serve limit {name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class ServeConfig:
    """How to run the service.

    Attributes:
        host: address to bind; anything but localhost needs ``token``.
        port: TCP port (0 = any free one).
        workers: inference threads, each with its own ``Analyzer`` (model, detector) loaded at start.
        token: when set, every request except ``/healthz`` and the browser client's static files
            needs ``Authorization: Bearer <token>``.
        analyzer: model, device and detection settings, as for ``emolens analyze``.
        limits: see ``Limits``.
        jobs_dir: root of the per-job folders (default: a fresh folder in the system's temp dir).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = DEFAULT_WORKERS
    token: str | None = None
    analyzer: AnalyzerOptions = field(default_factory=AnalyzerOptions)
    limits: Limits = field(default_factory=Limits)
    jobs_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise EmolensError(f"--workers must be 1 or more, got {self.workers}")
        if self.host not in LOCAL_HOSTS and not self.token:
            raise EmolensError(f"binding to {self.host} exposes the service beyond this machine: give a token "
                               f"with --token or the {TOKEN_ENV} environment variable")

    def jobs_root(self) -> Path:
        """The folder that holds one subfolder per job (created)."""
        root = self.jobs_dir or Path(tempfile.mkdtemp(prefix="emolens-jobs-"))
        root.mkdir(parents=True, exist_ok=True)
        return root
