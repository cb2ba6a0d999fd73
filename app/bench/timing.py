"""Timing of repeated calls: the median and p95 every benchmark reports, and the CPU time they cost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def median_p95(samples) -> tuple[float, float]:
    """The median and 95th percentile of ``samples``, the two figures every benchmark reports."""
    return float(np.median(samples)), float(np.percentile(samples, 95))


def time_once(call: Callable[[], T]) -> tuple[T, float, float]:
    """``call()``'s result, and the wall and CPU (all threads of the process) milliseconds it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def time_calls(call: Callable[[], object], repeats: int = 300, warmup: int = 20) -> tuple[float, float, float]:
    """Median and p95 wall ms of ``call()`` over ``repeats`` calls after ``warmup`` unmeasured ones, and the
    median CPU ms of this process per call (which other work on the cores does not inflate)."""
    for _ in range(warmup):
        call()
    walls, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return (*median_p95(walls), float(np.median(cpu)))
