"""Several sessions side by side: the same ad shown to several groups.

Sessions are aligned on a marker of the user's choice (its first occurrence in each
session becomes time 0), or on their first frames. Their segments are matched by marker
text, so "price shown" of one group sits next to "price shown" of the other.

Example::

    offsets = alignment(timelines, "ad starts")        # seconds to subtract, per session
    comparison_table(pd.concat(tables), labels)         # one row per segment, sessions across
"""

from __future__ import annotations

import pandas as pd

from emolens.errors import EmolensError
from emolens.report.segments import GROUP
from emolens.report.timeline import Timeline

COMPARED = ("valence", "coverage", "duration_s")  # the most telling first: a wide table scrolls to the right


def alignment(timelines: list[Timeline], marker: str | None) -> list[float]:
    """Per session, the time that becomes 0: the marker's first occurrence, or the first frame.

    A marker added together with others (``"ad starts | logo"``) matches each of its parts.

    Raises:
        EmolensError: a session lacks the marker; the message lists the markers it has.
    """
    if marker is None:
        return [timeline.start_s for timeline in timelines]
    wanted = " ".join(marker.split())
    offsets = []
    for timeline in timelines:
        parts = timeline.markers["text"].str.split(" | ", regex=False)
        found = timeline.markers.loc[parts.map(lambda names: wanted in names), "time_s"]
        if found.empty:
            known = ", ".join(f'"{text}"' for text in timeline.markers["text"]) or "none"
            raise EmolensError(f'cannot align on marker "{wanted}": session {timeline.name} lacks it '
                               f"(its markers: {known})")
        offsets.append(float(found.iloc[0]))
    return offsets


def comparison_table(segments: pd.DataFrame, labels: tuple[str, ...]) -> pd.DataFrame:
    """The group rows of several sessions' segment tables, one row per marker, sessions across.

    Columns are ``(metric, session)`` pairs for duration, coverage, valence and the mean of
    each label; segments are in order of first appearance.
    """
    group = segments[segments["face"] == GROUP]
    metrics = [*COMPARED, *(f"mean_{label}" for label in labels)]
    table = group.pivot_table(index="marker", columns="session", values=metrics, sort=False, dropna=False)
    order = pd.unique(group["marker"])
    sessions = pd.unique(group["session"])
    return table.reindex(index=order, columns=pd.MultiIndex.from_product([metrics, sessions]))
