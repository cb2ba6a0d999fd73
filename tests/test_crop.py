import cv2
import numpy as np

from emolens import crop
from emolens.card import ModelCard
from emolens.crop import crop_faces, crop_square
from emolens.detect import FaceDetector
from emolens.training.geometry import place_on_canvas
from emolens.types import Faces


def test_fer_faces_on_a_canvas_come_back_framed_like_fer(fer_faces):
    """Upscale FER crops onto a larger canvas and detect them: the card's geometry must put the
    crop square where the original FER crop was (FER's own framing varies face to face)."""
    card = ModelCard.load()
    centre_errors, side_ratios = [], []
    with FaceDetector() as detector:
        for _, face in fer_faces:
            canvas, (left, top, side) = place_on_canvas(face)
            faces = detector.detect(canvas)
            if len(faces):
                centre_x, centre_y, crop_side, _ = crop_square(faces.xyxy[0], faces.keypoints[0], card.crop)
                centre_errors.append(np.hypot(centre_x - (left + side / 2), centre_y - (top + side / 2)) / side)
                side_ratios.append(crop_side / side)
    assert len(centre_errors) >= 0.8 * len(fer_faces)
    assert np.median(centre_errors) < 0.08
    assert abs(np.median(side_ratios) - 1) < 0.1
    crop = crop_faces(canvas, faces[:1], card)
    assert crop.shape == (1, *card.input_hw, card.channels)


def test_crop_is_batched_with_the_card_shape(astronaut):
    card = ModelCard.load()
    with FaceDetector() as detector:
        faces = detector.detect(astronaut)
    crops = crop_faces(astronaut, faces, card)
    assert crops.shape == (1, *card.input_hw, card.channels) and crops.dtype == np.uint8
    assert crop_faces(astronaut, Faces.empty(), card).shape == (0, *card.input_hw, card.channels)


def test_roll_is_corrected_from_the_eyes(astronaut):
    card = ModelCard.load()
    height, width = astronaut.shape[:2]
    turned = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((224, 130), 25, 1.0), (width, height))
    with FaceDetector() as detector:
        upright = detector.detect(astronaut)
        tilted = detector.detect(turned)
    _, _, _, roll_upright = crop_square(upright.xyxy[0], upright.keypoints[0], card.crop)
    _, _, _, roll_tilted = crop_square(tilted.xyxy[0], tilted.keypoints[0], card.crop)
    assert abs(np.degrees(roll_tilted - roll_upright) + 25) < 8
    straight = crop_faces(astronaut, upright, card)[0].astype(np.float32)
    corrected = crop_faces(turned, tilted, card)[0].astype(np.float32)
    assert np.abs(straight - corrected).mean() < 25


def test_face_at_the_frame_edge_is_padded(astronaut):
    card = ModelCard.load()
    faces = Faces(xyxy=np.array([[-30, -20, 60, 70]], np.float32), det_score=np.ones(1, np.float32))
    crop = crop_faces(astronaut, faces, card)
    assert crop.shape == (1, *card.input_hw, card.channels)


def test_a_crop_converts_only_its_region_and_equals_the_crop_of_the_whole_frame(monkeypatch):
    """The crop converts only the region its square covers (not the whole frame: item 3 of the speed issue).
    Faces inside, across an edge, in a corner, turned, or wholly outside come out as they do when the whole
    frame is converted first (within one gray level: the warp's fixed-point rounding of a shifted origin)."""
    card = ModelCard.load()
    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (240, 320, 3), np.uint8)  # noise: a pixel read from elsewhere shows
    centres = np.array([[160, 120], [0, 120], [320, 0], [-40, 260], [500, 120], [160, -300], [90, 60]], np.float32)
    sides = np.array([[120], [80], [150], [60], [40], [20], [230]], np.float32)
    eyes = rng.normal(0, 0.2, (len(centres), 1)).astype(np.float32)  # rolls of up to about 60 degrees
    keypoints = np.zeros((len(centres), 6, 2), np.float32)
    keypoints[:, 0] = centres - sides * np.hstack([np.full_like(eyes, 0.2), eyes])
    keypoints[:, 1] = centres + sides * np.hstack([np.full_like(eyes, 0.2), eyes])
    faces = Faces(xyxy=np.hstack([centres - sides / 2, centres + sides / 2]),
                  det_score=np.ones(len(centres), np.float32), keypoints=keypoints)
    crops = crop_faces(frame, faces, card)
    monkeypatch.setattr(crop, "_region", lambda image, x, y, side, channels: (crop._to_channels(image, channels),
                                                                             (0, 0)))
    whole_frame = crop_faces(frame, faces, card)
    assert np.abs(crops.astype(int) - whole_frame).max() <= 1
