"""Where a face's score bars go: the one placement rule of the window and of ``--video``, as plain geometry.

Rectangles are ``(x0, y0, x1, y1)`` in pixels of the picture. The bars go right of the face's box,
else left, else below (each also tried level with the box's bottom): the first place that lies in the
picture and covers nothing to avoid (other faces, their tags and bars). Where none does, smaller bars
are tried; a face with no room around it (a close-up video-call grid) gets its bars inside its own
box, small, in its top right corner below anything to avoid there. Each renderer measures its own
text: ``place_bars`` asks it for a panel's size at a row height.

Example::

    panel, row_px = place_bars(box, (0, 0, width, height), row_px=16, rows=7,
                               panel_size=lambda row_px: (6 * row_px, 7.5 * row_px), avoid=placed)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Rect = tuple[float, float, float, float]

BAR_LENGTH_ROWS = 5.0
"""A full bar is this many rows long."""
BAR_SCALES = (0.8, 0.65)
"""Smaller bars tried beside the face before bars inside its box..."""
MIN_ROW_PX = 9.0
"""...but no smaller than this."""
GAP_ROWS = 0.3
"""The gap between a box and its bars, in rows."""


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share some area (touching edges do not count)."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def contains(outer: Rect, inner: Rect) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def beside(box: Rect, picture: Rect, size: tuple[float, float], gap: float, avoid: Sequence[Rect]) -> Rect | None:
    """The first of the six places beside ``box`` that lies in ``picture`` and covers nothing in ``avoid``."""
    width, height = size
    top = _clamp(box[1], picture[1], picture[3] - height)
    low = _clamp(box[3] - height, picture[1], picture[3] - height)
    left = _clamp(box[0], picture[0], picture[2] - width)
    right_edge = _clamp(box[2] - width, picture[0], picture[2] - width)
    corners = [(box[2] + gap, top), (box[0] - gap - width, top), (left, box[3] + gap),
               (box[2] + gap, low), (box[0] - gap - width, low), (right_edge, box[3] + gap)]
    for x, y in corners:
        place = (x, y, x + width, y + height)
        if contains(picture, place) and not any(overlaps(place, other) for other in avoid):
            return place
    return None


def inside(box: Rect, picture: Rect, size: tuple[float, float], avoid: Sequence[Rect]) -> Rect:
    """``size`` in the top right corner of ``box``, below anything in ``avoid`` there (its tag), else in the
    bottom right corner; kept in the picture."""
    width, height = size
    right = min(box[2], picture[2]) - width
    top = _clamp(box[1], picture[1], picture[3] - height)
    for other in avoid:
        if overlaps(other, (right, top, right + width, top + height)):
            top = max(top, other[3] + 1)
    if top + height <= min(box[3], picture[3]):
        return right, top, right + width, top + height
    bottom = min(box[3], picture[3]) - height
    return right, bottom, right + width, bottom + height


def place_bars(box: Rect, picture: Rect, row_px: float, rows: int,
               panel_size: Callable[[float], tuple[float, float]], avoid: Sequence[Rect]) -> tuple[Rect, float]:
    """Where a face's panel of ``rows`` bars goes, and the row height it was placed at.

    Args:
        row_px: the row height wanted; smaller ones (``BAR_SCALES``, at least ``MIN_ROW_PX``) are tried next.
        panel_size: the renderer's panel size ``(width, height)`` at a row height (it measures its text).
    """
    for scaled in [row_px, *(row_px * scale for scale in BAR_SCALES if row_px * scale >= MIN_ROW_PX)]:
        place = beside(box, picture, panel_size(scaled), scaled * GAP_ROWS, avoid)
        if place is not None:
            return place, scaled
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    row_px = min(max(row_px * BAR_SCALES[-1], MIN_ROW_PX), max(box_h * 0.9 / (rows + 0.5), 4.0))
    width, height = panel_size(row_px)
    return inside(box, picture, (min(width, box_w), min(height, box_h)), avoid), row_px
