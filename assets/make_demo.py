"""Build the bundled demo clip and benchmark videos from a public-domain photo.

``astronaut.jpg`` is scikit-image's ``astronaut()`` (Eileen Collins, NASA; public domain),
saved once with ``python -c "from skimage import data; ..."`` (see ``assets/README.md``).
Every video here shows real faces from it: copies of her face, mirrored and lit
differently, laid out in a grid, each drifting and zooming slowly so that detection,
tracking and smoothing see motion.

    python -m emolens.assets.make_demo            # rewrites assets/demo.mp4
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "astronaut.jpg"
DEMO = HERE / "demo.mp4"
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


def main() -> int:
    write_video(DEMO, (640, 480), faces=2, seconds=6.0, fps=20.0)
    print(f"wrote {DEMO} ({DEMO.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
