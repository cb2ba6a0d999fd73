"""Each emotion has one colour in the live window and in the report."""

from emolens.evaluation.labels import FER2013_LABELS
from emolens.gui.drawing import emotion_colors
from emolens.palette import EMOTION_COLORS
from emolens.report.charts import colours


def test_window_and_report_draw_each_emotion_in_the_same_colour():
    labels = list(FER2013_LABELS)
    window = [color.name() for color in emotion_colors(labels)]
    assert window == colours(labels)
    assert len(set(window)) == len(labels)


def test_unknown_labels_get_distinct_spare_colours_and_valence_its_own():
    happy, contempt, pride, valence = colours(["happy", "contempt", "pride", "valence"])
    assert happy == EMOTION_COLORS["happy"]
    assert contempt != pride and {contempt, pride}.isdisjoint(EMOTION_COLORS.values())
    assert valence == "#222222"
