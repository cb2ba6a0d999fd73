import numpy as np
import pytest

from emolens.gui.timeline_chart import TimelineChart
from emolens.types import Faces

from .helpers import LABELS, tracked


@pytest.fixture
def chart(qtbot):
    widget = TimelineChart(window_s=60.0)
    widget.set_labels(LABELS)
    qtbot.addWidget(widget)
    return widget


def test_keeps_only_the_last_window(chart):
    for second in range(90):
        chart.add(float(second), tracked((0, 0, 10, 10)))
    times, scores = chart.series(1)
    assert times[0] == 29.0 and times[-1] == 89.0
    assert scores.shape == (61, len(LABELS))


def test_mean_over_the_faces_in_view(chart):
    faces = tracked((0, 0, 10, 10), (20, 0, 30, 10), top=0)
    smoothed = faces.smoothed.copy()
    smoothed[1] = np.eye(len(LABELS), dtype=np.float32)[6]
    chart.add(0.0, faces.with_fields(smoothed=smoothed))
    chart.add(0.1, Faces.empty())
    times, mean = chart.series(None)
    assert times.tolist() == [0.0]  # a frame without faces adds no mean point
    np.testing.assert_allclose(mean[0], smoothed.mean(axis=0))
    assert chart.face_ids() == [1, 2]


def test_faces_that_left_the_window_are_forgotten(chart):
    chart.add(0.0, tracked((0, 0, 10, 10), ids=[7]))
    chart.add(61.0, tracked((0, 0, 10, 10), ids=[8]))
    assert chart.face_ids() == [8]


def test_a_new_source_starts_over(chart):
    chart.add(30.0, tracked((0, 0, 10, 10)))
    chart.add_marker("ad starts")
    chart.add(0.0, tracked((0, 0, 10, 10), ids=[4]))
    assert chart.face_ids() == [4] and chart.markers() == []


def test_markers_sit_at_the_newest_time_and_scroll_out(chart):
    chart.add(5.0, tracked((0, 0, 10, 10)))
    chart.add_marker("laugh")
    assert chart.markers() == [(5.0, "laugh")]
    chart.add(70.0, tracked((0, 0, 10, 10)))
    assert chart.markers() == []


def test_paints_every_selection(chart):
    for step in range(30):
        chart.add(step * 0.5 + (5.0 if step > 20 else 0.0), tracked((0, 0, 10, 10), (20, 0, 30, 10)))
    chart.add_marker("end")
    chart.resize(400, 240)
    for face_id in (None, 1, 2, 99):
        chart.select(face_id)
        assert not chart.grab().isNull()


def test_marker_texts_close_together_never_overlap(chart):
    chart.resize(400, 240)
    for step in range(40):
        chart.add(step * 0.25, tracked((0, 0, 10, 10)))
        if step % 4 == 0:  # a marker a second: far closer than their texts are wide
            chart.add_marker(f"marker number {step // 4}")
    chart.grab()
    labels = chart.marker_labels
    shown = [text for text, _ in labels]
    assert {"marker number 9", "marker number 8", "marker number 7"} <= set(shown)  # the newest always
    assert len(shown) >= 6
    for index, (_, place) in enumerate(labels):
        assert all(not place.intersects(other) for _, other in labels[index + 1:])
        assert chart.rect().contains(place.toRect())
