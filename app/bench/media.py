"""Synthetic media of real faces for the benchmarks, the tests and the bundled demo clip.

``astronaut.jpg`` is scikit-image's ``astronaut()`` (Eileen Collins, NASA; public domain),
saved once with ``python -c "from skimage import data; ..."`` (see ``assets/README.md``).
Every video here shows real faces from it: copies of her face, mirrored and lit
differently, laid out in a grid, each drifting and zooming slowly so that detection,
tracking and smoothing see motion.

``FacePhoto`` and ``compose_scene`` place any real faces (FER crops, other photos) at a
chosen size and layout and return where each face went, for the detection benchmark; ``Walker``
and ``moving_frame`` make faces walk, turn and leave the frame; ``assign`` says which detection
found which face.

    write_video(path, (640, 480), faces=2, seconds=6.0, fps=20.0)   # assets/make_demo.py's demo clip
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

ASSETS = Path(str(resources.files("emolens.assets")))  # data files, read as files (no module is imported)
PHOTO = ASSETS / "astronaut.jpg"
DEMO = ASSETS / "demo.mp4"
# Regions of the 512x512 photo (rows, columns): head and shoulders as a camera in a room
# sees a viewer, or the face alone as a video call's gallery view shows a participant.
_REGIONS = {"room": (slice(20, 330), slice(100, 360)), "gallery": (slice(45, 225), slice(135, 315))}


def face_tiles(count: int, framing: str = "room") -> list[np.ndarray]:
    """``count`` variants of the astronaut's face: mirrored every other one, lit differently."""
    photo = cv2.imread(str(PHOTO))
    if photo is None:
        raise FileNotFoundError(f"{PHOTO} is missing; see assets/README.md to rebuild it")
    face = photo[_REGIONS[framing]]
    tiles = []
    for index in range(count):
        tile = face[:, ::-1] if index % 2 else face
        gain = 0.8 + 0.4 * ((index * 37) % 10) / 10
        tiles.append(np.clip(tile.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    return tiles


def grid_shape(count: int) -> tuple[int, int]:
    """Columns and rows of the smallest near-square grid holding ``count`` faces."""
    columns = math.ceil(math.sqrt(count * 4 / 3))
    return columns, math.ceil(count / columns)


def render_frame(tiles: list[np.ndarray], size_wh: tuple[int, int], t_s: float) -> np.ndarray:
    """One frame: the tiles in a grid on a grey background, each drifting with time."""
    width, height = size_wh
    frame = np.full((height, width, 3), 96, np.uint8)
    columns, rows = grid_shape(len(tiles))
    cell_w, cell_h = width // columns, height // rows
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        zoom = 0.85 + 0.08 * math.sin(0.7 * t_s + index)
        scale = zoom * min(cell_w / tile.shape[1], cell_h / tile.shape[0])
        resized = cv2.resize(tile, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        dx = int((cell_w - resized.shape[1]) / 2 * (1 + 0.6 * math.sin(0.9 * t_s + 2 * index)))
        dy = int((cell_h - resized.shape[0]) / 2 * (1 + 0.6 * math.cos(0.8 * t_s + index)))
        x, y = column * cell_w + dx, row * cell_h + dy
        frame[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
    return frame


@dataclass(frozen=True)
class FacePhoto:
    """A photo holding one real face, and that face's box in it.

    Attributes:
        image: ``uint8 (H, W, 3)`` BGR pixels.
        box: the face's box (x0, y0, x1, y1) in ``image`` pixels, as a face detector draws it.
        name: where the photo comes from, for tables.
    """

    image: np.ndarray
    box: tuple[float, float, float, float]
    name: str = ""

    def tile(self, face_px: float, side_px: int) -> np.ndarray:
        """A ``side_px`` square around the face, scaled so the face is ``face_px`` wide (edges replicated)."""
        x0, y0, x1, y1 = self.box
        scale = face_px / (x1 - x0)
        centre = side_px / 2
        matrix = np.float32([[scale, 0, centre - scale * (x0 + x1) / 2], [0, scale, centre - scale * (y0 + y1) / 2]])
        return cv2.warpAffine(self.image, matrix, (side_px, side_px),
                              flags=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def astronaut_photo() -> FacePhoto:
    """The bundled astronaut photo; the box is the short-range detector's on it."""
    photo = cv2.imread(str(PHOTO))
    if photo is None:
        raise FileNotFoundError(f"{PHOTO} is missing; see assets/README.md to rebuild it")
    return FacePhoto(photo, (177.0, 82.0, 272.0, 177.0), "astronaut")


def _grid_cell(count: int, size_wh: tuple[int, int]) -> tuple[int, int, int]:
    """Columns, rows and side of the largest square cells that hold ``count`` faces in the frame."""
    width, height = size_wh
    return max(((c, math.ceil(count / c), int(min(width / c, height / math.ceil(count / c))))
                for c in range(1, count + 1)), key=lambda shape: (shape[2], -shape[0]))


def scene_layout(count: int, size_wh: tuple[int, int], layout: str, face_px: tuple[float, float],
                 rng: np.random.Generator, context: float = 1.5) -> list[tuple[float, float, float, int]]:
    """Where ``count`` faces go: (centre x, centre y, face width, tile side), all in pixels.

    ``grid``: one face per square cell (as many columns as make the cells largest), each face
    its size drawn from ``face_px`` (low, high) and clamped to the cell, moved at random within it.
    ``scatter``: faces of random sizes at random places, their tiles never overlapping.
    A tile is ``context`` face widths, or the cell where that is smaller.
    """
    width, height = size_wh
    placed: list[tuple[float, float, float, int]] = []
    if layout == "grid":
        columns, _, cell = _grid_cell(count, size_wh)
        rows = math.ceil(count / columns)
        left, top = (width - columns * cell) / 2, (height - rows * cell) / 2
        for index in range(count):
            row, column = divmod(index, columns)
            face = min(rng.uniform(*face_px), cell / 1.1)
            side = int(min(face * context, cell))
            slack = (cell - side) / 2
            cx = left + (column + 0.5) * cell + rng.uniform(-slack, slack)
            cy = top + (row + 0.5) * cell + rng.uniform(-slack, slack)
            placed.append((cx, cy, face, side))
        return placed
    if layout != "scatter":
        raise ValueError(f"unknown layout {layout!r}")
    for _ in range(200 * count):
        if len(placed) == count:
            break
        face = rng.uniform(*face_px)
        side = int(face * context)
        cx, cy = rng.uniform(side / 2, width - side / 2), rng.uniform(side / 2, height - side / 2)
        if all(abs(cx - x) > (side + s) / 2 or abs(cy - y) > (side + s) / 2 for x, y, _, s in placed):
            placed.append((cx, cy, face, side))
    if len(placed) < count:
        raise ValueError(f"{count} faces of {face_px} px do not fit a {width}x{height} frame")
    return placed


def compose_scene(photos: list[FacePhoto], size_wh: tuple[int, int], layout: str, face_px: tuple[float, float],
                  rng: np.random.Generator, background: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One frame of ``photos``' faces laid out by ``scene_layout``, on ``background`` (resized) or grey.

    Returns the BGR frame and ``float32 (n, 4)``: each face's box (x0, y0, x1, y1) in the frame.
    """
    width, height = size_wh
    frame = (np.full((height, width, 3), 96, np.uint8) if background is None
             else cv2.resize(background, size_wh, interpolation=cv2.INTER_AREA))
    boxes = []
    for photo, (cx, cy, face, side) in zip(photos, scene_layout(len(photos), size_wh, layout, face_px, rng)):
        tile = photo.tile(face, side)
        x, y = int(round(cx - side / 2)), int(round(cy - side / 2))
        frame[y:y + side, x:x + side] = tile[:height - y, :width - x]
        x0, y0, x1, y1 = photo.box
        ratio = face / (x1 - x0)  # the face box scaled like the face, about its centre
        boxes.append([cx - face / 2, cy - (y1 - y0) * ratio / 2, cx + face / 2, cy + (y1 - y0) * ratio / 2])
    return frame, np.array(boxes, np.float32).reshape(-1, 4)


def assign(detected: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """For each true face, the detection that found it (-1: none): each detection finds the first unfound
    face whose box holds its centre."""
    centres = (detected[:, :2] + detected[:, 2:]) / 2
    finder = np.full(len(truth), -1, np.int64)
    for index, (x, y) in enumerate(centres):
        inside = (finder < 0) & (truth[:, 0] <= x) & (x <= truth[:, 2]) & (truth[:, 1] <= y) & (y <= truth[:, 3])
        if inside.any():
            finder[np.argmax(inside)] = index
    return finder


def write_video(path: Path, size_wh: tuple[int, int], faces: int, seconds: float, fps: float = 25.0,
                framing: str = "room") -> Path:
    """Write an MPEG-4 clip of ``faces`` faces; returns its path."""
    tiles = face_tiles(faces, framing)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    for index in range(int(seconds * fps)):
        writer.write(render_frame(tiles, size_wh, index / fps))
    writer.release()
    return path


@dataclass(frozen=True)
class Walker:
    """A face that moves through a clip: where it is at a time, how wide, how far it is turned.

    Attributes:
        photo: the real face.
        face_px: its width, facing the camera.
        start: (x, y) of its centre at ``enter_s``, pixels (may lie outside the frame).
        velocity: (x, y) pixels per second.
        enter_s: when it appears.
        turn_hz: how often it turns its head away and back (0: it keeps facing the camera); turned
            fully, its face is 60% as wide (foreshortened, as a head turned by about 50 degrees).
    """

    photo: FacePhoto
    face_px: float
    start: tuple[float, float]
    velocity: tuple[float, float]
    enter_s: float = 0.0
    turn_hz: float = 0.0

    def place(self, t_s: float) -> tuple[float, float, float] | None:
        """Centre x, centre y and how wide it is relative to facing the camera, or None before it enters."""
        if t_s < self.enter_s:
            return None
        elapsed = t_s - self.enter_s
        squeeze = 1.0 - 0.4 * abs(math.sin(math.pi * self.turn_hz * elapsed))
        return self.start[0] + self.velocity[0] * elapsed, self.start[1] + self.velocity[1] * elapsed, squeeze


def moving_frame(walkers: list[Walker], size_wh: tuple[int, int], t_s: float, background: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame of ``walkers`` at ``t_s`` (later ones in front): the BGR frame, the boxes (x0, y0, x1, y1) of
    the faces that count, and which walker each box is (its index). A face counts when it lies wholly in the
    frame and no walker in front of it covers its centre."""
    width, height = size_wh
    frame = (np.full((height, width, 3), 96, np.uint8) if background is None
             else cv2.resize(background, size_wh, interpolation=cv2.INTER_AREA))
    drawn: list[tuple[int, tuple[float, float, float, float], tuple[int, int, int, int]]] = []
    for index, walker in enumerate(walkers):
        placed = walker.place(t_s)
        if placed is None:
            continue
        cx, cy, squeeze = placed
        side = int(walker.face_px * 1.5)
        tile = walker.photo.tile(walker.face_px, side)
        tile = cv2.resize(tile, (max(int(side * squeeze), 1), side), interpolation=cv2.INTER_AREA)
        x, y = int(round(cx - tile.shape[1] / 2)), int(round(cy - side / 2))
        left, top = max(x, 0), max(y, 0)
        right, bottom = min(x + tile.shape[1], width), min(y + side, height)
        if right > left and bottom > top:
            frame[top:bottom, left:right] = tile[top - y:bottom - y, left - x:right - x]
        x0, y0, x1, y1 = walker.photo.box
        face_w, face_h = walker.face_px * squeeze, (y1 - y0) * walker.face_px / (x1 - x0)
        drawn.append((index, (cx - face_w / 2, cy - face_h / 2, cx + face_w / 2, cy + face_h / 2),
                      (x, y, x + tile.shape[1], y + side)))
    boxes, who = [], []
    for order, (index, box, _) in enumerate(drawn):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        covered = any(x0 <= cx <= x1 and y0 <= cy <= y1 for _, _, (x0, y0, x1, y1) in drawn[order + 1:])
        if box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height and not covered:
            boxes.append(box)
            who.append(index)
    return frame, np.array(boxes, np.float32).reshape(-1, 4), np.array(who, np.int64)
