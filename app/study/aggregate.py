"""A study's numbers: each viewer per second of each stimulus, and the viewers together.

Per viewer (a session), stimulus and second ``s`` of the stimulus (``s <= stimulus_t_s < s + 1``):
the mean over the face rows of that second of each emotion's probability, of valence (see
``emolens.report.segments``) and, recorded with ``--behaviour``, of attention (1: head towards
the screen). That per-second mean is the viewer's smoothed score. Over the viewers:

- **mean**: the mean of the viewers with a face in that second;
- **95% confidence band**: a percentile bootstrap over viewers: the viewers are resampled with
  replacement ``BOOTSTRAP_RESAMPLES`` times (seeded by the study's seed), the mean is taken in each
  resample, and the band runs from its 2.5th to its 97.5th percentile;
- **share expressing**: the share of those viewers whose smoothed score is above ``EXPRESSING``;
- **viewers with a face**: how many viewers had a face found in that second.

A viewer whose face is found in less than the study's ``min_face_found`` share of a stimulus's
frames is excluded from that stimulus's aggregates (the quality table says so). The baseline-corrected
view subtracts each viewer's mean over the baseline (the seconds before the first stimulus) first;
viewers without a face in the baseline are left out of it.

Example::

    data = load_study_data(Path("ad-test"))
    seconds = viewer_seconds(data)                      # participant, stimulus, second, measures
    curves = aggregate_curves(data, seconds, quality_table(data))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emolens.errors import EmolensError
from emolens.report.confidence import BOOTSTRAP_RESAMPLES, CONFIDENCE, bootstrap_band
from emolens.report.segments import valence
from emolens.report.timeline import Timeline, load_timelines
from emolens.study.file import StudyFile, load_study
from emolens.study.sessions import SessionInfo, read_sessions, unrecorded_timelines

EXPRESSING = 0.5
"""A viewer expresses a measure in a second when their per-second mean score is above this."""
BOOTSTRAP_TEXT = (f"{CONFIDENCE:.0%} confidence band: percentile bootstrap over viewers ({BOOTSTRAP_RESAMPLES} "
                  f"resamples of the viewers with replacement, the mean of each; the band spans the middle "
                  f"{CONFIDENCE:.0%} of those means)")
RAW, CORRECTED = "raw", "baseline-corrected"
COMPARISON_COLUMNS = ["stimulus", "measure", "viewers", "mean", "mean_low", "mean_high", "peak", "peak_low",
                      "peak_high", "peak_second", "above_baseline", "above_baseline_low", "above_baseline_high"]
"""comparison.csv's columns, in every study (empty where a figure does not apply: no baseline, no viewer)."""


@dataclass(frozen=True)
class StudyData:
    """A study file and its sessions' sidecars and timelines (one timeline per session)."""

    folder: Path
    study: StudyFile
    sessions: list[SessionInfo]
    timelines: list[Timeline]
    warnings: list[str]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.timelines[0].labels if self.timelines else ()

    @property
    def measures(self) -> list[str]:
        """The emotions, valence, and attention where every session has it."""
        attention = bool(self.timelines) and all("attentive" in t.faces.columns for t in self.timelines)
        return [*self.labels, "valence", *(["attention"] if attention else [])]


def load_study_data(folder: Path) -> StudyData:
    """Read the study file, every sidecar and timeline.

    Raises:
        EmolensError: no study, no sessions, an unreadable session, or sessions with different labels.
    """
    study = load_study(folder)
    pairs = read_sessions(folder)
    notes = unrecorded_timelines(folder)
    if not pairs:
        raise EmolensError(f"the study {folder} has no sessions yet: add them with emolens study add"
                           + (f" ({notes[0]})" if notes else ""))
    timelines = []
    for info, path in pairs:
        loaded, warned = load_timelines(path)
        timelines.append(loaded[0])
        notes += warned
    if len({timeline.labels for timeline in timelines}) > 1:
        raise EmolensError("the sessions were recorded with different emotion labels (models); a study needs one")
    return StudyData(Path(folder), study, [info for info, _ in pairs], timelines, notes)


def study_frames(data: StudyData) -> pd.DataFrame:
    """Tidy face rows of every session: ``participant``, ``stimulus``, ``stimulus_t_s``, ``second``,
    ``time_s``, ``frame``, ``face_id``, the emotions, ``valence`` and ``attention`` (where recorded)."""
    parts = []
    for info, timeline in zip(data.sessions, data.timelines):
        faces = timeline.faces
        part = pd.DataFrame({"participant": info.participant, "stimulus": faces.get("stimulus"),
                             "stimulus_t_s": faces.get("stimulus_t_s"), "time_s": faces["time_s"],
                             "frame": faces["frame"], "face_id": faces["face_id"]})
        part = pd.concat([part, faces[list(data.labels)], valence(faces, data.labels)], axis=1)
        if "attention" in data.measures:
            part["attention"] = faces["attentive"]
        parts.append(part)
    frames = pd.concat(parts, ignore_index=True)
    frames.insert(4, "second", np.floor(frames["stimulus_t_s"]).astype("Int64"))
    return frames


def viewer_seconds(data: StudyData, frames: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each viewer's smoothed score: per ``participant``, ``stimulus`` and ``second``, the mean of each measure
    over the face rows of that second."""
    frames = study_frames(data) if frames is None else frames
    shown = frames[frames["stimulus"].notna()]
    return (shown.groupby(["participant", "stimulus", "second"], sort=False)[data.measures].mean()
            .reset_index().astype({"second": "int64"}))


def baseline_means(data: StudyData, frames: pd.DataFrame) -> pd.DataFrame:
    """Each viewer's mean of each measure over their baseline (indexed by participant; NaN without a face)."""
    rows = []
    for info in data.sessions:
        mine = frames[frames["participant"] == info.participant]
        if info.baseline_s is not None:
            mine = mine[(mine["time_s"] >= info.baseline_s[0]) & (mine["time_s"] < info.baseline_s[1])]
        else:
            mine = mine.iloc[:0]
        rows.append(mine[data.measures].mean().rename(info.participant))
    return pd.DataFrame(rows, columns=data.measures)


def quality_table(data: StudyData) -> pd.DataFrame:
    """Per viewer and stimulus: ``expected_frames`` (the frames recorded while it was shown, and as many more as
    the recording's frame rate gives the part of it the recording does not cover), ``frames`` (recorded),
    ``recorded`` (share of the stimulus's time the recording covers), ``face_found`` (share of the expected
    frames with a face), ``several_faces`` (share of the recorded frames with more than one), ``head_turn_deg``
    (mean angle of the head away from the screen, where recorded with behaviour), ``excluded`` (face found under
    the study's ``min_face_found``: missing frames count as frames without a face)."""
    rows = []
    for info, timeline in zip(data.sessions, data.timelines):
        frames, faces = timeline.frames, timeline.faces
        interval = frame_interval(frames)
        starts = {placement.stimulus: placement.start_s for placement in info.placements}
        for stimulus in info.order:
            shown = frames[frames["stimulus"] == stimulus]
            duration = data.study.stimulus(stimulus).duration_s
            covered = recorded_seconds(frames, interval, starts.get(stimulus), duration)
            expected = len(shown) + (round((duration - covered) / interval) if interval > 0 else 0)
            turn = np.nan
            if {"yaw", "pitch", "stimulus"} <= set(faces.columns):
                pose = faces.loc[faces["stimulus"] == stimulus, ["yaw", "pitch"]].astype("float64")
                turn = np.degrees(np.arccos(np.cos(np.radians(pose["yaw"])) * np.cos(np.radians(pose["pitch"])))).mean()
            found = shown["faces"].gt(0).sum() / expected if expected else 0.0
            rows.append({"participant": info.participant, "stimulus": stimulus, "expected_frames": expected,
                         "frames": len(shown), "recorded": covered / duration, "face_found": found,
                         "several_faces": shown["faces"].gt(1).mean() if len(shown) else 0.0,
                         "head_turn_deg": turn, "excluded": found < data.study.min_face_found})
    return pd.DataFrame(rows)


def frame_interval(frames: pd.DataFrame) -> float:
    """A timeline's frame interval: the median time between its frames (0 with a single frame)."""
    return float(np.median(np.diff(frames["time_s"]))) if len(frames) > 1 else 0.0


def recorded_seconds(frames: pd.DataFrame, interval: float, start_s: float | None, duration_s: float) -> float:
    """How much of a stimulus shown from ``start_s`` for ``duration_s`` the recording covers (from its first frame
    to one ``interval`` after its last); 0 when it was never placed in it."""
    if start_s is None or frames.empty:
        return 0.0
    first, last = float(frames["time_s"].iloc[0]), float(frames["time_s"].iloc[-1]) + interval
    return max(min(last, start_s + duration_s) - max(first, start_s), 0.0)


def aggregate_curves(data: StudyData, seconds: pd.DataFrame, quality: pd.DataFrame,
                     baselines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per ``view`` (raw; baseline-corrected with ``baselines``), ``stimulus``, ``measure`` and ``second``:
    ``mean``, ``ci_low``, ``ci_high``, ``share_expressing`` (raw view only), ``viewers_with_face``, ``viewers``
    (included in the aggregate)."""
    parts = []
    for index, stimulus in enumerate(data.study.stimuli):
        matrices = viewer_matrices(data, seconds, quality, stimulus.name)
        views = {RAW: matrices}
        if baselines is not None:
            views[CORRECTED] = {measure: matrix.sub(baselines[measure], axis=0).dropna(how="all")
                                for measure, matrix in matrices.items()}
        for view, by_measure in views.items():
            for number, (measure, matrix) in enumerate(by_measure.items()):
                rng = np.random.default_rng([data.study.seed, index, number])
                parts.append(_curve(matrix, rng, share=view == RAW).assign(view=view, stimulus=stimulus.name,
                                                                            measure=measure))
    curves = pd.concat(parts, ignore_index=True)
    return curves[["view", "stimulus", "measure", "second", "mean", "ci_low", "ci_high", "share_expressing",
                   "viewers_with_face", "viewers"]]


def viewer_matrices(data: StudyData, seconds: pd.DataFrame, quality: pd.DataFrame, stimulus: str
                    ) -> dict[str, pd.DataFrame]:
    """Per measure, the included viewers (rows) by the stimulus's seconds (columns), NaN without a face."""
    duration = data.study.stimulus(stimulus).duration_s
    excluded = set(quality.loc[quality["excluded"] & (quality["stimulus"] == stimulus), "participant"])
    shown = seconds[(seconds["stimulus"] == stimulus) & ~seconds["participant"].isin(excluded)]
    viewers = [info.participant for info in data.sessions
               if info.participant not in excluded and stimulus in info.order]
    columns = pd.RangeIndex(int(np.ceil(duration - 1e-9)), name="second")
    return {measure: shown.pivot(index="participant", columns="second", values=measure)
            .reindex(index=viewers, columns=columns) for measure in data.measures}


def _curve(matrix: pd.DataFrame, rng: np.random.Generator, share: bool) -> pd.DataFrame:
    values = matrix.to_numpy(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0) if len(values) else np.full(values.shape[1], np.nan)
    low, high = bootstrap_band(values, rng) if len(values) else (mean, mean)
    seen = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        expressing = (np.where(seen, values, -np.inf) > EXPRESSING).sum(axis=0) / seen.sum(axis=0)
    return pd.DataFrame({"second": matrix.columns, "mean": mean, "ci_low": low, "ci_high": high,
                         "share_expressing": expressing if share else np.nan,
                         "viewers_with_face": seen.sum(axis=0), "viewers": len(values)})


def comparison_table(data: StudyData, seconds: pd.DataFrame, quality: pd.DataFrame, curves: pd.DataFrame,
                     baselines: pd.DataFrame | None) -> pd.DataFrame:
    """Per stimulus and measure: ``mean`` over the stimulus (each viewer's mean over its seconds, then over
    viewers) with its bootstrap interval; the ``peak`` of the mean curve, its second and the band there; and
    with a baseline, ``above_baseline``: the mean share of the stimulus's seconds a viewer spent above their
    baseline mean, with its interval. The columns are ``COMPARISON_COLUMNS`` always, NaN where a figure does not
    apply."""
    rows = []
    raw = curves[curves["view"] == RAW]
    for index, stimulus in enumerate(data.study.stimuli):
        matrices = viewer_matrices(data, seconds, quality, stimulus.name)
        for number, (measure, matrix) in enumerate(matrices.items()):
            rng = np.random.default_rng([data.study.seed, index, number, 1])
            row = {"stimulus": stimulus.name, "measure": measure, "viewers": len(matrix)}
            row |= _interval("mean", matrix.mean(axis=1), rng)
            curve = raw[(raw["stimulus"] == stimulus.name) & (raw["measure"] == measure)]
            if curve["mean"].notna().any():
                peak = curve.loc[curve["mean"].idxmax()]
                row |= {"peak": peak["mean"], "peak_low": peak["ci_low"], "peak_high": peak["ci_high"],
                        "peak_second": int(peak["second"])}
            if baselines is not None:
                above = matrix.gt(baselines[measure].reindex(matrix.index), axis=0).where(matrix.notna())
                above = above.mean(axis=1).where(baselines[measure].reindex(matrix.index).notna())
                row |= _interval("above_baseline", above, rng)
            rows.append(row)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS).astype({"peak_second": "Int64"})


def _interval(name: str, per_viewer: pd.Series, rng: np.random.Generator) -> dict[str, float]:
    """The mean over viewers of one value per viewer and its bootstrap interval."""
    values = per_viewer.dropna().to_numpy(np.float64)
    if not len(values):
        return {name: np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
    low, high = bootstrap_band(values[:, None], rng)
    return {name: values.mean(), f"{name}_low": float(low[0]), f"{name}_high": float(high[0])}
