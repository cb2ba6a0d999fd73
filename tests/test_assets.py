"""The bundled media are what assets/README.md says they are: the demo the window offers shows a reaction."""

from __future__ import annotations

import cv2

from emolens.gui.main_window import demo_clip


def frame_at(path: str, seconds: float):
    capture = cv2.VideoCapture(path)
    capture.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
    ok, image = capture.read()
    capture.release()
    assert ok, f"{path} has no frame at {seconds} s"
    return image


def test_the_demo_clip_goes_from_sad_to_a_laugh(analyzer):
    """A newcomer's first chart moves: sad in the first seconds, happy at the end (the clip's provenance is in
    assets/README.md)."""
    dominant = {}
    for seconds in (2.0, 16.0):
        faces = analyzer.analyze(frame_at(demo_clip(), seconds))
        assert len(faces) == 1
        dominant[seconds] = faces.labels[int(faces.probs[0].argmax())]
    assert dominant == {2.0: "sad", 16.0: "happy"}
