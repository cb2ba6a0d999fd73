import numpy as np
import pytest

from emolens.gui.drawing import emotion_colors
from emolens.gui.timeline_chart import TimelineChart
from emolens.types import Faces

from .helpers import LABELS, tracked


@pytest.fixture
def chart(qtbot):
    widget = TimelineChart(window_s=60.0)
    widget.set_labels(LABELS)
    qtbot.addWidget(widget)
    return widget


def test_keeps_only_the_last_quarter_hour(chart):
    for second in range(1000):
        chart.add(float(second), tracked((0, 0, 10, 10)))
    times, scores = chart.series(1)
    assert times[0] == 99.0 and times[-1] == 999.0
    assert scores.shape == (901, len(LABELS))


def happy_columns(chart) -> np.ndarray:
    """The x of every pixel column the "happy" line (0.7 in ``tracked``) is painted in."""
    image = chart.grab().toImage()
    color = emotion_colors(LABELS)[3]
    pixels = np.array([[image.pixelColor(x, y).rgb() for x in range(image.width())]
                       for y in range(image.height())])
    return np.flatnonzero((pixels == color.rgb()).any(axis=0))


def test_a_short_session_fills_the_chart(chart):
    """20 s into a session, the chart spans those 20 s, not a sliver at the right of 60."""
    chart.resize(400, 240)
    for step in range(201):
        chart.add(step * 0.1, tracked((0, 0, 10, 10)))
    assert chart.shown_span_s() == pytest.approx(20.0)
    columns = happy_columns(chart)
    assert columns.min() < 0.2 * chart.width() and columns.max() > 0.8 * chart.width()


@pytest.mark.parametrize(("span_s", "shown_s"), [(60.0, 60.0), (300.0, 300.0), (900.0, 600.0), (None, 600.0)])
def test_the_span_can_be_widened_to_the_whole_session(chart, span_s, shown_s):
    for second in range(601):
        chart.add(float(second), tracked((0, 0, 10, 10)))
    chart.set_span(span_s)
    assert chart.shown_span_s() == shown_s
    chart.resize(400, 240)
    columns = happy_columns(chart)
    assert columns.min() < 0.2 * chart.width()  # the points kept reach back to the span's start


def test_the_whole_session_keeps_every_point(chart):
    chart.set_span(None)
    for second in range(1200):
        chart.add(float(second), tracked((0, 0, 10, 10)))
    assert len(chart.series(1)[0]) == 1200 and chart.shown_span_s() == 1199.0


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
    chart.add(901.0, tracked((0, 0, 10, 10), ids=[8]))
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
    chart.add(910.0, tracked((0, 0, 10, 10)))
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
