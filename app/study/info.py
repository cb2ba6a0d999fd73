"""``emolens study info``: the study's stimuli, and each session with what it saw and how well faces were found.

Example::

    print(describe_study(Path("ad-test")))
"""

from __future__ import annotations

from pathlib import Path

from emolens.report.charts import clock
from emolens.study.aggregate import load_study_data, quality_table
from emolens.study.file import load_study
from emolens.study.sessions import read_sessions, unrecorded_timelines


def describe_study(folder: Path) -> str:
    """Lines for a terminal: the study, its stimuli, then one line per session (or a hint when there is none).

    Raises:
        EmolensError: no study in ``folder``, or an unreadable session.
    """
    study = load_study(folder)
    lines = [f"study {study.name}: {len(study.stimuli)} stimuli, order {study.order} (seed {study.seed}), "
             f"baseline {study.baseline_s:g} s, excluded under {study.min_face_found:.0%} face found"]
    lines += [f"  {stimulus.name}: {stimulus.kind}, {clock(stimulus.duration_s)} ({stimulus.file})"
              for stimulus in study.stimuli]
    if not read_sessions(folder):
        return "\n".join([*lines, "no sessions yet: add them with emolens study add",
                          *(f"warning: {warning}" for warning in unrecorded_timelines(folder))])
    data = load_study_data(folder)
    quality = quality_table(data)
    lines.append(f"{len(data.sessions)} session(s):")
    for info in data.sessions:
        mine = quality[quality["participant"] == info.participant]
        seen = ", ".join(_seen(row) for row in mine.itertuples())
        lines.append(f"  {info.participant} #{info.number} {info.date[:10]}: {seen}; first stimulus at "
                     f"{info.stimulus_at_s:g} s of {Path(info.recording).name}"
                     f"{'' if info.complete else ' (incomplete)'}")
    return "\n".join([*lines, *(f"warning: {warning}" for warning in data.warnings)])


def _seen(row) -> str:
    """One stimulus of a session: face found, and how much of it the recording lacks (a quality table's row)."""
    if not row.frames:
        text = f"{row.stimulus} not in the recording"
    elif row.expected_frames > row.frames:
        text = (f"{row.stimulus} {row.face_found:.0%} face found, {1 - row.frames / row.expected_frames:.0%} of it "
                f"not recorded")
    else:
        text = f"{row.stimulus} {row.face_found:.0%} face found"
    return text + (" (excluded)" if row.excluded else "")
