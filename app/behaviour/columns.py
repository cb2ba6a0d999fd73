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
    values = behaviour_values(faces, row, landmarks=False)   # floats or None, same length
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


def behaviour_digits(landmarks: bool = False) -> list[int]:
    """Decimals of each behaviour column in the CSV (degrees and pixels to 0.1, scores to 0.001, flags whole)."""
    digits = [1] * len(POSE_COLUMNS) + [3, 3, 0, 0, 3] + [3] * (len(AU_NAMES) + len(BLENDSHAPE_COLUMNS))
    return digits + [1] * len(LANDMARK_COLUMNS) if landmarks else digits


def behaviour_values(faces: Faces, row: int, landmarks: bool = False) -> list[float | None]:
    """The behaviour values of face ``row``, ``None`` where the landmarker could not read it; all ``None`` when
    ``faces`` carries no behaviour fields (e.g. behaviour switched on mid-recording)."""
    if faces.head_pose is None:
        return [None] * len(behaviour_columns(landmarks))
    parts = [faces.head_pose[row], faces.eye_open[row], (faces.blink[row], faces.attentive[row],
             faces.expressiveness[row]), faces.aus[row], faces.blendshapes[row]]
    if landmarks:
        parts.append(faces.landmarks[row].reshape(-1))
    return [None if math.isnan(value) else value for part in parts for value in map(float, part)]
