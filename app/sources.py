"""Frame sources: a webcam, a network stream, a video file, one image, or a folder of images.

Every source is an iterator of ``Frame`` (index, timestamp, BGR pixels) and a context
manager. Files are decoded ahead in a background thread (a small bounded queue), so decoding
overlaps with inference; a camera or a stream is read continuously and only its newest frame
is kept, so a slow consumer gets fresh frames instead of a growing backlog.

Network streams (``rtsp://``, ``rtsps://``, ``http://`` or ``https://`` MJPEG, as an IP camera
serves them) are opened by OpenCV's FFmpeg backend; when a stream drops, it is reopened
every second until ``reconnect_s`` passes without a frame. A password in the URL never
reaches messages or the CSV.

Images of a folder are independent scenes shown as a slideshow, one image per second:
``Frame.index`` is the image's position in the folder (``--every 2`` gives 0, 2, 4) and
``t_s`` equals it in seconds, so ``time_s`` and ``timestamp`` advance together.

Example::

    with open_source("clip.mp4", every=2) as source:
        for frame in source:
            ...
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from emolens.errors import EmolensError, SettingError
from emolens.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, read_image, to_bgr8
from emolens.native import captured_native_stderr
from emolens.types import Frame

_END = object()
_CAMERA_LOST_AFTER_S = 2.0
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_STREAM_TIMEOUT_MS = 5000  # to open a stream, and to wait for its next frame


class SourceLost(EmolensError):
    """A live source (camera) stopped delivering frames mid-stream."""


class FrameSource:
    """Base class: iterate to get frames; ``close()`` (or ``with``) releases the device or file.

    Attributes:
        name: what the user gave (path or camera index), for messages and the CSV.
        fps: nominal frame rate (0 when unknown, e.g. image folders).
        size_wh: frame size in pixels, once known.
        live: True for cameras (wall-clock time, frames may be dropped).
        independent: True when frames are unrelated images (no tracking across them).
        frame_count: frames (or images) in the source before ``every`` thins them; 0 if unknown.
        every: one frame in ``every`` is delivered.
        skipped_files: paths of the unreadable items skipped so far (image folders), in the order met.
    """

    name: str = ""
    fps: float = 0.0
    size_wh: tuple[int, int] = (0, 0)
    frame_count: int = 0
    every: int = 1
    live: bool = False
    independent: bool = False
    skipped_files: tuple[str, ...] = ()

    @property
    def skipped(self) -> int:
        """How many unreadable items were skipped so far."""
        return len(self.skipped_files)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def check_every(every: int) -> None:
    """Refuse a frame step under 1 (``every``: one frame in N).

    Raises:
        SettingError: ``every`` is under 1.
    """
    if every < 1:
        raise SettingError(f"{{every}} must be 1 or more, got {every}")


def open_source(spec: str | int | Path, every: int = 1, size_wh: tuple[int, int] | None = None) -> FrameSource:
    """Open a camera (an integer index), a stream URL, a folder, an image file or a video file.

    Args:
        every: keep one frame in ``every`` (files only; cameras and streams deliver the newest).
        size_wh: resolution to ask a camera for (it may choose the nearest it supports).

    Raises:
        EmolensError: the source does not exist or cannot be read.
    """
    check_every(every)
    text = str(spec)
    if text.isdigit():
        return CameraSource(int(text), size_wh)
    if is_stream_url(text):
        return StreamSource(text)
    path = Path(text)
    if not path.exists():
        raise EmolensError(f"input not found: {path}")
    if path.is_dir():
        return FolderSource(path, every)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return FolderSource(path, every)
    return VideoSource(path, every)


class VideoSource(FrameSource):
    """Frames of a video file with their media time; decoded ahead in a thread."""

    def __init__(self, path: Path, every: int = 1, queue_size: int = 8):
        self.name = str(path)
        self.every = every
        self._capture = cv2.VideoCapture(str(path))
        ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok:
            self._capture.release()
            raise EmolensError(f"cannot read video {path}: not a video, corrupt, or a codec OpenCV lacks")
        self._first = first
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS)) or 0.0
        self.frame_count = max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        self.size_wh = (first.shape[1], first.shape[0])
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise EmolensError(f"{self.name} is already being read; open it again to restart")
        self._thread = threading.Thread(target=self._decode, name="emolens-decode", daemon=True)
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item

    def _decode(self) -> None:
        index = 0
        image = self._first
        try:
            while image is not None and not self._stop.is_set():
                t_s = index / self.fps if self.fps else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                self._put(Frame(index=index, t_s=t_s, image=image, source=self.name))
                for _ in range(self.every - 1):  # grab() skips without decoding to pixels
                    index += 1
                    if not self._capture.grab():
                        return
                index += 1
                ok, image = self._capture.read()
                if not ok:
                    image = None
        finally:
            self._put(_END, force=True)

    def _put(self, item, force: bool = False) -> None:
        """Block until the consumer takes ``item``; once closing, drop frames (``force``: the end mark
        still goes in, replacing whatever the closed consumer left)."""
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    if not force:
                        return
                    _drain(self._queue)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            _drain(self._queue)
            self._thread.join(timeout=5)
        self._capture.release()


class FolderSource(FrameSource):
    """One image, or every image of a folder in name order; unreadable ones (larger than ``MAX_IMAGE_PIXELS``
    too) are skipped and counted.

    Each image is its own scene (``independent``): ``index`` is its position in the folder and
    ``t_s`` the same number in seconds (a slideshow of one image per second).
    """

    def __init__(self, path: Path, every: int = 1):
        self.name = str(path)
        self.independent = True
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise EmolensError(f"no images in folder {path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            self._files = list(enumerate(files))[::every]
            self.frame_count = len(files)
        else:
            if read_image(path) is None:
                raise EmolensError(f"cannot read image {path}: not an image, corrupt, or over "
                                   f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
            self._files = [(0, path)]
            self.frame_count = 1
        self.every = every

    def __iter__(self) -> Iterator[Frame]:
        for index, file in self._files:
            image = read_image(file)
            if image is None or image.size == 0:
                self.skipped_files += (str(file),)
                continue
            image = to_bgr8(image)
            self.size_wh = (image.shape[1], image.shape[0])
            yield Frame(index=index, t_s=float(index), image=image, source=str(file), origin=self.name)


class _LiveSource(FrameSource):
    """A camera or stream: a thread reads continuously and keeps only the newest frame (latest wins).

    Timestamps are wall-clock seconds since the source opened; ``index`` counts the frames
    read. When reads fail for ``lost_after_s`` seconds, ``_recover()`` may reopen the source;
    if it cannot, iteration raises ``SourceLost`` with ``lost_message``.
    """

    live = True
    lost_after_s = _CAMERA_LOST_AFTER_S
    lost_message = "stopped delivering frames"

    def _begin(self, capture: cv2.VideoCapture, first: np.ndarray) -> None:
        """Start reading ``capture``, whose first frame was ``first``."""
        self._capture = capture
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 0.0
        self.size_wh = (first.shape[1], first.shape[0])
        self._started = time.monotonic()
        self._index = 0
        self._latest: tuple[int, float, np.ndarray] | None = (0, 0.0, first)
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._read, name="emolens-live", daemon=True)
        self._thread.start()

    def _recover(self) -> bool:
        """Try to get the source back after a failure; True when frames flow again."""
        return False

    def _deliver(self, image: np.ndarray) -> None:
        self._index += 1
        with self._condition:
            self._latest = (self._index, time.monotonic() - self._started, image)
            self._condition.notify()

    def _read(self) -> None:
        last_ok = time.monotonic()
        try:
            while not self._stop.is_set():
                ok, image = self._capture.read()
                now = time.monotonic()
                if ok:
                    last_ok = now
                    self._deliver(image)
                elif now - last_ok >= self.lost_after_s:
                    if not self._recover():
                        with self._condition:
                            self._failed = True
                            self._condition.notify()
                        return
                    last_ok = time.monotonic()
                else:
                    time.sleep(0.01)
        finally:
            self._capture.release()  # here, not in close(): a read may still be running when close() gives up

    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            with self._condition:
                while self._latest is None and not self._failed and not self._stop.is_set():
                    self._condition.wait(timeout=0.1)
                latest, self._latest = self._latest, None
                failed = self._failed
            if latest is not None:
                index, t_s, image = latest
                yield Frame(index=index, t_s=t_s, image=image, source=self.name)
            elif failed:
                raise SourceLost(f"{self.name} {self.lost_message}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=_STREAM_TIMEOUT_MS / 1000 + 1)


class CameraSource(_LiveSource):
    """A webcam. If it stops delivering frames for two seconds (unplugged), iteration raises ``SourceLost``."""

    lost_message = "stopped delivering frames (unplugged or taken by another program)"

    def __init__(self, index: int, size_wh: tuple[int, int] | None = None):
        self.name = f"camera {index}"
        with captured_native_stderr():  # OpenCV logs its own warnings about a missing device
            capture = cv2.VideoCapture(index)
            if size_wh:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, size_wh[0])
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size_wh[1])
            ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            capture.release()
            raise EmolensError(f"camera {index} not found or busy; try another index (0, 1, ...) "
                               f"or give a video file or image folder")
        self._begin(capture, first)


def is_stream_url(text: str) -> bool:
    """True for the network stream URLs ``open_source`` accepts (rtsp, rtsps, http, https)."""
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text)) and urlsplit(text).scheme.lower() in STREAM_SCHEMES


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``, fit for messages and the CSV."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _open_stream(url: str) -> tuple[cv2.VideoCapture | None, np.ndarray | None]:
    """An open FFmpeg capture of ``url`` and its first frame, or (None, None) within the time-out."""
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS,
                                                     cv2.CAP_PROP_READ_TIMEOUT_MSEC, _STREAM_TIMEOUT_MS])
    ok, first = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        return None, None
    return capture, first


class StreamSource(_LiveSource):
    """A network stream (an IP camera's RTSP or HTTP MJPEG), reopened when it drops.

    Args:
        url: ``rtsp://``, ``rtsps://``, ``http://`` or ``https://``; credentials may be in it.
        reconnect_s: after a drop, keep reopening (once a second) for this long before
            iteration raises ``SourceLost``.

    Attributes:
        reconnects: how many times the stream was reopened after a drop.
    """

    lost_after_s = 0.0  # a failed read of a stream is a closed connection or a time-out: reopen at once
    lost_message = "stopped: it dropped and could not be reopened"

    def __init__(self, url: str, reconnect_s: float = 30.0):
        self.name = redacted(url)
        self._url = url
        self.reconnect_s = reconnect_s
        self.reconnects = 0
        with captured_native_stderr():  # FFmpeg's own complaint about a refused connection
            capture, first = _open_stream(url)
        if capture is None:
            raise EmolensError(f"cannot open stream {self.name}: no frame within {_STREAM_TIMEOUT_MS // 1000} s "
                               f"(wrong address, the camera is off, or a format FFmpeg cannot read)")
        self._begin(capture, first)

    def _recover(self) -> bool:
        deadline = time.monotonic() + self.reconnect_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._capture.release()
            capture, first = _open_stream(self._url)
            if capture is not None:
                self._capture = capture
                self.reconnects += 1
                self._deliver(first)
                return True
            self._stop.wait(1.0)
        return False


def _drain(items: queue.Queue, timeout_s: float = 1.0) -> None:
    """Empty ``items`` and wake a producer waiting for room.

    Gives up when the queue's lock stays taken: a Ctrl+C can leave it held by the ``get`` it
    interrupted (Python's locks are not safe against asynchronous exceptions), and waiting on it
    would hang the interrupted run's exit. ``Queue.mutex``, ``queue`` and ``not_full`` are the
    attributes ``queue.Queue`` keeps for this.
    """
    if not items.mutex.acquire(timeout=timeout_s):
        return
    try:
        items.queue.clear()
        items.not_full.notify_all()
    finally:
        items.mutex.release()
