import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from emolens.gui.video_view import PRESENTER_SCALE, VideoView

from .helpers import LABELS, tracked

IMAGE = np.full((240, 320, 3), 90, np.uint8)


@pytest.fixture
def view(qtbot):
    widget = VideoView()
    widget.set_labels(LABELS)
    qtbot.addWidget(widget)
    widget.resize(640, 480)
    return widget


def test_boxes_scale_with_the_widget(view):
    view.show_frame(IMAGE, tracked((40, 20, 120, 100)), 0.0)
    assert view.face_rects()[0].getCoords() == pytest.approx((80, 40, 240, 200))
    view.resize(1280, 480)  # wider than the picture: centred, letterboxed at the sides
    assert view.picture_rect().getRect() == pytest.approx((320, 0, 640, 480))
    assert view.face_rects()[0].getCoords() == pytest.approx((400, 40, 560, 200))


def test_mirror_flips_boxes_not_ids(view):
    view.show_frame(IMAGE, tracked((40, 20, 120, 100)), 0.0)
    view.set_mirror(True)
    assert view.face_rects()[0].getCoords() == pytest.approx((400, 40, 560, 200))
    assert view.faces.face_id.tolist() == [1]


def test_labels_grow_with_the_window_and_in_presenter_mode(view):
    view.show_frame(IMAGE, tracked((40, 20, 120, 100)), 0.0)
    small = view.label_pixels()
    view.resize(1280, 960)
    large = view.label_pixels()
    view.set_presenter(True)
    assert small < large < view.label_pixels() == pytest.approx(large * PRESENTER_SCALE)


@pytest.mark.parametrize("count", [1, 8])
def test_paints_one_to_eight_faces(qtbot, view, count):
    boxes = [(10 + 75 * (i % 4), 10 + 110 * (i // 4), 70 + 75 * (i % 4), 90 + 110 * (i // 4)) for i in range(count)]
    view.show_frame(IMAGE, tracked(*boxes), 12.5)
    with qtbot.waitSignal(view.frame_painted) as painted:
        view.grab()
    assert painted.args == [12.5]


def test_clicking_a_face_selects_it(qtbot, view):
    view.show_frame(IMAGE, tracked((40, 20, 120, 100), (200, 20, 280, 100)), 0.0)
    with qtbot.waitSignal(view.face_clicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=view.face_rects()[1].center().toPoint())
    assert clicked.args == [2]
    assert not view.face_rects()[0].contains(QPointF(0, 0))


def two_by_two(astronaut) -> np.ndarray:
    """Four real faces, each filling its quarter of a 640x480 frame (a 2x2 video-call gallery, close up):
    no room for bars beside or below a face that does not cover the neighbour's."""
    import cv2

    face = cv2.resize(astronaut[60:200, 150:300], (320, 240))
    frame = np.empty((480, 640, 3), np.uint8)
    for row, column in ((0, 0), (0, 1), (1, 0), (1, 1)):
        frame[row * 240:(row + 1) * 240, column * 320:(column + 1) * 320] = face[:, ::-1] if column else face
    return frame


@pytest.mark.parametrize("size", [(640, 480), (960, 720)])
def test_bars_in_a_2x2_grid_cover_no_neighbour(qtbot, view, analyzer, astronaut, size):
    frame = two_by_two(astronaut)
    faces = analyzer.analyze(frame, t_s=0.0)
    assert len(faces) == 4
    view.resize(*size)
    view.show_frame(frame, faces, 0.0)
    view.grab()
    boxes = view.face_rects()
    assert len(view.bar_panels) == 4
    for index, panel in enumerate(view.bar_panels):
        assert view.picture_rect().contains(panel)
        assert not any(panel.intersects(box) for other, box in enumerate(boxes) if other != index)
        assert not any(panel.intersects(bars) for other, bars in enumerate(view.bar_panels) if other != index)


def test_labels_of_small_faces_are_smaller_but_legible(view):
    view.show_frame(IMAGE, tracked((40, 20, 120, 100)), 0.0)
    assert view.label_pixels(box_width=400) == view.label_pixels()
    assert 11 <= view.label_pixels(box_width=60) < view.label_pixels()
    assert view.label_pixels(box_width=10) == 11
