"""Clips whose frames carry their own number, to check that a frame shown is the frame asked for.

Each frame is ``emolens.bench.media``'s real faces with its index written as 20 black or white
squares along the bottom edge (bit 0 first), large enough to survive MPEG-4 compression;
``frame_number`` reads it back from a decoded frame.

Example::

    write_numbered_video(Path("numbered.mp4"), (320, 240), faces=2, seconds=10, fps=10)
    assert frame_number(VideoFrames(path).read(42)) == 42
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emolens.bench.media import face_tiles, render_frame

BITS = 20  # up to 1,048,575: a 10-hour 30 fps video


def _cell(width: int) -> int:
    return width // BITS


def stamp_number(image: np.ndarray, number: int) -> np.ndarray:
    """Write ``number`` (0 to 2**BITS - 1) into the bottom strip of ``image`` (changed in place); returns it."""
    cell = _cell(image.shape[1])
    for bit in range(BITS):
        value = 255 if number >> bit & 1 else 0
        image[-cell:, bit * cell:(bit + 1) * cell] = value
    return image


def frame_number(image: np.ndarray) -> int:
    """The number ``stamp_number`` wrote into ``image`` (read from the middle of each square)."""
    cell = _cell(image.shape[1])
    margin = cell // 4
    strip = image[-cell + margin:-margin, :].mean(axis=(0, 2))
    return sum(1 << bit for bit in range(BITS)
               if strip[bit * cell + margin:(bit + 1) * cell - margin].mean() > 127)


def write_numbered_video(path: Path, size_wh: tuple[int, int], faces: int, seconds: float,
                         fps: float = 25.0) -> Path:
    """An MPEG-4 clip of ``faces`` real faces, each frame stamped with its index; returns its path."""
    tiles = face_tiles(faces)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size_wh)
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    for index in range(int(seconds * fps)):
        writer.write(stamp_number(render_frame(tiles, size_wh, index / fps), index))
    writer.release()
    return path
