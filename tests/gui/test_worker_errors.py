"""Whatever a library raises while a source plays, the window says what happened and "Try again" works:
real OpenCV and ONNX Runtime errors, raised mid-stream by a video source."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from PySide6.QtCore import Qt

from emolens import sources as sources_module
from emolens.card import ModelCard
from emolens.sources import VideoSource

TIMEOUT_MS = 30000


def opencv_fails() -> None:
    cv2.cvtColor(np.zeros((0, 0, 3), np.uint8), cv2.COLOR_BGR2GRAY)


def onnxruntime_fails() -> None:
    session = ort.InferenceSession(str(ModelCard.load().model_path), providers=["CPUExecutionProvider"])
    session.run(None, {session.get_inputs()[0].name: np.zeros((1, 1, 1, 1), np.float64)})


class BreaksMidway(VideoSource):
    """A video whose fourth frame runs ``fail`` (a real library call that raises), while ``fail`` is set."""

    fail = None

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index == 3 and BreaksMidway.fail is not None:
                BreaksMidway.fail()
            yield frame


@pytest.mark.parametrize(("fail", "names"), [(opencv_fails, ("cv2.error", "cvtColor")),
                                             (onnxruntime_fails, ("onnxruntime", "tensor(double)"))])
def test_a_library_error_mid_stream_ends_the_source_and_try_again_works(qtbot, make_window, clip, monkeypatch,
                                                                         fail, names):
    monkeypatch.setattr(BreaksMidway, "fail", staticmethod(fail))
    monkeypatch.setattr(sources_module, "VideoSource", BreaksMidway)
    window = make_window(realtime=False)
    with qtbot.waitSignal(window.source_ended, timeout=TIMEOUT_MS) as ended:
        window.open_source(clip)
    end = ended.args[0]
    assert end.failed and end.opened and all(name in end.message for name in names), end.message
    panel = window.message_panel
    assert panel.title.text() == "The source failed" and panel.retry_button.text() == "Try again"
    assert "could not start" not in panel.title.text() + panel.text.text()
    monkeypatch.setattr(BreaksMidway, "fail", None)
    with qtbot.waitSignal(window.source_ended, timeout=TIMEOUT_MS) as again:  # the worker still serves requests
        qtbot.mouseClick(panel.retry_button, Qt.MouseButton.LeftButton)
    assert not again.args[0].failed and window.worker.isRunning()
