from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from emolens.types import Faces


def make_faces(n: int) -> Faces:
    xyxy = np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(n)], np.float32).reshape(-1, 4)
    return Faces(xyxy=xyxy, det_score=np.linspace(0.5, 0.9, n, dtype=np.float32))


@pytest.mark.parametrize(
    ("xyxy_shape", "score_shape", "expectation"),
    [
        ((2, 4), (2,), does_not_raise()),
        ((0, 4), (0,), does_not_raise()),
        ((2, 3), (2,), pytest.raises(ValueError, match=r"xyxy must have shape \(2, 4\)")),
        ((2, 4), (3,), pytest.raises(ValueError, match=r"det_score must have shape \(2,\)")),
    ],
)
def test_faces_validates_shapes(xyxy_shape, score_shape, expectation):
    with expectation:
        Faces(xyxy=np.zeros(xyxy_shape, np.float32), det_score=np.zeros(score_shape, np.float32))


def test_faces_mask_and_fields_return_new_objects():
    faces = make_faces(3).with_fields(probs=np.eye(3, 7, dtype=np.float32))
    chosen = faces[faces.det_score > 0.6]
    assert len(chosen) == 2
    assert chosen.probs.shape == (2, 7)
    assert faces.face_id is None and len(faces) == 3
    assert np.allclose(faces.xywh[1], [10, 0, 8, 8])


def test_empty_faces_is_ordinary():
    empty = Faces.empty()
    assert len(empty) == 0 and empty.keypoints.shape == (0, 6, 2)
    with pytest.raises(ValueError, match="probs must have 0 rows"):
        empty.with_fields(probs=np.zeros((1, 7), np.float32))


def test_labels_name_the_probability_columns_and_survive_selection():
    labels = ("a", "b", "c", "d", "e", "f", "g")
    faces = make_faces(3).with_fields(probs=np.eye(3, 7, dtype=np.float32), face_id=np.arange(1, 4), labels=labels)
    chosen = faces[faces.det_score > 0.6]
    assert chosen.labels == labels and chosen.face_id.tolist() == [2, 3]
    table = chosen.to_pandas()
    assert list(table.columns) == ["face_id", "x", "y", "w", "h", "det_score", *labels, "dominant"]
    assert table["dominant"].tolist() == ["b", "c"] and table["x"].tolist() == [10.0, 20.0]
    with pytest.raises(ValueError, match="must have 2 columns"):
        faces.with_fields(labels=("a", "b"))
    with pytest.raises(ValueError, match="no label names"):
        faces.with_fields(labels=None).to_pandas()
    assert list(make_faces(2).to_pandas().columns) == ["x", "y", "w", "h", "det_score"]  # detections only
