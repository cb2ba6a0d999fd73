"""The preferences dialog: every persisted setting in one form, returned as a new ``Settings``.

Example::

    dialog = PreferencesDialog(window.settings, window)
    if dialog.exec():
        window.apply_settings(dialog.settings())
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from emolens.card import MODEL_NAMES
from emolens.gui.settings import SAVE_VIDEO_TEXT, SAVE_VIDEO_TIP, Settings, default_recording_folder
from emolens.gui.side_panel import smoothing_box
from emolens.options import DETECTOR_MODELS, DEVICES

_RESOLUTIONS = ("", "640x480", "1280x720", "1920x1080")
MODEL_TIP = ("fast: the default, for live frame rates; accurate: two networks averaged, fewer mistakes for about "
             "three times the classifier's time per face (docs/model.md)")


class PreferencesDialog(QDialog):
    """Edits a copy of ``settings``; ``settings()`` returns the edited one (or raises ValueError)."""

    def __init__(self, settings: Settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Emolens preferences")
        self._original = settings
        self.camera = QSpinBox()
        self.camera.setRange(0, 63)
        self.camera.setValue(settings.camera)
        self.resolution = QComboBox()
        self.resolution.setEditable(True)
        self.resolution.addItems(list(_RESOLUTIONS))
        self.resolution.lineEdit().setPlaceholderText("camera default")
        self.resolution.setCurrentText(settings.resolution)
        self.model = QComboBox()
        self.model.addItems([*MODEL_NAMES, *([] if settings.model in MODEL_NAMES else [settings.model])])
        self.model.setCurrentText(settings.model)
        self.model.setToolTip(MODEL_TIP)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device)
        self.detector = QComboBox()
        self.detector.addItems(list(DETECTOR_MODELS))
        self.detector.setCurrentText(settings.detector)
        self.detector.setToolTip("short: faces near the camera, fastest; full: small, distant faces too")
        self.min_confidence = QDoubleSpinBox()
        self.min_confidence.setRange(0.05, 0.99)
        self.min_confidence.setSingleStep(0.05)
        self.min_confidence.setValue(settings.min_confidence)
        self.max_faces = QSpinBox()
        self.max_faces.setRange(0, 64)
        self.max_faces.setSpecialValueText("no limit")
        self.max_faces.setValue(settings.max_faces)
        self.tau_s = smoothing_box()
        self.tau_s.setValue(settings.tau_s)
        self.mirror = QCheckBox("mirror the camera picture")
        self.mirror.setChecked(settings.mirror)
        self.save_video = QCheckBox(SAVE_VIDEO_TEXT.replace("&", ""))
        self.save_video.setChecked(settings.save_video)
        self.save_video.setToolTip(SAVE_VIDEO_TIP)
        self.folder = QLineEdit(settings.recording_folder)
        self.folder.setPlaceholderText(str(default_recording_folder()))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._choose_folder)
        folder = QHBoxLayout()
        folder.addWidget(self.folder, stretch=1)
        folder.addWidget(browse)
        self.presets = [QLineEdit(text) for text in settings.marker_presets]
        presets = QGridLayout()
        for index, edit in enumerate(self.presets):
            edit.setMaxLength(40)
            edit.setPlaceholderText(f"key {index + 1}")
            presets.addWidget(edit, index // 3, index % 3)

        form = QFormLayout(self)
        form.addRow("Camera index", self.camera)
        form.addRow("Camera resolution", self.resolution)
        form.addRow("Emotion model", self.model)
        form.addRow("Device", self.device)
        form.addRow("Face detector", self.detector)
        form.addRow("Minimum detection confidence", self.min_confidence)
        form.addRow("Maximum faces", self.max_faces)
        form.addRow("Score smoothing", self.tau_s)
        form.addRow("", self.mirror)
        form.addRow("Recording folder", folder)
        form.addRow("", self.save_video)
        form.addRow("Marker presets (keys 1-9)", presets)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def settings(self) -> Settings:
        """The edited settings. Raises ValueError for a value out of range (e.g. resolution ``12x``)."""
        return replace(self._original, camera=self.camera.value(), resolution=self.resolution.currentText().strip(),
                       model=self.model.currentText(), device=self.device.currentText(),
                       detector=self.detector.currentText(),
                       min_confidence=round(self.min_confidence.value(), 2), max_faces=self.max_faces.value(),
                       tau_s=round(self.tau_s.value(), 1), mirror=self.mirror.isChecked(),
                       recording_folder=self.folder.text().strip(), save_video=self.save_video.isChecked(),
                       marker_presets=tuple(edit.text().strip() for edit in self.presets))

    def accept(self) -> None:
        try:
            self.settings()
        except ValueError as error:
            QMessageBox.warning(self, "Emolens preferences", str(error))
            return
        super().accept()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Recording folder", self.folder.text() or
                                                  str(default_recording_folder()))
        if folder:
            self.folder.setText(folder)
