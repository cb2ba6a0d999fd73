"""A study's charts (PNG, matplotlib's object API like ``emolens.report.charts``) and stimulus thumbnails.

Example::

    stimulus_chart(curves_of_one_stimulus, measures, "ad_a", Path("ad_a.png"))
    thumbnail(Path("stimuli/ad_a.mp4"), "video", 12.5)      # a JPEG data URI of the frame at 12.5 s
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path

import cv2
import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from emolens.report.charts import clock, colours

THUMBNAIL_WIDTH = 240
_SHARE_COLOUR = "#9aa5b1"


def measure_limits(measure: str, corrected: bool) -> tuple[float, float]:
    """The y range of a measure: probabilities 0..1, valence and baseline-corrected values -1..1."""
    return (-1.0, 1.0) if corrected or measure == "valence" else (0.0, 1.0)


def stimulus_chart(curves: pd.DataFrame, measures: Sequence[str], title: str, path: Path,
                   corrected: bool = False) -> Path:
    """One panel per measure: the mean over viewers per second with its band, the share of viewers
    expressing it (grey steps; not in the corrected view), and beneath, the viewers with a face per second."""
    rows = -(-len(measures) // 2)
    figure = Figure(figsize=(12, 1.7 * rows + 1.6), dpi=100, layout="constrained")
    grid = figure.add_gridspec(rows + 1, 2, height_ratios=[1] * rows + [0.6])
    first = None
    for index, (measure, colour) in enumerate(zip(measures, colours(measures))):
        axes = figure.add_subplot(grid[index // 2, index % 2], sharex=first)
        first = first or axes
        curve = curves[curves["measure"] == measure]
        centres = curve["second"] + 0.5
        if not corrected:
            edges = [*curve["second"], curve["second"].max() + 1]  # steps span each whole second, the last too
            axes.fill_between(edges, [*curve["share_expressing"], curve["share_expressing"].iloc[-1]], step="post",
                              color=_SHARE_COLOUR,
                              alpha=0.35, linewidth=0, label="share expressing")
        axes.fill_between(centres, curve["ci_low"], curve["ci_high"], color=colour, alpha=0.25, linewidth=0,
                          label="95% band")
        axes.plot(centres, curve["mean"], color=colour, linewidth=1.6, label="mean")
        if corrected:
            axes.axhline(0, color="#888888", linewidth=0.8)
        axes.set_ylim(*measure_limits(measure, corrected))
        axes.set_title(measure, loc="left", fontsize=10)
        _time_axis(axes)
    viewers = figure.add_subplot(grid[rows, :], sharex=first)
    counts = curves[curves["measure"] == measures[0]]
    viewers.bar(counts["second"] + 0.5, counts["viewers_with_face"], width=0.9, color="#6b7b8c")
    viewers.set_ylim(0, max(1, int(counts["viewers"].max()) if len(counts) else 1))
    viewers.set_title("viewers with a face found", loc="left", fontsize=10)
    viewers.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    _time_axis(viewers)
    end = float(counts["second"].max() + 1) if len(counts) else 1.0
    first.set_xlim(0, end)
    figure.suptitle(title, x=0.01, ha="left", fontsize=12)
    figure.savefig(path)
    return path


def comparison_chart(curves: pd.DataFrame, measures: Sequence[str], path: Path) -> Path:
    """The stimuli overlaid: one panel per measure, one line (with its band) per stimulus, from second 0."""
    rows = -(-len(measures) // 2)
    figure = Figure(figsize=(12, 1.8 * rows + 0.7), dpi=100, layout="constrained")
    panels = figure.subplots(rows, 2, sharex=True, squeeze=False).ravel()
    stimuli = list(pd.unique(curves["stimulus"]))
    for axes, measure in zip(panels, measures):
        for stimulus, colour in zip(stimuli, cycle(matplotlib.colormaps["tab10"].colors)):
            curve = curves[(curves["stimulus"] == stimulus) & (curves["measure"] == measure)]
            centres = curve["second"] + 0.5
            axes.fill_between(centres, curve["ci_low"], curve["ci_high"], color=colour, alpha=0.2, linewidth=0)
            axes.plot(centres, curve["mean"], color=colour, linewidth=1.5, label=stimulus)
        axes.set_ylim(*measure_limits(measure, False))
        axes.set_title(measure, loc="left", fontsize=10)
        _time_axis(axes)
    for axes in panels[len(measures):]:
        axes.set_visible(False)
    panels[0].set_xlim(0, float(curves["second"].max() + 1))
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside upper center", ncols=min(len(stimuli), 6),
                  frameon=False)
    figure.savefig(path)
    return path


def thumbnail(path: Path, kind: str, t_s: float) -> str | None:
    """The stimulus's frame at ``t_s`` (an image: itself), ``THUMBNAIL_WIDTH`` wide, as a JPEG data URI;
    None when it cannot be read."""
    if kind == "image":
        image = cv2.imread(str(path))
    else:
        capture = cv2.VideoCapture(str(path))
        try:
            capture.set(cv2.CAP_PROP_POS_MSEC, max(t_s, 0.0) * 1000)
            ok, image = capture.read()
        finally:
            capture.release()
        image = image if ok else None
    if image is None:
        return None
    height = max(1, round(image.shape[0] * THUMBNAIL_WIDTH / image.shape[1]))
    small = cv2.resize(image, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii") if ok else None


def _time_axis(axes: Axes) -> None:
    axes.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 5, 10], integer=True))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: clock(seconds)))
    axes.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    axes.spines[["top", "right"]].set_visible(False)

