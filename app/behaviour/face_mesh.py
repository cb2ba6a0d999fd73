"""MediaPipe's face-landmarker networks, run by LiteRT on one face's crop.

``models/face_landmarker.task`` (Google's FaceLandmarker bundle) holds three TensorFlow Lite networks:
a face detector (BlazeFace, 128x128), the face mesh (478 landmarks from a 256x256 region) and the
blendshapes (52 scores from 146 of the landmarks). MediaPipe's Tasks API runs them in a graph that
cost about 12 ms per face here, 4 of them outside the networks; LiteRT (Google's TensorFlow Lite
runtime, with its XNNPACK kernels) runs the same three networks in about 7 ms (benchmarks/behaviour.md).
``FaceMesh`` does, in numpy and OpenCV, what the graph does around them, as the graph's source does
it (``mediapipe/tasks/cc/vision/face_landmarker``, ``face_detector``; Apache-2.0), for one face in
image mode:

1. the crop (``crop_scale`` box widths around the detector's box, ``crop_px`` square) is the image;
   the detector reads it resized to 128x128 ([-1, 1] input), and the best detection, averaged with
   those overlapping it (weighted non-maximum suppression), gives the face's box and eyes;
2. the region the mesh reads: that box scaled 1.5 times about its centre, turned so the eyes are
   level, resampled to 256x256 ([0, 1] input), edges replicated;
3. the mesh's 478 points are mapped back from the region; its presence score (a sigmoid) must
   exceed the threshold;
4. the blendshapes read 146 of the points in the crop's pixels; the head pose is
   ``emolens.behaviour.geometry``'s fit of the canonical face to the points.

Both resamplings are made straight from the frame (one ``warpAffine`` each), not from a resized
crop first. ``tests/behaviour/test_face_mesh.py`` checks the readings against MediaPipe's
FaceLandmarker on the same crops of real faces.

Example::

    mesh = FaceMesh(bundle_path)
    reading = mesh.read(rgb_frame, face_box_xyxy)       # None where no face is present
    reading.landmarks, reading.blendshapes, reading.matrix
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emolens.behaviour.geometry import CanonicalFace
from emolens.behaviour.signals import BLENDSHAPE_NAMES, N_LANDMARKS
from emolens.blazeface import LiteNetwork, anchor_centres, decode, weighted_nms

# The face mesh points the blendshape network reads, in its input order (face_blendshapes_graph.cc).
BLENDSHAPE_POINTS = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251,
    263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386,
    387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
])
_DETECTOR_PX = 128
_MESH_PX = 256
_ROI_SCALE = 1.5  # the mesh's region, in detector box sides
_NMS_IOU = 0.5
# The networks' output names (a third mesh output is unused, as in MediaPipe's graph).
_LANDMARKS_OUT, _PRESENCE_OUT, _BLENDSHAPES_OUT = "Identity", "Identity_1", "StatefulPartitionedCall:0"


_ANCHORS = anchor_centres(896)  # the bundle's detector is the short-range BlazeFace


def crop_matrix(xyxy: np.ndarray, crop_scale: float, crop_px: int) -> np.ndarray:
    """``(3, 3)`` affine map from source pixels to the pixels of a face's crop: the square of ``crop_scale``
    box widths (the larger side) centred on box ``xyxy``, ``crop_px`` pixels wide."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    side = crop_scale * max(x1 - x0, y1 - y0, 1.0)
    left, top = (x0 + x1 - side) / 2, (y0 + y1 - side) / 2
    scale = crop_px / side
    return np.float64([[scale, 0, -left * scale], [0, scale, -top * scale], [0, 0, 1]])


@dataclass(frozen=True)
class MeshReading:
    """One face's reading.

    Attributes:
        landmarks: ``float32 (478, 2)`` x, y in source-frame pixels.
        blendshapes: ``float32 (52,)`` scores 0..1 in ``BLENDSHAPE_NAMES`` order.
        matrix: ``float64 (4, 4)`` the facial transformation matrix (``emolens.behaviour.geometry``).
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    matrix: np.ndarray


class FaceMesh:
    """The bundle's three networks, for one thread at a time (each holds its own buffers).

    Args:
        bundle: ``face_landmarker.task``.
        crop_scale: crop side in the box widths of the face's detector box.
        crop_px: side of the crop in pixels: the image the networks read the face in (the detector's
            and the geometry's image, as MediaPipe's graph would be given it).
        min_confidence: the detection and presence thresholds.
    """

    def __init__(self, bundle: Path, crop_scale: float = 2.0, crop_px: int = 256, min_confidence: float = 0.5):
        with zipfile.ZipFile(bundle) as archive:
            self._detector = LiteNetwork(archive.read("face_detector.tflite"))
            self._mesh = LiteNetwork(archive.read("face_landmarks_detector.tflite"))
            self._blendshapes = LiteNetwork(archive.read("face_blendshapes.tflite"))
            self._canonical = CanonicalFace.from_metadata(archive.read("geometry_pipeline_metadata_landmarks.binarypb"))
        self.crop_scale = crop_scale
        self.crop_px = crop_px
        self.min_confidence = min_confidence

    def read(self, rgb: np.ndarray, xyxy: np.ndarray) -> MeshReading | None:
        """The reading of the face in box ``xyxy`` of an RGB frame, or None where none is found."""
        to_crop = crop_matrix(xyxy, self.crop_scale, self.crop_px)
        detection = self._detect(rgb, to_crop)
        if detection is None:
            return None
        box, eyes = detection
        centre = (box[:2] + box[2:]) / 2
        size = (box[2:] - box[:2]) * _ROI_SCALE
        # Turned so that the line from the first eye keypoint to the second is level (target angle 0).
        turn = -np.arctan2(-(eyes[1, 1] - eyes[0, 1]), eyes[1, 0] - eyes[0, 0])
        turn -= 2 * np.pi * np.floor((turn + np.pi) / (2 * np.pi))
        corners = cv2.boxPoints((tuple(centre), tuple(size), float(np.degrees(turn))))
        to_region = cv2.getAffineTransform(corners[:3].astype(np.float32),
                                           np.float32([[0, _MESH_PX], [0, 0], [_MESH_PX, 0]]))
        region = cv2.warpAffine(rgb, to_region @ to_crop, (_MESH_PX, _MESH_PX), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        outputs = self._mesh.run((region.astype(np.float32) / 255.0)[None])
        if 1.0 / (1.0 + np.exp(-float(outputs[_PRESENCE_OUT].reshape(-1)[0]))) <= self.min_confidence:
            return None
        points = outputs[_LANDMARKS_OUT].reshape(N_LANDMARKS, 3).astype(np.float64) / _MESH_PX - [0.5, 0.5, 0.0]
        cos, sin = np.cos(turn), np.sin(turn)
        in_crop = np.stack([size[0] * cos * points[:, 0] - size[1] * sin * points[:, 1] + centre[0],
                            size[0] * sin * points[:, 0] + size[1] * cos * points[:, 1] + centre[1]], axis=1)
        depth = points[:, 2] * size[0] / self.crop_px  # in crop widths, as the graph's projection scales it
        scores = self._blendshapes.run(in_crop[BLENDSHAPE_POINTS][None].astype(np.float32))
        blendshapes = scores[_BLENDSHAPES_OUT].reshape(len(BLENDSHAPE_NAMES))
        matrix = self._canonical.pose_matrix(np.column_stack([in_crop / self.crop_px, depth]),
                                             self.crop_px, self.crop_px)
        from_crop = np.linalg.inv(to_crop)
        landmarks = in_crop @ from_crop[:2, :2].T + from_crop[:2, 2]
        return MeshReading(landmarks=landmarks.astype(np.float32), blendshapes=blendshapes.astype(np.float32),
                           matrix=matrix)

    def _detect(self, rgb: np.ndarray, to_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The best face on the crop: its box ``(4,)`` x0, y0, x1, y1 and its two eye keypoints ``(2, 2)``,
        in crop pixels; None below the threshold."""
        to_input = np.diag([_DETECTOR_PX / self.crop_px] * 2 + [1.0]) @ to_crop
        image = cv2.warpAffine(rgb, to_input[:2], (_DETECTOR_PX, _DETECTOR_PX), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        outputs = self._detector.run((image.astype(np.float32) / 127.5 - 1.0)[None])
        boxes, _, keypoints = weighted_nms(*decode(outputs["regressors"][0], outputs["classificators"][0, :, 0],
                                                   _ANCHORS, _DETECTOR_PX, self.min_confidence), min_iou=_NMS_IOU)
        if not len(boxes):
            return None
        return boxes[0] * self.crop_px, keypoints[0, :2] * self.crop_px
