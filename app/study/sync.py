"""Find when a stimulus started in a recording by its sound (``emolens study add --sync audio``).

Both soundtracks are decoded to mono at ``RATE`` Hz (PyAV, the ``study`` extra) and the stimulus's
is slid along the recording's: at each lag the normalised correlation (1: the recording holds exactly
the stimulus's sound there, up to loudness; 0: nothing of it) is computed by FFT, block by block, so
that an hour's recording needs no more memory than its samples. The best lag is the start, in the
recording's time (its first video frame is 0 s, as in its timeline), and its correlation is the match.

A match is refused when it is under ``MIN_MATCH`` (the sound is not there, or drowned) or when the
best correlation more than ``SEPARATION_S`` away is over ``AMBIGUITY`` times it (the sound is there
twice, or the stimulus repeats itself): a wrong start would misplace every row of the session.
The thresholds come from ``emolens bench sync`` (benchmarks/sync.md): known offsets at several
signal-to-noise ratios against recordings of unrelated sound.

Example::

    found = audio_start(Path("study/stimuli/ad_a.mp4"), Path("p07.mp4"))
    found.start_s, found.match        # 12.43, 0.91
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emolens.errors import EmolensError, SettingError

RATE = 8000  # Hz: 0.125 ms per sample; enough of an ad's spectrum to match on
MIN_MATCH = 0.2
AMBIGUITY = 0.8
SEPARATION_S = 0.05  # a runner-up counts this far from the best lag


@dataclass(frozen=True)
class AudioMatch:
    """Where the stimulus's sound is in the recording.

    Attributes:
        start_s: the recording's time at which the stimulus starts.
        match: the normalised correlation there (0 to 1).
        runner_up_s, runner_up: the best lag more than ``SEPARATION_S`` away, and its correlation.
    """

    start_s: float
    match: float
    runner_up_s: float
    runner_up: float

    @property
    def sure(self) -> bool:
        """Strong enough (``MIN_MATCH``) and unlike any other place (``AMBIGUITY``) to be trusted."""
        return self.match >= MIN_MATCH and self.runner_up <= AMBIGUITY * self.match


def audio_start(stimulus: Path, recording: Path) -> AudioMatch:
    """When ``stimulus``'s sound starts in ``recording``, both video files with a soundtrack.

    Raises:
        EmolensError: PyAV is missing; either file has no sound, or no readable sound; the match is unsure.
    """
    found = find_sound(stimulus, recording)
    if found.match < MIN_MATCH:
        raise SettingError(f"{{sync}} audio is unsure: the sound of {stimulus.name} is not clearly in {recording} "
                           f"(best match {found.match:.2f} at {found.start_s:.2f} s, under {MIN_MATCH}); "
                           f"give {{stimulus_at}} instead")
    if not found.sure:
        raise SettingError(f"{{sync}} audio is unsure: the sound of {stimulus.name} matches {recording} at "
                           f"{found.start_s:.2f} s ({found.match:.2f}) and at {found.runner_up_s:.2f} s "
                           f"({found.runner_up:.2f}); give {{stimulus_at}} instead")
    return found


def find_sound(stimulus: Path, recording: Path) -> AudioMatch:
    """The best match of ``stimulus``'s sound in ``recording``'s, sure or not (``audio_start`` judges).

    Raises:
        EmolensError: PyAV is missing; either file has no sound, or no readable sound.
    """
    sound, sound_at_s = soundtrack(stimulus, "the stimulus")
    heard, heard_at_s = soundtrack(recording, "the recording")
    lag, match, other_lag, other = best_lags(sound, heard)
    return AudioMatch(start_s=heard_at_s + lag / RATE - sound_at_s, match=match,
                      runner_up_s=heard_at_s + other_lag / RATE - sound_at_s, runner_up=other)


def soundtrack(path: Path, what: str) -> tuple[np.ndarray, float]:
    """``path``'s first audio stream as mono float32 at ``RATE``, and the time of its first sample relative
    to the first video frame (the timeline's 0 s); ``what`` names the file in errors.

    Raises:
        EmolensError: PyAV is missing, the file does not open, has no audio stream, or only silence.
    """
    try:
        import av
    except ImportError:
        raise SettingError("{sync} audio needs the 'study' extra (PyAV reads the soundtracks): "
                           "pip install 'emolens[study]'") from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise SettingError(f"{what} {path} has no sound, so {{sync}} audio cannot place it; "
                                   f"give {{stimulus_at}} instead")
            samples, first_s = _decode(container, container.streams.audio[0], av.AudioResampler)
            video = container.streams.video
            video_s = float(video[0].start_time * video[0].time_base) if video and video[0].start_time else 0.0
    except av.error.FFmpegError as error:
        raise EmolensError(f"cannot read the sound of {what} {path}: {error.strerror or error}") from None
    if not samples.size or not np.any(samples):
        raise SettingError(f"{what} {path} is silent, so {{sync}} audio cannot place it; give {{stimulus_at}} instead")
    return samples, first_s - video_s


def _decode(container, stream, resampler_type) -> tuple[np.ndarray, float]:
    """Every sample of ``stream``, mono at ``RATE``, and the time of the first (seconds, the container's clock)."""
    resampler = resampler_type(format="flt", layout="mono", rate=RATE)
    chunks, first_s = [], None
    for frame in container.decode(stream):
        if first_s is None and frame.time is not None:
            first_s = float(frame.time)
        chunks.extend(out.to_ndarray()[0] for out in resampler.resample(frame))
    chunks.extend(out.to_ndarray()[0] for out in resampler.resample(None))
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return samples, first_s or 0.0


def best_lags(sound: np.ndarray, heard: np.ndarray) -> tuple[int, float, int, float]:
    """The lag (samples, 0 or more) at which ``sound`` best matches ``heard``, its normalised correlation,
    and the same for the best lag more than ``SEPARATION_S`` away (lag -1, correlation 0 when there is none)."""
    correlation = normalised_correlation(sound, heard)
    best = int(np.argmax(correlation))
    low, high = max(best - int(SEPARATION_S * RATE), 0), best + int(SEPARATION_S * RATE) + 1
    candidates = [lag for lag in (int(np.argmax(correlation[:low])) if low else None,
                                  high + int(np.argmax(correlation[high:])) if high < len(correlation) else None)
                  if lag is not None]
    other = max(candidates, key=lambda lag: correlation[lag], default=-1)
    return best, float(correlation[best]), other, float(correlation[other]) if other >= 0 else 0.0


def normalised_correlation(sound: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """For each lag ``L`` of ``heard`` (0 to its length - 1), the cosine between ``sound`` and
    ``heard[L:L + len(sound)]`` (zeros past the end), both without their mean."""
    sound = sound.astype(np.float64) - sound.mean()
    heard = heard - heard.mean()  # float32: an hour at RATE is 115 MB
    size, width = len(heard), len(sound)
    prefix = np.zeros(size + 1)  # prefix[i]: the energy of heard[:i]
    np.square(heard, out=prefix[1:], dtype=np.float64)
    np.cumsum(prefix, out=prefix)
    whole = max(size - width + 1, 0)  # lags whose window lies inside the recording
    heard_energy = np.empty(size)
    heard_energy[:whole] = prefix[width:width + whole] - prefix[:whole]
    heard_energy[whole:] = prefix[size] - prefix[whole:size]
    sound_energy = float(sound @ sound)
    # a floor keeps digital silence (no energy, no correlation) from dividing zero by zero
    np.maximum(heard_energy, sound_energy * 1e-9, out=heard_energy)
    heard_energy *= sound_energy
    correlation = sliding_dot(sound, heard)
    correlation /= np.sqrt(heard_energy, out=heard_energy)
    return correlation


def sliding_dot(sound: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """``sum(sound * heard[L:L + len(sound)])`` for each lag ``L`` of ``heard``, by FFT over blocks of
    ``heard`` (overlap-save), so a long recording is never transformed whole."""
    size = 1 << max(int(np.ceil(np.log2(2 * len(sound)))), 16)
    valid = size - len(sound) + 1  # lags per block whose window does not wrap around
    kernel = np.conj(np.fft.rfft(sound, size))
    out = np.empty(len(heard))
    for start in range(0, len(heard), valid):
        block = np.fft.irfft(np.fft.rfft(heard[start:start + size].astype(np.float64), size) * kernel, size)
        count = min(valid, len(heard) - start)
        out[start:start + count] = block[:count]
    return out
