"""``emolens.Study``: a study's numbers as tidy dataframes, for people who go on in pandas or R.

Example::

    from emolens import Study

    study = Study("ad-test")
    study.frames          # every face row in stimulus time: participant, stimulus, stimulus_t_s, second, ...
    study.seconds         # each viewer's smoothed score per second of each stimulus
    study.curves          # mean over viewers per second, 95% band, share expressing, viewers with a face
    study.quality         # face found, head turn and exclusion per viewer and stimulus
    study.comparison      # per stimulus and measure: mean, peak, time above baseline, with intervals
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import pandas as pd

from emolens.study.aggregate import (
    aggregate_curves,
    baseline_means,
    comparison_table,
    load_study_data,
    quality_table,
    study_frames,
    viewer_seconds,
)
from emolens.study.file import StudyFile


class Study:
    """A study folder, read once (``EmolensError`` if it is not a study with sessions); each table is
    computed on first use."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._data = load_study_data(self.folder)

    @property
    def file(self) -> StudyFile:
        """The study file: name, stimuli, baseline, order and seed."""
        return self._data.study

    @cached_property
    def sessions(self) -> pd.DataFrame:
        """One row per session: its sidecar (participant, date, order shown, camera, model, notes...)."""
        return pd.DataFrame([{**info.model_dump(exclude={"placements"}), "order": list(info.order)}
                             for info in self._data.sessions])

    @cached_property
    def frames(self) -> pd.DataFrame:
        return study_frames(self._data)

    @cached_property
    def seconds(self) -> pd.DataFrame:
        return viewer_seconds(self._data, self.frames)

    @cached_property
    def quality(self) -> pd.DataFrame:
        return quality_table(self._data)

    @cached_property
    def baselines(self) -> pd.DataFrame | None:
        """Each viewer's mean over the baseline, or None when the study has no baseline."""
        return baseline_means(self._data, self.frames) if self.file.baseline_s else None

    @cached_property
    def curves(self) -> pd.DataFrame:
        return aggregate_curves(self._data, self.seconds, self.quality, self.baselines)

    @cached_property
    def comparison(self) -> pd.DataFrame:
        return comparison_table(self._data, self.seconds, self.quality, self.curves, self.baselines)
