"""The strongest moments of a session: for each emotion, its highest peaks, with time and face.

A peak is the highest probability of one emotion on one face within ``gap_s`` seconds, so a
smile held for ten seconds is one moment, not three hundred frames. Only peaks above ``SHOWN``
count: an emotion that no face showed has no moment (not a list of 0.00 peaks). Peaks of one face lie at
least ``gap_s`` apart; different faces may peak at the same time.

Example::

    strongest_moments(timeline, top=3)   # emotion, rank, time_s, face, probability, segment
"""

from __future__ import annotations

import pandas as pd

from emolens.report.segments import segment_bounds, segment_of
from emolens.report.timeline import Timeline

SHOWN = 0.5
"""A peak counts as a moment only above this probability."""


def strongest_moments(timeline: Timeline, top: int = 3, gap_s: float = 5.0) -> pd.DataFrame:
    """Up to ``top`` peaks per emotion, highest first.

    Columns: ``session``, ``emotion``, ``rank`` (1 = strongest), ``time_s``, ``face``,
    ``probability``, ``segment`` (the marker that opens it).
    """
    faces = timeline.faces
    window = (faces["time_s"] // gap_s).rename("window")
    best_rows = faces.groupby([faces["face_id"], window])[list(timeline.labels)].idxmax()
    picks = [_separated(faces.loc[best_rows[label], ["time_s", "face_id", label]].query(f"`{label}` > {SHOWN}")
                        .set_axis(["time_s", "face", "probability"], axis=1), top, gap_s).assign(emotion=label)
             for label in timeline.labels]
    moments = pd.concat(picks, ignore_index=True)
    moments["rank"] = moments.groupby("emotion", sort=False).cumcount() + 1
    bounds = segment_bounds(timeline)
    moments["segment"] = bounds.set_index("segment")["marker"].reindex(segment_of(bounds, moments["time_s"])).to_numpy()
    moments.insert(0, "session", timeline.name)
    return moments[["session", "emotion", "rank", "time_s", "face", "probability", "segment"]]


def _separated(candidates: pd.DataFrame, top: int, gap_s: float) -> pd.DataFrame:
    """The ``top`` highest candidates, skipping any within ``gap_s`` of a higher one on the same face.

    Candidates are one per face per window, so only neighbours across a window edge clash:
    the loop stops after a few more than ``top`` candidates.
    """
    chosen: list[tuple] = []
    for row in candidates.sort_values("probability", ascending=False, kind="stable").itertuples(index=False):
        if all(row.face != face or abs(row.time_s - time_s) >= gap_s for time_s, face, _ in chosen):
            chosen.append(tuple(row))
            if len(chosen) == top:
                break
    # Typed as the candidates: an emotion with no peak gives an empty frame, and concatenating it would turn the
    # numbers into objects that the CSV writes unrounded.
    return pd.DataFrame(chosen, columns=candidates.columns).astype(candidates.dtypes.to_dict())
