"""The window's behaviour overlays on a real face: mesh, head axes, "looking away", AU bars, the menu."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from emolens.behaviour.signals import AU_NAMES
from emolens.gui.behaviour_overlay import AuBars, au_label
from emolens.gui.video_view import VideoView

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def read_face():
    """The astronaut photo and her faces with the behaviour fields, from the real pipeline."""
    from importlib import resources

    import cv2

    from emolens.options import AnalyzerOptions
    from emolens.pipeline import Analyzer

    image = cv2.imread(str(resources.files("emolens.assets") / "astronaut.jpg"))
    with Analyzer(AnalyzerOptions(behaviour=True)) as analyzer:
        return image, analyzer.analyze(image)


def rgb(view: VideoView) -> np.ndarray:
    image = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return pixels[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)


def count_colour(view: VideoView, colour: QColor, tolerance: int = 40) -> int:
    target = np.array([colour.red(), colour.green(), colour.blue()])
    return int((np.abs(rgb(view) - target).max(axis=2) < tolerance).sum())


@pytest.fixture
def view(qtbot, read_face):
    widget = VideoView()
    widget.set_labels(("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    qtbot.addWidget(widget)
    widget.resize(640, 640)
    image, faces = read_face
    widget.show_frame(image, faces, 0.0)
    return widget


def test_mesh_and_axes_are_drawn_only_when_switched_on(view):
    plain = rgb(view)
    view.behaviour_overlay.mesh = True
    with_mesh = rgb(view)
    changed = np.abs(with_mesh - plain).max(axis=2) > 30
    rows, columns = np.nonzero(changed)
    assert changed.sum() > 300  # 478 points, some overlapping
    face = view.face_rects()[0]  # the mesh lies on the face
    assert face.left() - 20 < columns.mean() < face.right() + 20 and face.top() - 20 < rows.mean() < face.bottom() + 20
    red_axis = QColor(229, 57, 53)
    before = count_colour(view, red_axis, 25)
    view.behaviour_overlay.axes = True
    assert count_colour(view, red_axis, 25) > before + 20


def test_a_face_looking_away_gets_a_mark(view, read_face):
    amber = QColor(255, 179, 0)
    attentive = count_colour(view, amber, 30)
    _, faces = read_face
    assert faces.attentive[0] == 1
    view.show_frame(read_face[0], faces.with_fields(attentive=np.zeros(1, np.float32)), 0.0)
    assert count_colour(view, amber, 30) > attentive + 500


def test_au_bars_show_the_selected_face(qtbot, read_face):
    bars = AuBars()
    qtbot.addWidget(bars)
    _, faces = read_face
    bars.show_face(faces, 1)
    assert bars._title.startswith("#1 attentive") and bars._aus.shape == (len(AU_NAMES),)
    bars.show_face(faces, 7)  # not in view
    assert bars._aus is None
    bars.show_face(faces.with_fields(aus=None, head_pose=None), None)
    assert bars._title == "behaviour off"


@pytest.mark.parametrize(("code", "label"), [("AU12", 'AU12 lip corner puller ("smile")'), ("AU01", "AU01 inner brow raiser"),
                                             ("AU23", "AU23 lip tightener"), ("AU04", 'AU04 brow lowerer ("frown")')])
def test_action_units_have_plain_names_beside_their_codes(code, label):
    assert au_label(code) == label


def test_the_behaviour_menu_turns_the_landmarker_on(qtbot, make_window, clip, tmp_path):
    window = make_window()
    titles = [action.text() for action in window.menuBar().actions()]
    assert "&Behaviour" in titles
    window.behaviour.mesh_action.setChecked(True)  # the mesh needs the landmarker: behaviour comes on
    assert window.behaviour.read_action.isChecked() and window.video_view.behaviour_overlay.mesh
    window.open_source(clip)
    qtbot.waitUntil(lambda: window.video_view.faces.aus is not None and len(window.video_view.faces) == 2,
                    timeout=TIMEOUT_MS)
    assert window.behaviour.dock.isVisibleTo(window)
    qtbot.waitUntil(lambda: window.behaviour.bars._aus is not None, timeout=TIMEOUT_MS)
    path = tmp_path / "session.csv"  # a recording made with behaviour on has its columns
    window.start_recording(path)
    qtbot.waitUntil(lambda: window.recording.active, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: path.exists() and len(path.read_text().splitlines()) > 1, timeout=TIMEOUT_MS)
    window.stop_recording()
    qtbot.waitUntil(lambda: not window.recording.active, timeout=TIMEOUT_MS)
    header = path.read_text().splitlines()[0].split(",")
    assert {"yaw", "attentive", "AU12", "bs_jawOpen"} <= set(header)
