import threading
import time

import numpy as np
import pytest
from PySide6.QtTest import QSignalSpy

from emolens.gui.worker import FrameRate, OpenSource, PipelineWorker, _Playback
from emolens.options import AnalyzerOptions
from emolens.sources import FrameSource
from emolens.types import Frame


class Ticks(FrameSource):
    """``count`` tiny frames of a ``fps`` video, available at once."""

    def __init__(self, count: int, fps: float, independent: bool = False):
        self.name, self.fps, self.independent = "ticks", fps, independent
        self._count = count

    def __iter__(self):
        for index in range(self._count):
            yield Frame(index, index / self.fps, np.zeros((2, 2, 3), np.uint8), self.name)


def consume(playback: _Playback, seconds_per_frame: float) -> list[int]:
    shown = []
    for frame in playback:
        shown.append(frame.index)
        time.sleep(seconds_per_frame)  # stands in for inference slower than the video
    return shown


def test_real_time_playback_skips_late_frames():
    started = time.perf_counter()
    shown = consume(_Playback(Ticks(50, fps=50), realtime=True, interrupt=threading.Event()), 0.06)
    elapsed = time.perf_counter() - started
    assert 10 <= len(shown) <= 25, shown  # about one frame per 60 ms of a one-second video
    assert shown == sorted(shown) and shown[-1] >= 45
    assert elapsed < 1.5


@pytest.mark.parametrize(("source", "realtime"), [(Ticks(20, fps=50), False), (Ticks(5, fps=50, independent=True), True)])
def test_every_frame_when_not_real_time_or_for_image_folders(source, realtime):
    assert consume(_Playback(source, realtime, threading.Event()), 0.06) == list(range(source._count))


def test_a_request_cuts_the_wait_for_a_frame_short():
    interrupt = threading.Event()
    frames = iter(_Playback(Ticks(3, fps=0.5), realtime=True, interrupt=interrupt))
    next(frames)
    interrupt.set()
    started = time.perf_counter()
    assert next(frames).index == 1
    assert time.perf_counter() - started < 0.5  # instead of two seconds


def test_only_the_newest_result_is_kept(qtbot, short_clip):
    worker = PipelineWorker(AnalyzerOptions(), realtime=False)
    ready = QSignalSpy(worker.result_ready)
    worker.start()
    try:
        with qtbot.waitSignal(worker.source_ended, timeout=30000) as ended:
            worker.request(OpenSource(short_clip))
        assert not ended.args[0].failed
        update = worker.take()
        assert ready.count() == 1  # nobody took a result: one signal, however many frames
        assert update.processed == 15 and update.result.frame.index == 14
        assert len(update.result.faces) == 2
        assert worker.take() is None
    finally:
        worker.stop()
    assert worker.isFinished()


def test_the_frame_rate_is_not_shown_before_a_warm_up_and_never_from_a_first_sample():
    rate = FrameRate()
    # A first interval of 1 ms (806 fps, as a new user saw), then frames every 50 ms (20 fps).
    times = [0.0, 0.001, *(0.001 + 0.05 * step for step in range(1, 40))]
    shown = [rate.tick(now) for now in times]
    assert shown[:9] == [0.0] * 9  # "…" in the status bar
    assert all(10 < fps < 25 for fps in shown[9:])
    assert shown[-1] == pytest.approx(20, rel=0.05)
