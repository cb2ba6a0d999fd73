from dataclasses import replace

import pytest

from emolens.gui.preferences import PreferencesDialog
from emolens.gui.settings import Settings


@pytest.fixture
def dialog(qtbot):
    widget = PreferencesDialog(Settings(camera=1, tau_s=0.8, mirror=False))
    qtbot.addWidget(widget)
    return widget


def test_unchanged_form_gives_the_settings_back(dialog):
    assert dialog.settings() == Settings(camera=1, tau_s=0.8, mirror=False)


def test_edits_come_back_as_settings(dialog):
    dialog.resolution.setCurrentText("1280x720")
    dialog.device.setCurrentText("cpu")
    dialog.model.setCurrentText("accurate")
    dialog.max_faces.setValue(6)
    dialog.presets[0].setText("intro")
    dialog.folder.setText("/data/sessions")
    expected = replace(Settings(camera=1, tau_s=0.8, mirror=False), resolution="1280x720", device="cpu", max_faces=6,
                       model="accurate",
                       recording_folder="/data/sessions", marker_presets=("intro", *Settings().marker_presets[1:]))
    assert dialog.settings() == expected


def test_a_bad_resolution_is_refused(dialog, monkeypatch):
    warnings = []
    monkeypatch.setattr("emolens.gui.preferences.QMessageBox.warning", lambda *args: warnings.append(args[2]))
    dialog.resolution.setCurrentText("huge")
    dialog.accept()
    assert dialog.result() == 0 and "resolution" in warnings[0]


def test_the_model_choices_are_the_shipped_ones_and_a_card_given_for_this_run(qtbot):
    shipped = PreferencesDialog(Settings())
    given = PreferencesDialog(Settings(model="runs/mine/emotion.onnx"))
    for widget in (shipped, given):
        qtbot.addWidget(widget)
    assert [shipped.model.itemText(i) for i in range(shipped.model.count())] == ["fast", "accurate"]
    assert given.model.currentText() == "runs/mine/emotion.onnx" and given.settings().model == "runs/mine/emotion.onnx"
