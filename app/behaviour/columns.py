"""The behaviour columns of the CSV timeline (``--behaviour``, ``--landmarks``).

Columns, after the emotion and keypoint columns, in this order (an empty cell: the
landmarker could not read that face)::

    yaw, pitch, roll          head pose in degrees (signs: emolens.behaviour.signals)
    eye_open_r, eye_open_l    openness 0..1 of the person's right and left eye
    blink                     1 on the frame where a blink ends, else 0
    attentive                 1 when the head points at the camera (the attention cone), else 0
    expressiveness            0..1, the strongest expressive action unit
    AU01 ... AU45             action-unit intensities 0..1 (emolens.behaviour.signals.AU_TABLE)
    bs_browDownLeft ...       the 52 MediaPipe blendshape scores 0..1
    [lm0_x, lm0_y ... lm477_y]   with landmarks=True: the 478 face-mesh points in pixels

Example::

    columns = behaviour_columns(landmarks=False)
    cells = behaviour_cells(faces, row, landmarks=False)     # strings, same length
"""

from __future__ import annotations

import math

from emolens.behaviour.signals import AU_NAMES, BLENDSHAPE_NAMES, N_LANDMARKS
from emolens.types import Faces

POSE_COLUMNS = ("yaw", "pitch", "roll")
SIGNAL_COLUMNS = (*POSE_COLUMNS, "eye_open_r", "eye_open_l", "blink", "attentive", "expressiveness")
BLENDSHAPE_COLUMNS = tuple(f"bs_{name}" for name in BLENDSHAPE_NAMES)
LANDMARK_COLUMNS = tuple(f"lm{i}_{axis}" for i in range(N_LANDMARKS) for axis in ("x", "y"))


def behaviour_columns(landmarks: bool = False) -> list[str]:
    """Header cells of the behaviour columns."""
    columns = [*SIGNAL_COLUMNS, *AU_NAMES, *BLENDSHAPE_COLUMNS]
    return columns + list(LANDMARK_COLUMNS) if landmarks else columns


def _cell(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def behaviour_cells(faces: Faces, row: int, landmarks: bool = False) -> list[str]:
    """The behaviour cells of face ``row`` (``faces`` must carry the behaviour fields)."""
    cells = [_cell(float(v), 1) for v in faces.head_pose[row]]
    cells += [_cell(float(v), 3) for v in faces.eye_open[row]]
    cells += [_cell(float(faces.blink[row]), 0), _cell(float(faces.attentive[row]), 0),
              _cell(float(faces.expressiveness[row]), 3)]
    cells += [_cell(float(v), 3) for v in faces.aus[row]]
    cells += [_cell(float(v), 3) for v in faces.blendshapes[row]]
    if landmarks:
        cells += [_cell(float(v), 1) for v in faces.landmarks[row].reshape(-1)]
    return cells


def empty_behaviour_cells(landmarks: bool = False) -> list[str]:
    """Cells for a face without behaviour fields (e.g. behaviour switched on mid-recording)."""
    return [""] * len(behaviour_columns(landmarks))
