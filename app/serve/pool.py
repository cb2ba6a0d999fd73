"""Inference off the event loop: a pool of ``Models`` and a bounded admission queue.

Each worker thread owns nothing; it borrows one of ``workers`` sets of models (each with its own
detector and ONNX session, loaded once at start) for one frame and gives it back. Faces are
tracked by the caller's ``Session`` (a job's, a stream's), never here. Image
requests, stream frames and video jobs all borrow from the same pool, so a long video is
processed frame by frame between image requests instead of holding a worker for minutes.

Admission is counted on the event loop: at most ``limits.queue`` image requests are in the
service (uploading, waiting or running); one more is refused at once with 503 and
``Retry-After``, rather than queued without bound.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import TypeVar

import numpy as np

from emolens.options import AnalyzerOptions
from emolens.pipeline import Models, Session
from emolens.serve.errors import ApiError
from emolens.types import Faces, Frame

T = TypeVar("T")
RETRY_AFTER_S = 1


class ModelPool:
    """``workers`` sets of models, loaded by ``load()`` (in a thread, so ``/healthz`` answers meanwhile)."""

    def __init__(self, options: AnalyzerOptions, workers: int, queue_size: int):
        # One classifier thread per worker unless asked otherwise: ONNX Runtime's default pool (all cores,
        # spinning between calls) competes with the event loop and the other workers for the same cores.
        self.options = replace(options, threads=options.threads or 1)
        self.workers = workers
        self.queue_size = queue_size
        self.in_flight = 0
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emolens-infer")
        self._pool: queue.Queue[Models] = queue.Queue()
        self._models: list[Models] = []
        self.ready = threading.Event()
        self.error: str | None = None

    def load(self) -> None:
        """Load every set of models; on failure keep the one-line reason in ``error``."""
        from emolens.errors import EmolensError

        try:
            for _ in range(self.workers):
                models = Models(self.options, landmarkers=1)  # lent to one thread at a time
                self._models.append(models)
                self._pool.put(models)
        except EmolensError as error:
            self.error = str(error)
            return
        self.ready.set()

    @property
    def first(self) -> Models:
        """Models to read the card and provider from (never used for inference here)."""
        return self._models[0]

    @contextmanager
    def borrow(self) -> Iterator[Models]:
        """One set of models for the calling thread alone, returned to the pool afterwards."""
        models = self._pool.get()
        try:
            yield models
        finally:
            self._pool.put(models)

    def analyze(self, image: np.ndarray, session: Session, t_s: float) -> Faces:
        """One BGR frame through ``session`` (tracked; behaviour read when on), on borrowed models (blocking:
        call from a worker thread). An image that stands alone gets a fresh session: IDs 1..n, raw scores."""
        with self.borrow() as models:
            return session.analyze(models, Frame(0, t_s, image))

    async def run(self, function: Callable[..., T], *args) -> T:
        """``function(*args)`` on a worker thread, awaited without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    @asynccontextmanager
    async def admitted(self):
        """Hold one of ``queue_size`` places for a request, or raise 503 with ``Retry-After``."""
        if not self.ready.is_set():
            raise ApiError(503, self.error or "the model is still loading; retry shortly",
                           {"Retry-After": str(RETRY_AFTER_S)})
        if self.in_flight >= self.queue_size:
            raise ApiError(503, f"busy: {self.in_flight} requests in progress, the queue holds {self.queue_size}; "
                                f"retry after {RETRY_AFTER_S} s", {"Retry-After": str(RETRY_AFTER_S)})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        for models in self._models:
            models.close()
