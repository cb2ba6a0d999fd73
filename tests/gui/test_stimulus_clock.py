"""The stimulus clock answers with the stimulus frame on screen when a camera frame was captured."""

from __future__ import annotations

import pytest

from emolens.gui.stimulus_clock import StimulusClock


def test_a_camera_frame_gets_the_video_frame_on_screen_when_it_was_captured_not_a_later_one():
    clock = StimulusClock()
    clock.show("ad_a", 0.00, at_s=10.00)
    clock.show("ad_a", 0.04, at_s=10.05)  # a frame shown late keeps its own position
    assert clock.at(9.99) is None  # before the stimulus
    assert clock.at(10.04) == ("ad_a", 0.00)  # captured before the second frame reached the screen
    assert clock.at(10.30) == ("ad_a", 0.04)  # a frame stays on screen until the next one
    clock.clear(at_s=10.40)
    assert clock.at(10.41) is None  # the stimulus left the screen
    assert clock.at(10.39) == ("ad_a", 0.04)  # a frame captured earlier but recorded later still gets it


def test_an_image_runs_on_from_when_it_was_shown():
    clock = StimulusClock()
    clock.show("poster", 0.0, at_s=5.0, running=True)
    name, position = clock.at(6.25)
    assert name == "poster" and position == pytest.approx(1.25)
