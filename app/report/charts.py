"""Timeline charts as PNG files: the emotions of a face or the group over time, markers as lines.

Charts use matplotlib's object API (``Figure``, rendered by Agg), never pyplot, so they hold
no global state and can be drawn from a worker thread. A chart shows at most
``CHART_POINTS`` points per line, each the mean over its slice of time, so an hour-long
session draws as fast as a minute; slices in which the face was not seen stay empty and
leave a gap in the line. The tables use every row.

Example::

    emotion_chart(curve, labels, timeline.markers, "face 1", Path("face1.png"), 0.0, timeline.end_s)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from emolens.palette import emotion_hex
from emolens.report.confidence import CONFIDENCE, bootstrap_band

CHART_POINTS = 1200
NAMED_SESSIONS = 3  # more sessions than this are compared as their mean and band
_VALENCE_COLOUR = {"valence": "#222222"}


def colours(names: Sequence[str]) -> list[str]:
    """A colour per series: the live window's colour for each emotion, near-black for valence."""
    return emotion_hex(names, extra=_VALENCE_COLOUR)


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour), tenths when the time is not whole: 75.5 -> ``1:15.5``."""
    seconds = round(seconds, 1)  # the sign after rounding: -0.04 is 0:00, not -0:00
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    rest_text = f"{rest:02.0f}" if rest == int(rest) else f"{rest:04.1f}"
    return f"{sign}{hours}:{minutes:02d}:{rest_text}" if hours else f"{sign}{minutes}:{rest_text}"


def emotion_chart(curve: pd.DataFrame, labels: Sequence[str], markers: pd.DataFrame, title: str, path: Path,
                  start_s: float, end_s: float, size_in: tuple[float, float] = (12, 3.2), legend: bool = True) -> Path:
    """Draw ``curve`` (``time_s`` and one probability column per label) over [start_s, end_s].

    An ``attentive`` column in ``curve`` is drawn as a grey "attention" area (0..1): only markers are dashed.
    ``markers`` (``time_s``, ``text``) become labelled vertical lines; ``size_in`` is the
    figure's size in inches at 100 dpi. Returns ``path``.
    """
    figure = Figure(figsize=size_in, dpi=100, layout="constrained")
    axes = figure.add_subplot()
    attention = ["attentive"] if "attentive" in curve.columns else []
    binned = _binned(curve, [*labels, *attention], start_s, end_s)
    for label, colour in zip(labels, colours(labels)):
        axes.plot(binned.index, binned[label], color=colour, linewidth=1.4, label=label)
    if attention:  # share of faces looking at the camera: an area, so that a flickering one draws no dashed lines
        axes.fill_between(binned.index, binned["attentive"], color="#555555", alpha=0.15, linewidth=0,
                          label="attention")
    axes.set(xlim=(start_s, max(end_s, start_s + 1e-3)), ylim=(0, 1), ylabel="probability")  # one frame: no empty span
    axes.set_title(title, loc="left", fontsize=11)
    _time_axis(axes)
    if legend:
        figure.legend(*axes.get_legend_handles_labels(), loc="outside right center", frameon=False)
    _draw_markers(axes, markers["time_s"], markers["text"])  # last: it needs the axes' final size
    figure.savefig(path)
    return path


def comparison_chart(curves: dict[str, pd.DataFrame], columns: Sequence[str], align_text: str, path: Path) -> Path:
    """One panel per column (emotions, valence), time 0 at the alignment.

    ``curves`` maps session names to frames of ``time_s`` (already shifted) and ``columns``. Up to
    ``NAMED_SESSIONS`` sessions are drawn one coloured line each; more are drawn as their mean with its 95%
    bootstrap band over sessions (``emolens.report.confidence``) over each session as a thin grey line, so ten
    sessions read as one curve and its spread, not ten tangled lines.
    """
    rows = -(-len(columns) // 2)
    figure = Figure(figsize=(12, 1.9 * rows + 0.6), dpi=100, layout="constrained")
    panels = figure.subplots(rows, 2, sharex=True, squeeze=False).ravel()
    seen = [curve for curve in curves.values() if len(curve)]  # a session with no face has no curve
    start_s, end_s = ((min(curve["time_s"].min() for curve in seen), max(curve["time_s"].max() for curve in seen))
                      if seen else (0.0, 1.0))
    width = max((_slice_width(curve, start_s, end_s) for curve in seen), default=1.0)  # one grid for every session
    binned = {name: _binned(curve, list(columns), start_s, end_s, width) for name, curve in curves.items()}
    for number, (axes, column) in enumerate(zip(panels, columns)):
        if len(curves) > NAMED_SESSIONS:
            _draw_group(axes, pd.concat({name: means[column] for name, means in binned.items()}, axis=1),
                        np.random.default_rng(number))
        else:
            for (name, means), colour in zip(binned.items(), cycle(matplotlib.colormaps["tab10"].colors)):
                axes.plot(means.index, means[column], color=colour, linewidth=1.2, label=name)
        _draw_markers(axes, [0.0], [align_text])
        axes.set_title(column, loc="left", fontsize=10)
        axes.set_ylim(-1 if column == "valence" else 0, 1)
        _time_axis(axes)
    panels[0].set_xlim(start_s, max(end_s, start_s + 1e-3))  # shared: not autoscaled around a faceless session's NaN
    for axes in panels[len(columns):]:
        axes.set_visible(False)
    figure.legend(*panels[0].get_legend_handles_labels(), loc="outside upper center", ncols=min(len(curves), 4),
                  frameon=False)
    figure.savefig(path)
    return path


def _draw_group(axes: Axes, sessions: pd.DataFrame, rng: np.random.Generator) -> None:
    """Each session (a column of ``sessions``, indexed by time) thin and grey, their mean and its band on top."""
    for name in sessions.columns:
        axes.plot(sessions.index, sessions[name], color="#b5b5b5", linewidth=0.6,
                  label="one session" if name == sessions.columns[0] else None)
    values = sessions.to_numpy(np.float64).T
    low, high = bootstrap_band(values, rng)
    axes.fill_between(sessions.index, low, high, color="#1f5fa8", alpha=0.22, linewidth=0,
                      label=f"{CONFIDENCE:.0%} band (bootstrap over sessions)")
    with warnings.catch_warnings():  # a time at which no session saw a face: NaN, a gap in the line
        warnings.simplefilter("ignore", RuntimeWarning)
        axes.plot(sessions.index, np.nanmean(values, axis=0), color="#1f5fa8", linewidth=1.8,
                  label=f"mean of {len(sessions.columns)} sessions")


def _slice_width(curve: pd.DataFrame, start_s: float, end_s: float) -> float:
    """The time slice one chart point stands for: ``CHART_POINTS`` over the span, 1.5 frame intervals at the
    least, so that at a steady frame rate no slice falls between two frames."""
    times = curve["time_s"].to_numpy()
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    return max((end_s - start_s) / CHART_POINTS, 1.5 * step, 1e-3)


def _binned(curve: pd.DataFrame, columns: list[str], start_s: float, end_s: float,
            width: float | None = None) -> pd.DataFrame:
    """Means of ``columns`` per slice of time (``width`` seconds, by default ``_slice_width``'s), indexed by the
    slice's centre; empty slices are NaN."""
    width = width or _slice_width(curve, start_s, end_s)
    slices = ((curve["time_s"].to_numpy() - start_s) // width).astype(np.int64)
    means = curve[columns].groupby(slices).mean()
    means = means.reindex(np.arange(int(np.ceil((end_s - start_s) / width)) + 1))
    means.index = start_s + (means.index + 0.5) * width
    return means


def _draw_markers(axes: Axes, times_s: Sequence[float], texts: Sequence[str]) -> list:
    """Dashed lines at ``times_s``; their texts upright beside them, pushed apart where markers are
    closer than a line of text (a thin leader joins a pushed text to its line). Returns the texts."""
    times = np.asarray(times_s, dtype=float)
    for time_s in times:
        axes.axvline(time_s, color="#444444", linestyle="--", linewidth=0.9)
    if not len(times):
        return []
    order = np.argsort(times, kind="stable")
    left, right = axes.get_xlim()
    gap, places = 0.0, times[order]
    if len(times) > 1:
        figure = axes.get_figure()
        figure.draw_without_rendering()  # lay the figure out first: the axes' size in pixels is final
        gap = _MARKER_TEXT_PT * figure.dpi / 72 * 1.35 / axes.get_window_extent().width * (right - left)  # seconds
        places = spread(times[order], gap, left + gap, right)
    labels = []
    for index, place in zip(order, places):
        label = axes.text(place, 0.97, f" {texts[index]} ", transform=axes.get_xaxis_transform(), rotation=90,
                          ha="right", va="top", fontsize=_MARKER_TEXT_PT, color="#222222", in_layout=False,
                          bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
        if gap and abs(place - times[index]) > gap / 4:
            axes.plot([times[index], place - gap / 2], [0.99, 0.99], transform=axes.get_xaxis_transform(),
                      color="#888888", linewidth=0.7, clip_on=False)
        labels.append(label)
    return labels


_MARKER_TEXT_PT = 8


def spread(positions: np.ndarray, gap: float, low: float, high: float) -> np.ndarray:
    """Sorted ``positions`` moved as little as a sweep each way allows so that neighbours are at
    least ``gap`` apart within [low, high] (where they cannot all fit, the gaps shrink evenly)."""
    count = len(positions)
    if count and (count - 1) * gap > high - low:
        gap = (high - low) / max(count - 1, 1)
    placed = np.clip(np.asarray(positions, dtype=float), low, high)
    for index in range(1, count):
        placed[index] = max(placed[index], placed[index - 1] + gap)
    if count:
        placed[-1] = min(placed[-1], high)
    for index in range(count - 2, -1, -1):
        placed[index] = min(placed[index], placed[index + 1] - gap)
    return placed


def _time_axis(axes: Axes) -> None:
    axes.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 1.5, 2, 3, 5, 6, 10]))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: clock(seconds)))
    axes.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    axes.spines[["top", "right"]].set_visible(False)
