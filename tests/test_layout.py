"""Where a face's bars go (``emolens.layout``): the one rule of the window and of ``--video``, as a table."""

from __future__ import annotations

import pytest

from emolens.layout import MIN_ROW_PX, beside, overlaps, place_bars

PICTURE = (0, 0, 640, 480)


@pytest.mark.parametrize(("box", "size", "gap", "others", "expected"), [
    ((100, 100, 200, 200), (80, 90), 6, [], (206, 100, 286, 190)),             # right of the box
    ((500, 100, 600, 200), (80, 90), 6, [], (414, 100, 494, 190)),             # no room on the right: left
    ((100, 100, 200, 200), (80, 90), 6, [(210, 90, 300, 210), (0, 90, 95, 210)],
     (100, 206, 180, 296)),                                                     # neighbours both sides: below
    ((200, 100, 300, 200), (100, 80), 4, [], (304, 100, 404, 180)),
    ((500, 100, 600, 200), (100, 80), 4, [(380, 90, 480, 190)], (500, 204, 600, 284)),  # left covers a face
    ((300, 400, 400, 470), (100, 80), 4, [], (404, 400, 504, 480)),            # kept inside the bottom edge
    ((200, 380, 300, 470), (100, 80), 4, [(310, 300, 400, 389), (90, 300, 190, 389)],
     (304, 390, 404, 470)),                                                     # level with the box's bottom
    ((0, 0, 640, 480), (100, 80), 4, [], None),                                 # no room anywhere
])
def test_bars_go_beside_the_face_where_they_hide_nothing(box, size, gap, others, expected):
    assert beside(box, PICTURE, size, gap, others) == expected


def panel(row_px: float) -> tuple[float, float]:
    """A renderer's panel: names 3 rows wide, bars 5, seven rows, a quarter row of padding."""
    return 8.5 * row_px, 7.5 * row_px


@pytest.mark.parametrize(("box", "others", "row_px", "expected_row_px", "where"), [
    ((100, 100, 220, 220), [], 16.0, 16.0, "beside"),
    ((100, 100, 220, 220), [(340, 0, 640, 480), (0, 0, 96, 480), (0, 226, 330, 480)], 16.0, 16.0 * 0.8,
     "beside"),                                                                 # smaller bars fit on the right
    ((0, 0, 320, 240), [(320, 0, 640, 240), (0, 240, 320, 480), (320, 240, 640, 480)], 16.0, 16.0 * 0.65,
     "inside"),                                                                 # a 2x2 gallery: inside its box
])
def test_crowded_bars_shrink_then_go_inside_the_box(box, others, row_px, expected_row_px, where):
    place, used = place_bars(box, PICTURE, row_px, 7, panel, others)
    assert used == pytest.approx(expected_row_px) and used >= MIN_ROW_PX
    assert not any(overlaps(place, other) for other in others)
    inside = box[0] <= place[0] and box[1] <= place[1] and place[2] <= box[2] and place[3] <= box[3]
    assert inside == (where == "inside")


def test_bars_inside_a_box_go_below_its_tag():
    box, tag = (0, 0, 320, 240), (0, 0, 320, 30)
    place, _ = place_bars(box, (0, 0, 320, 240), 16.0, 7, panel, [tag])
    assert place[1] >= tag[3] and place[2] == box[2]
