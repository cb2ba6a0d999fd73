"""What each face and the group felt between consecutive markers.

A session is cut at its markers: the first segment, ``(before first marker)``, runs from the
first frame to the first marker, each later one from its marker to the next marker or the
session's end. That name is in parentheses so that no marker a user types or presets (the
window's preset "start", say) is renamed to make room for it.
Segments that hold no frame are left out; a marker text used twice is numbered
(``logo``, ``logo (2)``). Frames are taken as equal slices of time, so at a steady frame
rate a share of frames is a share of time.

Valence, per face row and then averaged: the probability of ``happy`` minus the largest of
``angry``, ``disgust``, ``fear`` and ``sad``, in [-1, 1]; ``surprise`` (pleasant or not) and
``neutral`` count as neither. A model without some of these labels uses those it has.

``segment_table`` columns, one ``face == "all"`` row per segment for the group, then one
row per face seen in it::

    session, segment (1-based), marker, start_s, end_s, duration_s, face, frames (of the segment)
    coverage          share of the segment's frames showing the face ("all": any face)
    mean_<label>      mean probability over the face's rows ("all": over every face row)
    dominant_<label>  share of those rows in which the label had the highest probability
    valence           mean valence over those rows
    attention, expressiveness, blinks_per_min    with behaviour columns only (emolens.report.behaviour)

Example::

    table = segment_table(timeline)
    table[table["face"] == "all"][["marker", "duration_s", "valence"]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolens.report.behaviour import behaviour_values, has_behaviour
from emolens.report.timeline import Timeline, numbered

POSITIVE = ("happy",)
NEGATIVE = ("angry", "disgust", "fear", "sad")
VALENCE_DEFINITION = ("valence = p(happy) − max(p(angry), p(disgust), p(fear), p(sad)) per face and frame, "
                      "averaged; from −1 (clearly negative) to +1 (clearly happy); "
                      "surprise and neutral count as neither")
BEFORE_FIRST_MARKER = "(before first marker)"
GROUP = "all"


def valence(faces: pd.DataFrame, labels: tuple[str, ...]) -> pd.Series:
    """Valence of each row of probabilities (see the module docstring); float32."""
    positive = [label for label in labels if label in POSITIVE]
    negative = [label for label in labels if label in NEGATIVE]
    pleasant = faces[positive].sum(axis=1) if positive else 0.0
    unpleasant = faces[negative].max(axis=1) if negative else 0.0
    return (pleasant - unpleasant).astype("float32").rename("valence")


def group_curve(timeline: Timeline) -> pd.DataFrame:
    """The mean over the faces of each frame: ``time_s``, one column per label, ``valence`` (and ``attentive``)."""
    faces = timeline.faces[["frame", "time_s", *timeline.labels, *(["attentive"] if has_behaviour(timeline.faces) else [])]]
    return faces.assign(valence=valence(faces, timeline.labels)).groupby("frame", sort=False).mean()


def segment_bounds(timeline: Timeline) -> pd.DataFrame:
    """The segments that hold frames: ``segment``, ``marker``, ``start_s``, ``end_s``, ``duration_s``."""
    starts = np.concatenate([[timeline.start_s], timeline.markers["time_s"]])
    bounds = pd.DataFrame({"marker": [BEFORE_FIRST_MARKER, *timeline.markers["text"]], "start_s": starts})
    bounds["end_s"] = bounds["start_s"].shift(-1).fillna(timeline.end_s)
    bounds["duration_s"] = bounds["end_s"] - bounds["start_s"]
    frames = np.bincount(_position(starts, timeline.frames["time_s"]), minlength=len(bounds))
    bounds = bounds[frames > 0].reset_index(drop=True)
    bounds["marker"] = numbered(bounds["marker"])
    bounds.insert(0, "segment", np.arange(1, len(bounds) + 1))
    return bounds


def segment_of(bounds: pd.DataFrame, times_s: pd.Series) -> np.ndarray:
    """The segment number each time falls in (``bounds`` from ``segment_bounds``)."""
    return bounds["segment"].to_numpy()[_position(bounds["start_s"].to_numpy(), times_s)]


def segment_table(timeline: Timeline) -> pd.DataFrame:
    """Per segment: the group's and each face's numbers (columns in the module docstring)."""
    bounds = segment_bounds(timeline)
    faces, labels = timeline.faces, list(timeline.labels)
    seen = timeline.frames["faces"].gt(0).groupby(segment_of(bounds, timeline.frames["time_s"])).agg(["size", "mean"])
    values = pd.concat([faces[labels].add_prefix("mean_"),
                        pd.get_dummies(faces["dominant"], prefix="dominant", dtype="float32"),
                        valence(faces, timeline.labels), behaviour_values(faces, timeline.frames)], axis=1)
    segment = pd.Series(segment_of(bounds, faces["time_s"]), name="segment")
    per_face = values.groupby([segment, faces["face_id"]])
    group = values.groupby(segment).mean().reindex(bounds["segment"])

    face_rows = per_face.mean().reset_index()
    face_rows["coverage"] = per_face.size().to_numpy() / seen["size"].reindex(face_rows["segment"]).to_numpy()
    face_rows["face"] = face_rows.pop("face_id").astype(str)
    group_rows = group.reset_index().assign(face=GROUP, coverage=seen["mean"].to_numpy())
    rows = pd.concat([group_rows, face_rows], ignore_index=True)
    rows["frames"] = seen["size"].reindex(rows["segment"]).to_numpy()
    rows = bounds.merge(rows, on="segment").sort_values(["segment", "face"], key=_group_first, kind="stable")
    rows.insert(0, "session", timeline.name)
    columns = ["session", *bounds.columns, "face", "frames", "coverage", *values.columns]
    return rows[columns].reset_index(drop=True)


def _position(starts: np.ndarray, times_s: pd.Series) -> np.ndarray:
    """Index of the last start at or before each time."""
    return np.searchsorted(starts, times_s.to_numpy(), side="right") - 1


def _group_first(column: pd.Series) -> pd.Series:
    """Sort key: the group row before the faces, faces by number."""
    if column.name != "face":
        return column
    return pd.to_numeric(column, errors="coerce").fillna(-1)
