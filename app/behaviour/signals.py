"""Per-face behaviour signals from one FaceLandmarker result: AUs, head pose, eyes, attention.

Pure numpy, no model: ``emolens.behaviour.landmarker`` runs MediaPipe and hands the 52 blendshape
scores and the 4x4 facial transformation matrix to the functions here.

**Action units.** MediaPipe's blendshapes are ARKit's 52 (Apple, ``ARFaceAnchor.BlendShapeLocation``),
not FACS codes. ``AU_TABLE`` below is the one place that maps them to action units; it follows
the ARKit-to-FACS correspondence that Apple's own descriptions imply and that animation
cheat sheets (e.g. Melinda Ozel's "ARKit to FACS") list: each AU is the mean of its left and
right blendshapes (or the one blendshape), so an AU intensity is a 0-1 blendshape weight,
**not** a FACS A-E intensity coded by a certified coder. Limits: blendshapes are fitted to
geometry, so AUs that differ mostly in texture (AU6 cheek raiser wrinkles, AU9 nose wrinkles)
are weaker than in py-feat or OpenFace; AU23 (lip tightener) has no blendshape of its own and
is approximated by the lips rolling in; AU25 (lips part) is derived as jaw opening minus lip
closure; AU43 (eyes closed) and AU45 (blink) are the same per-frame signal: a blink is told
from closed eyes only over time (``emolens.behaviour.track``). The table in the README is
written from ``AU_TABLE``.

**Head pose.** Degrees from the rotation part of the transformation matrix (canonical face ->
camera, camera axes x right, y up, z towards the viewer; the face is measured on its own crop,
so the angles are relative to the line from the camera to the face). Signs, as seen on the
image: ``yaw > 0`` when the face turns towards the image's right (the person's left, for a
camera that does not mirror), ``pitch > 0`` when the face tilts up, ``roll > 0`` when the face
is turned counter-clockwise in the image (as ``cv2.getRotationMatrix2D`` with a positive angle
turns it). A mirrored image flips the sign of yaw and roll and keeps pitch.

Example::

    aus = action_units(blendshapes)                  # float32 (n, len(AU_NAMES)), 0..1
    yaw_pitch_roll = head_pose_deg(matrices)         # float32 (n, 3)
"""

from __future__ import annotations

import numpy as np

N_LANDMARKS = 478  # points of MediaPipe's face mesh (468 + 10 iris points)

# The landmarker's output order (MediaPipe face_blendshapes.tflite); checked against the
# category names of the first result by emolens.behaviour.
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)

# AU code -> (FACS name, blendshapes averaged). The one mapping table; see the module docstring.
AU_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "AU01": ("inner brow raiser", ("browInnerUp",)),
    "AU02": ("outer brow raiser", ("browOuterUpLeft", "browOuterUpRight")),
    "AU04": ("brow lowerer", ("browDownLeft", "browDownRight")),
    "AU05": ("upper lid raiser", ("eyeWideLeft", "eyeWideRight")),
    "AU06": ("cheek raiser", ("cheekSquintLeft", "cheekSquintRight")),
    "AU07": ("lid tightener", ("eyeSquintLeft", "eyeSquintRight")),
    "AU09": ("nose wrinkler", ("noseSneerLeft", "noseSneerRight")),
    "AU10": ("upper lip raiser", ("mouthUpperUpLeft", "mouthUpperUpRight")),
    "AU12": ("lip corner puller", ("mouthSmileLeft", "mouthSmileRight")),
    "AU14": ("dimpler", ("mouthDimpleLeft", "mouthDimpleRight")),
    "AU15": ("lip corner depressor", ("mouthFrownLeft", "mouthFrownRight")),
    "AU17": ("chin raiser", ("mouthShrugLower",)),
    "AU18": ("lip pucker", ("mouthPucker",)),
    "AU20": ("lip stretcher", ("mouthStretchLeft", "mouthStretchRight")),
    "AU22": ("lip funneler", ("mouthFunnel",)),
    "AU23": ("lip tightener (approx.: lips rolled in)", ("mouthRollUpper", "mouthRollLower")),
    "AU24": ("lip pressor", ("mouthPressLeft", "mouthPressRight")),
    "AU25": ("lips part (jawOpen - mouthClose)", ()),
    "AU26": ("jaw drop", ("jawOpen",)),
    "AU34": ("cheek puff", ("cheekPuff",)),
    "AU43": ("eyes closed", ("eyeBlinkLeft", "eyeBlinkRight")),
    "AU45": ("blink (per frame = AU43)", ("eyeBlinkLeft", "eyeBlinkRight")),
}
AU_NAMES = tuple(AU_TABLE)
# The face at rest: the median of each AU on the first 300 FER+ *train* faces labelled neutral (majority
# rule), of which the pipeline read 281, by emolens.bench.behaviour_validation.au_rest_levels.
AU_AT_REST = {"AU01": 0.050, "AU02": 0.150, "AU04": 0.020, "AU05": 0.014, "AU06": 0.000, "AU07": 0.249, "AU09": 0.000,
              "AU10": 0.000, "AU12": 0.000, "AU14": 0.003, "AU15": 0.005, "AU17": 0.021, "AU18": 0.070, "AU20": 0.004,
              "AU22": 0.002, "AU23": 0.017, "AU24": 0.017, "AU25": 0.008, "AU26": 0.009, "AU34": 0.000, "AU43": 0.059,
              "AU45": 0.059}
# Left out of expressiveness: eye closure (not an expression), and AU7 and AU18, which MediaPipe reports
# on those neutral faces about as strongly as on expressive ones (90th percentiles 0.50 and 0.78).
_EXPRESSIVE = np.array([name not in ("AU07", "AU18", "AU43", "AU45") for name in AU_NAMES])
_REST = np.array([AU_AT_REST[name] for name in AU_NAMES], np.float32)
_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}


def action_units(blendshapes: np.ndarray) -> np.ndarray:
    """``float32 (n, len(AU_NAMES))`` AU intensities 0..1 from ``(n, 52)`` blendshape scores."""
    blendshapes = np.asarray(blendshapes, np.float32).reshape(-1, len(BLENDSHAPE_NAMES))
    out = np.empty((len(blendshapes), len(AU_NAMES)), np.float32)
    for column, (_, sources) in enumerate(AU_TABLE.values()):
        if sources:
            out[:, column] = blendshapes[:, [_INDEX[s] for s in sources]].mean(axis=1)
        else:  # AU25: the lips part when the jaw opens and the lips do not stay closed over it
            out[:, column] = blendshapes[:, _INDEX["jawOpen"]] - blendshapes[:, _INDEX["mouthClose"]]
    return np.clip(out, 0.0, 1.0)


def expressiveness(aus: np.ndarray) -> np.ndarray:
    """``float32 (n,)`` 0..1: how far each face moves from rest (AFFDEX's "engagement" idea).

    The mean of the three strongest expressive AUs, each measured above its level at rest
    (``AU_AT_REST``) and rescaled to 0..1: ``(au - rest) / (1 - rest)``. Chosen on FER+ train
    faces among max / top-3 / mean variants: it best told emotional faces from neutral ones while
    keeping a 0..1 range a person can read (FER+ train medians: neutral 0.16, other emotions 0.43).
    One population baseline, not a per-person one.
    """
    aus = np.asarray(aus, np.float32).reshape(-1, len(AU_NAMES))
    above = np.clip((aus - _REST) / (1.0 - _REST), 0.0, 1.0)[:, _EXPRESSIVE]
    out = np.sort(above, axis=1)[:, -3:].mean(axis=1).astype(np.float32)
    out[np.isnan(aus).any(axis=1)] = np.nan
    return out


def eye_openness(blendshapes: np.ndarray) -> np.ndarray:
    """``float32 (n, 2)``: openness 0 (closed) .. 1 (open) of the person's right and left eye.

    As in ARKit, ``eyeBlinkRight`` is the person's right eye (the one on the image's left;
    checked in tests/test_behaviour.py on a real face with one eye closed).
    """
    blendshapes = np.asarray(blendshapes, np.float32).reshape(-1, len(BLENDSHAPE_NAMES))
    closed = blendshapes[:, [_INDEX["eyeBlinkRight"], _INDEX["eyeBlinkLeft"]]]
    return (1.0 - closed).astype(np.float32)


def head_pose_deg(matrices: np.ndarray) -> np.ndarray:
    """``float32 (n, 3)`` yaw, pitch, roll in degrees from ``(n, 4, 4)`` transformation matrices.

    Signs as in the module docstring: yaw is the azimuth and pitch the elevation of the face's
    forward axis (the third column of the rotation, scale removed), roll the turn of its up axis.
    """
    matrices = np.asarray(matrices, np.float64).reshape(-1, 4, 4)
    rotation = matrices[:, :3, :3]
    rotation = rotation / np.linalg.norm(rotation, axis=1, keepdims=True)  # unit columns: drop the scale
    yaw = np.degrees(np.arctan2(rotation[:, 0, 2], rotation[:, 2, 2]))
    pitch = np.degrees(np.arcsin(np.clip(rotation[:, 1, 2], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(rotation[:, 1, 0], rotation[:, 1, 1]))
    return np.stack([yaw, pitch, roll], axis=1).astype(np.float32)


def attentive(pose_deg: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """``float32 (n,)`` 1 where the head points at the camera, else 0 (NaN where the pose is NaN).

    The cone is an ellipse of half-angles ``yaw_deg`` and ``pitch_deg`` around straight ahead:
    ``(yaw / yaw_deg)^2 + (pitch / pitch_deg)^2 <= 1``. Head pose only: the eyes may look
    elsewhere.
    """
    pose_deg = np.asarray(pose_deg, np.float32).reshape(-1, 3)
    inside = (pose_deg[:, 0] / yaw_deg) ** 2 + (pose_deg[:, 1] / pitch_deg) ** 2 <= 1.0
    out = inside.astype(np.float32)
    out[np.isnan(pose_deg[:, 0])] = np.nan
    return out


def rotation_from_pose(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The ``(3, 3)`` rotation whose ``head_pose_deg`` is these angles (columns: the face's
    right, up and forward axes in camera coordinates, x right, y up, z towards the viewer)."""
    yaw, pitch, roll = np.radians([yaw_deg, pitch_deg, roll_deg])
    about_y = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    about_x = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
    about_z = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    return about_y @ about_x @ about_z
