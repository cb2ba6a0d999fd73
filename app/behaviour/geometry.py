"""Head pose from face-mesh landmarks: MediaPipe's face geometry pipeline, in numpy.

MediaPipe's FaceLandmarker returns a "facial transformation matrix" per face: the rotation, scale
and translation that carry its canonical face model onto the landmarks unprojected into a
perspective camera. This module computes the same matrix from the same inputs, so that the
landmarker can run the bundle's networks itself (``emolens.behaviour.face_mesh``) and still
report MediaPipe's head pose. It follows ``mediapipe/tasks/cc/vision/face_geometry/libs/
geometry_pipeline.cc`` and ``procrustes_solver.cc`` (Apache-2.0) with the task's environment:
origin at the top-left corner, a perspective camera of 63 degrees vertical field of view, near
plane 1. ``tests/behaviour/test_face_mesh.py`` checks it against MediaPipe's own matrices.

The canonical face (468 vertices) and the weights of the 33 landmarks the fit uses come from
the bundle's ``geometry_pipeline_metadata_landmarks.binarypb`` (a ``GeometryPipelineMetadata``
protobuf, whose schema the mediapipe wheel does not ship: it is declared here, three messages).

Example::

    canonical = CanonicalFace.from_bundle(task_zip)
    matrix = canonical.pose_matrix(landmarks_xyz, width, height)   # (4, 4), as MediaPipe's
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FOV_DEG = 63.0
_NEAR = 1.0
_MESH_POINTS = 468  # the geometry uses the mesh, not the 10 iris points
_VERTEX_FLOATS = 5  # VERTEX_PT: x, y, z, u, v


def _metadata_message() -> type:
    """The ``GeometryPipelineMetadata`` message class, from its schema's three messages."""
    field = descriptor_pb2.FieldDescriptorProto
    schema = descriptor_pb2.FileDescriptorProto(name="emolens_face_geometry.proto", package="face_geometry",
                                                syntax="proto2")
    mesh = schema.message_type.add(name="Mesh3d")
    mesh.field.add(name="vertex_type", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    mesh.field.add(name="primitive_type", number=2, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    mesh.field.add(name="vertex_buffer", number=3, type=field.TYPE_FLOAT, label=field.LABEL_REPEATED)
    mesh.field.add(name="index_buffer", number=4, type=field.TYPE_UINT32, label=field.LABEL_REPEATED)
    weighted = schema.message_type.add(name="WeightedLandmarkRef")
    weighted.field.add(name="landmark_id", number=1, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL)
    weighted.field.add(name="weight", number=2, type=field.TYPE_FLOAT, label=field.LABEL_OPTIONAL)
    metadata = schema.message_type.add(name="GeometryPipelineMetadata")
    metadata.field.add(name="canonical_mesh", number=1, type=field.TYPE_MESSAGE, type_name=".face_geometry.Mesh3d",
                       label=field.LABEL_OPTIONAL)
    metadata.field.add(name="procrustes_landmark_basis", number=2, type=field.TYPE_MESSAGE,
                       type_name=".face_geometry.WeightedLandmarkRef", label=field.LABEL_REPEATED)
    metadata.field.add(name="input_source", number=3, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("face_geometry.GeometryPipelineMetadata"))


def _weighted_fit(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The ``(4, 4)`` similarity (rotation, uniform scale, translation) carrying ``source (3, n)`` onto
    ``target (3, n)`` in the weighted least-squares sense: MediaPipe's weighted orthogonal Procrustes."""
    root = np.sqrt(weights)
    total = weights.sum()
    source_w, target_w = source * root, target * root
    centre = (source_w * root).sum(axis=1) / total
    centred = source_w - centre[:, None] * root[None]
    left, _, right = np.linalg.svd(target_w @ centred.T)
    if np.linalg.det(left) * np.linalg.det(right) < 0:  # a reflection: flip the least axis
        left[:, 2] *= -1
    rotation = left @ right
    scale = ((rotation @ centred) * target_w).sum() / (centred * source_w).sum()
    translation = ((target_w - scale * rotation @ source_w) * root).sum(axis=1) / total
    matrix = np.eye(4)
    matrix[:3, :3] = scale * rotation
    matrix[:3, 3] = translation
    return matrix


@dataclass(frozen=True)
class CanonicalFace:
    """The landmarks MediaPipe's pose fit weighs, their places on its canonical face model, and their weights
    (the other landmarks weigh 0 in the fit, so they are left out of it).

    Attributes:
        points: ``int (k,)`` indices of the weighted landmarks (33 in the bundle).
        vertices: ``float64 (3, k)`` those points on the canonical face, in centimetres.
        weights: ``float64 (k,)`` their weights in the fit.
    """

    points: np.ndarray
    vertices: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_metadata(cls, data: bytes) -> CanonicalFace:
        """From the bytes of ``geometry_pipeline_metadata_landmarks.binarypb``."""
        metadata = _metadata_message().FromString(data)
        buffer = np.asarray(metadata.canonical_mesh.vertex_buffer, np.float64).reshape(-1, _VERTEX_FLOATS)
        basis = metadata.procrustes_landmark_basis
        points = np.array([ref.landmark_id for ref in basis], np.int64)
        return cls(points=points, vertices=buffer[points, :3].T.copy(),
                   weights=np.array([ref.weight for ref in basis], np.float64))

    def pose_matrix(self, landmarks: np.ndarray, width: float, height: float) -> np.ndarray:
        """MediaPipe's facial transformation matrix, ``(4, 4)``, of one face.

        Args:
            landmarks: ``(478 or 468, 3)`` x, y as fractions of the image's width and height, z in
                the landmark model's units (a fraction of the width), as MediaPipe returns them.
            width, height: the image's size in pixels (only their ratio matters).
        """
        frustum_h = 2 * _NEAR * np.tan(np.radians(_FOV_DEG) / 2)
        frustum_w = frustum_h * width / height
        landmarks = np.asarray(landmarks, np.float64)
        # The depth offset is the mean of the whole mesh; only the weighted points take part in the fit.
        depth_offset = landmarks[:_MESH_POINTS, 2].mean() * frustum_w
        screen = landmarks[self.points].T.copy()
        screen[1] = 1.0 - screen[1]  # the origin is the top-left corner; the camera's y points up
        screen *= np.array([[frustum_w], [frustum_h], [frustum_w]])
        screen[0] -= frustum_w / 2
        screen[1] -= frustum_h / 2

        def in_metric_space(scale: float) -> np.ndarray:
            points = screen.copy()
            points[2] = (points[2] - depth_offset + _NEAR) / scale
            points[:2] *= points[2] / _NEAR
            points[2] *= -1
            return points

        def fitted_scale(points: np.ndarray) -> float:
            return float(np.linalg.norm(_weighted_fit(self.vertices, points, self.weights)[:3, 0]))

        # The face's depth is unknown: estimate its scale on the flat points, unproject with it, and
        # estimate again (MediaPipe's two iterations), then fit on the unprojected points.
        flat = screen.copy()
        flat[2] *= -1
        first = fitted_scale(flat)
        second = fitted_scale(in_metric_space(first))
        return _weighted_fit(self.vertices, in_metric_space(first * second), self.weights)
