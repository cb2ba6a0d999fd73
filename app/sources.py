"""Frame sources: a webcam, a video file, one image, or a folder of images.

Every source is an iterator of ``Frame`` (index, timestamp, BGR pixels) and a context
manager. Files are decoded ahead in a background thread (a small bounded queue), so decoding
overlaps with inference; a camera is read continuously and only its newest frame is kept,
so a slow consumer gets fresh frames instead of a growing backlog.

Example::

    with open_source("clip.mp4", every=2) as source:
        for frame in source:
            ...
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from emolens.errors import EmolensError
from emolens.images import IMAGE_SUFFIXES, read_image, to_bgr8
from emolens.quiet import captured_native_stderr
from emolens.types import Frame

_END = object()
_CAMERA_LOST_AFTER_S = 2.0


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
        skipped: unreadable items skipped so far (image folders).
    """

    name: str = ""
    fps: float = 0.0
    size_wh: tuple[int, int] = (0, 0)
    frame_count: int = 0
    every: int = 1
    live: bool = False
    independent: bool = False
    skipped: int = 0

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; safe to call twice."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_source(spec: str | int | Path, every: int = 1, size_wh: tuple[int, int] | None = None) -> FrameSource:
    """Open a camera (an integer index), a folder, an image file or a video file.

    Args:
        every: keep one frame in ``every`` (files only; cameras always deliver the newest).
        size_wh: resolution to ask a camera for (it may choose the nearest it supports).

    Raises:
        EmolensError: the source does not exist or cannot be read.
    """
    if every < 1:
        raise EmolensError(f"--every must be 1 or more, got {every}")
    text = str(spec)
    if text.isdigit():
        return CameraSource(int(text), size_wh)
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
    """One image, or every image of a folder in name order; unreadable ones are skipped and counted."""

    def __init__(self, path: Path, every: int = 1):
        self.name = str(path)
        self.independent = True
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not files:
                raise EmolensError(f"no images in folder {path} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            self._files = files[::every]
            self.frame_count = len(files)
        else:
            if read_image(path) is None:
                raise EmolensError(f"cannot read image {path}: not an image or corrupt")
            self._files = [path]
            self.frame_count = 1
        self.every = every

    def __iter__(self) -> Iterator[Frame]:
        for index, file in enumerate(self._files):
            image = read_image(file)
            if image is None or image.size == 0:
                self.skipped += 1
                continue
            image = to_bgr8(image)
            self.size_wh = (image.shape[1], image.shape[0])
            yield Frame(index=index, t_s=float(index), image=image, source=str(file))


class CameraSource(FrameSource):
    """A webcam; a thread reads continuously and keeps only the newest frame (latest wins).

    Timestamps are wall-clock seconds since the camera opened. If the camera stops
    delivering frames for two seconds (unplugged), iteration raises ``SourceLost``.
    """

    def __init__(self, index: int, size_wh: tuple[int, int] | None = None):
        self.name = f"camera {index}"
        self.live = True
        with captured_native_stderr():  # OpenCV logs its own warnings about a missing device
            self._capture = cv2.VideoCapture(index)
            if size_wh:
                self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size_wh[0])
                self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size_wh[1])
            ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok:
            self._capture.release()
            raise EmolensError(f"camera {index} not found or busy; try another index (0, 1, ...) "
                               f"or give a video file or image folder")
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS)) or 0.0
        self.size_wh = (first.shape[1], first.shape[0])
        self._started = time.monotonic()
        self._latest: tuple[int, float, np.ndarray] | None = (0, 0.0, first)
        self._condition = threading.Condition()
        self._stop = threading.Event()
        self._failed = False
        self._thread = threading.Thread(target=self._read, name="emolens-camera", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        index = 0
        last_ok = time.monotonic()
        while not self._stop.is_set():
            ok, image = self._capture.read()
            now = time.monotonic()
            if ok:
                index += 1
                last_ok = now
                with self._condition:
                    self._latest = (index, now - self._started, image)
                    self._condition.notify()
            elif now - last_ok > _CAMERA_LOST_AFTER_S:
                with self._condition:
                    self._failed = True
                    self._condition.notify()
                return
            else:
                time.sleep(0.01)

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
                raise SourceLost(f"{self.name} stopped delivering frames (unplugged or taken by another program)")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._capture.release()


def _drain(items: queue.Queue) -> None:
    try:
        while True:
            items.get_nowait()
    except queue.Empty:
        pass
