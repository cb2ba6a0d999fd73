"""The service's settings: where it listens, who may call it, and how much it accepts.

Every limit has a default stated here (and in the README); ``emolens serve`` options override them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from emolens.errors import EmolensError, SettingError
from emolens.options import AnalyzerOptions

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
TOKEN_ENV = "EMOLENS_TOKEN"
MIN_TOKEN_CHARS = 16  # 64 bits of hex: what `openssl rand -hex 8` gives, the least a network bind accepts
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
        disk_bytes: most bytes the job folders hold at once, uploads in progress included; an upload
            that would pass it gets 507 (default 2 GiB).
        read_timeout_s: an upload that sends nothing for this long gets 408 and its connection is
            closed; so does one that, after this long, averages under ``upload_rate`` (default 30 s).
        upload_rate: the least average upload speed, in bytes per second (default 32 KiB/s).
        stream_idle_s: a stream that sends no frame for this long is closed (default 60 s).
    """

    image_bytes: int = 20 * 2**20
    video_bytes: int = 500 * 2**20
    pixels: int = 40_000_000
    video_s: float = 600.0
    queue: int = 32
    streams: int = 8
    jobs: int = 16
    job_ttl_s: float = 3600.0
    disk_bytes: int = 2 * 2**30
    read_timeout_s: float = 30.0
    upload_rate: int = 32 * 1024
    stream_idle_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("image_bytes", "video_bytes", "pixels", "video_s", "queue", "streams", "jobs", "job_ttl_s",
                     "disk_bytes", "read_timeout_s", "upload_rate", "stream_idle_s"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise EmolensError(f"serve limit {name} must be a positive number, got {getattr(self, name)}")


@dataclass(frozen=True)
class ServeConfig:
    """How to run the service.

    Attributes:
        host: address to bind; anything but localhost needs a ``token`` of ``MIN_TOKEN_CHARS`` or more.
        port: TCP port (0 = any free one).
        workers: inference threads, each with its own ``Models`` (classifier, detector) loaded at start.
        token: when set, every request except ``/healthz`` and the browser client's static files
            needs ``Authorization: Bearer <token>``.
        analyzer: model, device and detection settings, as for ``emolens analyze``.
        limits: see ``Limits``.
        jobs_dir: root of the per-job folders (default: a fresh folder in the system's temp dir).
        allowed_hosts: host names, besides the bound address and localhost's, that requests may name in
            their ``Host`` header (a wildcard bind with none given accepts any: its token guards it).
        allowed_origins: web origins (``https://app.example``) whose pages may call the service, besides
            its own pages.
        studies: study folders served to remote participants (``/panel/{name}``) and on the dashboard
            (``/studies/{name}``), each named by its folder.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = DEFAULT_WORKERS
    token: str | None = None
    analyzer: AnalyzerOptions = field(default_factory=AnalyzerOptions)
    limits: Limits = field(default_factory=Limits)
    jobs_dir: Path | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    studies: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SettingError(f"{{port}} must be 0-65535 (0: any free port), got {self.port}")
        if self.workers < 1:
            raise SettingError(f"{{workers}} must be 1 or more, got {self.workers}")
        if self.host not in LOCAL_HOSTS and not self.token:
            raise SettingError(f"binding to {self.host} exposes the service beyond this machine: give a token "
                               f"in the {TOKEN_ENV} environment variable or with {{token_file}}")
        if self.host not in LOCAL_HOSTS and len(self.token) < MIN_TOKEN_CHARS:
            raise EmolensError(f"binding to {self.host} needs a token of {MIN_TOKEN_CHARS} characters or more, "
                               f"this one has {len(self.token)}: make one with 'openssl rand -hex 16'")
        for host in self.allowed_hosts:
            if not is_host_name(host):
                raise SettingError(f"{{allow_host}} {host!r} is not a host name: give a name alone, no scheme, "
                                   f"port, path or spaces (app.example)")
        for origin in self.allowed_origins:
            if not is_origin(origin):
                raise SettingError(f"{{allow_origin}} {origin!r} is not a web origin: give scheme://host[:port], "
                                   f"e.g. https://app.example")

    def accepted_hosts(self) -> frozenset[str] | None:
        """The host names a request's ``Host`` header may carry; None for any (a wildcard bind with no
        ``allowed_hosts``). Checking them keeps a DNS-rebound web page from reaching a local service."""
        if self.host in WILDCARD_HOSTS and not self.allowed_hosts:
            return None
        named = {self.host} - WILDCARD_HOSTS
        return frozenset(name.lower() for name in LOCAL_HOSTS | named | set(self.allowed_hosts))


def hostname(netloc: str) -> str | None:
    """``example.org`` from ``example.org:8000``, ``::1`` from ``[::1]:8000`` (lower case); None when malformed."""
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


def _spaced(text: str) -> bool:
    return any(char.isspace() for char in text)


def is_host_name(text: str) -> bool:
    """Whether ``text`` is a host name or an IP address alone (``app.example``, ``fe80::1``), as the ``Host``
    rule compares them: no scheme, port, path or spaces."""
    return bool(text) and not _spaced(text) and hostname(f"[{text}]" if ":" in text else text) == text.lower()


def is_origin(text: str) -> bool:
    """Whether ``text`` is a web origin as browsers send it, ``http(s)://host[:port]`` (a trailing ``/`` allowed)."""
    try:
        parts = urlsplit(text)
        parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        return False
    return (parts.scheme.lower() in ("http", "https") and not _spaced(text) and not parts.username
            and hostname(parts.netloc) is not None and parts.path in ("", "/") and "?" not in text
            and "#" not in text)
