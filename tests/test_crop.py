import cv2
import numpy as np

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
