"""The 95% confidence band of a mean over people (viewers of a study, sessions of a report).

A percentile bootstrap: the people are resampled with replacement ``BOOTSTRAP_RESAMPLES`` times, the
mean is taken in each resample, and the band runs from the 2.5th to the 97.5th percentile of those
means. It says how sure the mean is given who happened to be watching, not how sure the model is.
"""

from __future__ import annotations

import warnings

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def bootstrap_band(values: np.ndarray, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES,
                   confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval of the mean over people, per column of ``values`` (people x times;
    NaN where a person had no face): resample the rows with replacement, take the column means (ignoring NaN),
    and return their lower and upper percentiles. NaN where no resample has a value."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    with warnings.catch_warnings():  # a resample of people all without a face at a time: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(values[picks], axis=1)
        tail = (1 - confidence) / 2 * 100
        low, high = np.nanpercentile(means, [tail, 100 - tail], axis=0)
    return low, high
