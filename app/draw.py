"""Draw faces on a frame with OpenCV (box, ID, top emotion, score bars) and write annotated videos.

The same picture as the live window, without Qt: each face's box in its ID's colour, a tag
``#3 happy 87%`` above it (inside the box at the frame's top edge) and a panel of score bars
beside it where it covers no other face, tag or panel, smaller or inside the box where it must
(``emolens.layout``: the window's rule, the same code). Colours come from ``emolens.palette``.
Sizes follow the box and the frame, so a small face gets small text and a 1080p frame is as
legible as a 480p one.

Example::

    draw_faces(frame.image, result.faces, analyzer.labels)   # draws in place, returns the image
    video = AnnotatedVideo("out.mp4", analyzer.labels)       # what `emolens analyze --video` writes
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from emolens.errors import EmolensError, SettingError
from emolens.layout import BAR_LENGTH_ROWS, Rect, place_bars
from emolens.native import captured_native_stderr, interrupts_held
from emolens.palette import emotion_hex, face_hex
from emolens.record import partial_path, publish
from emolens.types import Faces

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _bgr(hex_color: str) -> tuple[int, int, int]:
    red, green, blue = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return blue, green, red


def label_pixels(frame_height: int, box_width: float) -> float:
    """Text height: a 26th of the frame's height, less for a narrow box, 11 to 28 pixels."""
    return float(np.clip(min(frame_height / 26, box_width / 4.5), 11, 28))


def draw_faces(image: np.ndarray, faces: Faces, labels: Sequence[str]) -> np.ndarray:
    """Draw every face of ``faces`` on ``image`` (``uint8 (H, W, 3)`` BGR, changed in place); returns it.

    Scores drawn are ``faces.smoothed`` when present (what the window shows), else ``faces.probs``;
    IDs are ``faces.face_id`` when present, else 1..n.
    """
    _draw_all(image, faces, labels)
    return image


def _draw_all(image: np.ndarray, faces: Faces, labels: Sequence[str]) -> list[Rect]:
    """``draw_faces``'s work; returns where each face's bar panel went, in face order."""
    scores_all = faces.smoothed if faces.smoothed is not None else faces.probs
    if not len(faces) or scores_all is None:
        return []
    ids = faces.face_id if faces.face_id is not None else np.arange(1, len(faces) + 1)
    frame_h = image.shape[0]
    boxes: list[Rect] = [tuple(int(round(v)) for v in box) for box in faces.xyxy]
    colors = [_bgr(c) for c in emotion_hex(labels)]
    placed: list[Rect] = []  # tags and panels drawn so far, which later panels avoid
    panels: list[Rect] = []
    for box, face_id, scores in zip(boxes, ids, scores_all):
        color = _bgr(face_hex(int(face_id)))
        text_px = label_pixels(frame_h, box[2] - box[0])
        cv2.rectangle(image, box[:2], box[2:], color, max(2, round(text_px / 7)), cv2.LINE_AA)
        top = int(np.argmax(scores))
        placed.append(_draw_tag(image, box, f"#{int(face_id)} {labels[top]} {scores[top]:.0%}", text_px, color))
        row_px = float(np.clip((box[3] - box[1]) / len(scores), 12, text_px))
        avoid = [other for other in boxes if other is not box] + placed
        panels.append(_draw_bars(image, box, scores, labels, colors, row_px, avoid))
        placed.append(panels[-1])
    return panels


def _draw_tag(image: np.ndarray, box: Rect, text: str, text_px: float, color: tuple[int, int, int]) -> Rect:
    """``text`` on a tag of the face's colour above the box (inside it at the frame's top); returns the tag."""
    scale = cv2.getFontScaleFromHeight(_FONT, max(int(text_px * 0.75), 1), 2)
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, 2)
    pad = max(int(text_px * 0.2), 2)
    width, height = text_w + 2 * pad, text_h + baseline + 2 * pad
    top = box[1] - height if box[1] - height >= 0 else box[1]
    left = min(max(box[0], 0), max(image.shape[1] - width, 0))
    cv2.rectangle(image, (left, top), (left + width, top + height), color, cv2.FILLED)
    ink = (20, 20, 20) if sum(color) / 3 > 140 else (250, 250, 250)
    cv2.putText(image, text, (left + pad, top + pad + text_h), _FONT, scale, ink, 2, cv2.LINE_AA)
    return left, top, left + width, top + height


def _draw_bars(image: np.ndarray, box: Rect, scores: np.ndarray, labels: Sequence[str],
               colors: list[tuple[int, int, int]], row_px: float, avoid: list[Rect]) -> Rect:
    """A dark half-transparent panel of one bar per score where ``emolens.layout`` places it; returns the panel."""
    names = [label[:3] for label in labels]
    picture = (0, 0, image.shape[1], image.shape[0])
    place, row_px = place_bars(box, picture, row_px, len(scores), lambda rows_px: _bars_size(names, rows_px), avoid)
    x0, y0, x1, y1 = (int(round(value)) for value in place)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
    if cx1 > cx0 and cy1 > cy0:
        image[cy0:cy1, cx0:cx1] = (image[cy0:cy1, cx0:cx1] * 0.37).astype(np.uint8)  # black at 63%
    scale, name_w, pad = _bars_metrics(names, row_px)
    bar_w = max(x1 - x0 - name_w - 2 * pad, 0)  # a panel inside a small box is narrower than asked
    for index, (name, score) in enumerate(zip(names, scores)):
        row_top = y0 + pad + int(index * row_px)
        baseline = row_top + int(row_px * 0.78)
        cv2.putText(image, name, (x0 + pad, baseline), _FONT, scale, (235, 235, 235), 1, cv2.LINE_AA)
        bar_x, bar_y, bar_h = x0 + pad + name_w, row_top + int(row_px * 0.18), max(int(row_px * 0.64), 1)
        cv2.rectangle(image, (bar_x, bar_y), (bar_x + bar_w, bar_y + bar_h), (70, 70, 70), cv2.FILLED)
        length = int(bar_w * float(np.clip(score, 0, 1)))
        if length:
            cv2.rectangle(image, (bar_x, bar_y), (bar_x + length, bar_y + bar_h), colors[index], cv2.FILLED)
    return x0, y0, x1, y1


def _bars_metrics(names: list[str], row_px: float) -> tuple[float, int, int]:
    """The font scale, the names' column width and the padding of a bar panel with rows of ``row_px``."""
    scale = cv2.getFontScaleFromHeight(_FONT, max(int(row_px * 0.55), 1), 1)
    name_w = max(cv2.getTextSize(name, _FONT, scale, 1)[0][0] for name in names) + int(row_px * 0.3)
    return scale, name_w, int(row_px * 0.25)


def _bars_size(names: list[str], row_px: float) -> tuple[float, float]:
    """A bar panel's size for rows of ``row_px`` pixels."""
    _, name_w, pad = _bars_metrics(names, row_px)
    return name_w + int(row_px * BAR_LENGTH_ROWS) + 2 * pad, int(row_px * len(names)) + 2 * pad


_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


class AnnotatedVideo:
    """Frames with their faces drawn, written to a video file that appears only when complete.

    Frames go to a hidden temporary file beside ``path``; ``finish()`` checks that it reads back
    whole and renames it into place (replacing an older file only then), ``discard()`` removes
    it, so a failed run (a full disk included) never leaves a half-written video nor destroys
    an existing one. The first frame sets the size; a later
    frame of another size (another input) is scaled into it with black borders.

    Args:
        path: ``.mp4`` (MPEG-4 part 2) or ``.avi`` (Motion JPEG).
        labels: the model's labels, in card order.

    Raises:
        EmolensError: another extension, or a file OpenCV cannot open for writing.
    """

    def __init__(self, path: str | os.PathLike, labels: Sequence[str]):
        self.path = Path(path)
        self.labels = labels
        if self.path.suffix.lower() not in _CODECS:
            raise SettingError(f"{{video}} {self.path}: the annotated video must end in .mp4 or .avi")
        self._partial = partial_path(self.path)
        self._writer: cv2.VideoWriter | None = None
        self._size_wh: tuple[int, int] = (0, 0)
        self.frames = 0

    def write(self, image: np.ndarray, faces: Faces, fps: float) -> None:
        """Draw ``faces`` on a copy of ``image`` and append it (``fps`` is used by the first frame)."""
        if self._writer is None:
            self._size_wh = (image.shape[1] // 2 * 2, image.shape[0] // 2 * 2)  # codecs want even sizes
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*_CODECS[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._partial), fourcc, fps if fps > 0 else 25.0, self._size_wh)
            if not self._writer.isOpened():
                self._writer = None
                raise EmolensError(f"cannot write the annotated video {self.path}")
        picture = _fit(draw_faces(image.copy(), faces, self.labels), self._size_wh)
        # A Ctrl+C during the encoder's call is raised as it returns: held, so that the count stays that of the
        # frames in the file (finish() checks the file against it).
        with interrupts_held():
            self._writer.write(picture)
            self.frames += 1

    def finish(self, replace: bool = True) -> None:
        """Close the video, check that it reads back whole, and put it in place (over an older file only
        with ``replace``).

        Raises:
            EmolensError: the file does not read back with every frame (OpenCV's writer reports no
                failed write, so a full disk shows only here); it is removed, an older video kept. Or,
                without ``replace``, a file took the name meanwhile: it is left as it is, and the video
                kept under its hidden partial name (the message says which).
        """
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if not _reads_back(self._partial, self.frames):
            self._partial.unlink(missing_ok=True)
            raise EmolensError(f"cannot write the annotated video {self.path}: the file written does not read back "
                               f"whole (disk full?); it was removed and {self.path} left as it was")
        try:
            publish(self._partial, self.path, overwrite=replace)
        except FileExistsError:
            raise EmolensError(f"{self.path} appeared while the video was written and was left as it is; the video "
                               f"is kept as {self._partial}") from None
        except OSError as error:
            raise EmolensError(f"cannot put the video in place as {self.path}: {error.strerror or error}; it is kept "
                               f"as {self._partial}") from None

    def discard(self) -> None:
        """Close and remove the partial video."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._partial.unlink(missing_ok=True)


def _reads_back(path: Path, frames: int) -> bool:
    """Whether a video file opens, holds ``frames`` frames by its index, and decodes its first and last."""
    with captured_native_stderr():  # FFmpeg's own "moov atom not found"
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened() or int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) != frames:
                return False
            if not capture.read()[0]:
                return False
            capture.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
            return capture.read()[0]
        finally:
            capture.release()


def _fit(image: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size_wh``: as it is, cropped by an odd pixel, or scaled with black borders."""
    width, height = size_wh
    if image.shape[1] in (width, width + 1) and image.shape[0] in (height, height + 1):
        return image[:height, :width]
    scale = min(width / image.shape[1], height / image.shape[0])
    resized = cv2.resize(image, (max(int(image.shape[1] * scale), 1), max(int(image.shape[0] * scale), 1)),
                         interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return canvas
