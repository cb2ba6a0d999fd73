"""Behaviour in reports: attention, expressiveness and blink rate per segment and per face.

Only for timelines recorded with ``--behaviour`` (they have the ``attentive``,
``expressiveness`` and ``blink`` columns); other timelines report as before. Per row of a
face, ``attention`` is its 0/1 ``attentive``, ``expressiveness`` its 0..1 score and
``blinks_per_min`` its ``blink`` (1 where a blink ended) times 60 / the frame interval, so
that the mean over any set of face rows is the attention share, the mean expressiveness and
the blink rate per minute of face time of that set. Rows the landmarker could not read are
left out of each mean.

Example::

    values = behaviour_values(timeline)            # None without behaviour columns
    html = behaviour_table_html(segment_table(timeline))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emolens.report.charts import clock
from emolens.report.styles import MISSING, styled

BEHAVIOUR_COLUMNS = ("attentive", "expressiveness", "blink")
REPORTED = {"attention": "attention share", "expressiveness": "mean expressiveness",
            "blinks_per_min": "blinks per minute"}


def has_behaviour(faces: pd.DataFrame) -> bool:
    return all(column in faces.columns for column in BEHAVIOUR_COLUMNS)


def behaviour_values(faces: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame | None:
    """Per face row: ``attention``, ``expressiveness``, ``blinks_per_min`` (see the module docstring)."""
    if not has_behaviour(faces):
        return None
    interval_s = float(np.median(np.diff(frames["time_s"]))) if len(frames) > 1 else 0.0
    per_min = 60.0 / interval_s if interval_s > 0 else np.nan
    return pd.DataFrame({"attention": faces["attentive"], "expressiveness": faces["expressiveness"],
                         "blinks_per_min": faces["blink"] * per_min}, index=faces.index).astype("float32")


def behaviour_facts(faces: pd.DataFrame, frames: pd.DataFrame) -> dict[str, str]:
    """The session's headline figures, formatted; empty without behaviour columns."""
    values = behaviour_values(faces, frames)
    if values is None:
        return {}
    means = values.mean()
    return {"attention": f"{means['attention']:.0%}", "expressiveness": f"{means['expressiveness']:.2f}",
            "blinks per minute": f"{means['blinks_per_min']:.1f}"}


def behaviour_table_html(segments: pd.DataFrame) -> str | None:
    """The behaviour columns of a segment table (``segment_table``) as HTML, or None."""
    if not all(column in segments.columns for column in REPORTED):
        return None
    shown = segments[["marker", "start_s", "face", *REPORTED]].rename(columns={**REPORTED, "marker": "segment",
                                                                                "start_s": "start"})
    return (styled(shown)
            .format(clock, subset=["start"])
            .format("{:.0%}", subset=["attention share"], na_rep=MISSING)
            .format("{:.2f}", subset=["mean expressiveness"], na_rep=MISSING)
            .format("{:.1f}", subset=["blinks per minute"], na_rep=MISSING)
            .background_gradient(cmap="Greens", vmin=0, vmax=1, subset=["attention share", "mean expressiveness"])
            .to_html())
