"""``Analyzer.run`` with detection on its own thread (``overlap``): the same results, in frame order."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from emolens.bench.media import DEMO
from emolens.options import AnalyzerOptions
from emolens.pipeline import Analyzer, Models
from emolens.sources import FrameSource, open_source
from emolens.types import Frame


@pytest.fixture(scope="module")
def models():
    shared = Models()
    yield shared
    shared.close()


def detect_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("emolens-detect")]


@pytest.mark.parametrize("detect", ["tracked", "full"])
def test_overlapped_stages_give_the_serial_results_in_frame_order(models, detect):
    runs = {}
    for overlap in (False, True):
        with Analyzer(AnalyzerOptions(detect=detect), models) as analyzer, open_source(DEMO) as source:
            runs[overlap] = list(analyzer.run(source, overlap=overlap))
    serial, overlapped = runs[False], runs[True]
    assert [r.frame.index for r in overlapped] == list(range(len(serial))) == [r.frame.index for r in serial]
    for one, other in zip(serial, overlapped):
        assert one.faces.full_search == other.faces.full_search
        np.testing.assert_array_equal(one.faces.xyxy, other.faces.xyxy)
        np.testing.assert_array_equal(one.faces.face_id, other.faces.face_id)
        np.testing.assert_allclose(one.faces.probs, other.faces.probs, atol=1e-6)
    assert {"decode", "detect", "detect_wait", "crop", "classify", "track"} <= set(overlapped[0].timings_ms)


def test_a_consumer_that_stops_early_leaves_no_detection_running(models):
    with Analyzer(AnalyzerOptions(), models) as analyzer, open_source(DEMO) as source:
        results = analyzer.run(source)
        first = [next(results).frame.index for _ in range(3)]
        assert detect_threads()
        results.close()
    assert first == [0, 1, 2]
    assert not [thread for thread in detect_threads() if thread.is_alive()]


class _BrokenAfter(FrameSource):
    """Real frames of the demo, then a frame that is no image (the detector raises on it)."""

    independent = False

    def __init__(self, frames: list[Frame]):
        self.frames = frames

    def __iter__(self):
        yield from self.frames
        yield Frame(len(self.frames), len(self.frames) / 20, np.zeros((4, 4), np.float64))


def test_a_detection_error_reaches_the_caller_after_the_frames_before_it(models):
    with open_source(DEMO) as source:
        frames = [frame for frame, _ in zip(source, range(5))]
    got = []
    with Analyzer(AnalyzerOptions(detect="full"), models) as analyzer:
        with pytest.raises(cv2.error):
            for result in analyzer.run(_BrokenAfter(frames)):
                got.append(result.frame.index)
    assert got == [0, 1, 2, 3, 4]
    assert not [thread for thread in detect_threads() if thread.is_alive()]


def test_loading_the_models_turns_opencvs_thread_pool_off(models):
    """OpenCV's per-frame work here is small; its own pool on top of the pipeline's threads cost frames per CPU
    second (docs/speed.md), so loading the models leaves it one thread."""
    assert cv2.getNumThreads() == 1
