"""Synthetic soundtracks, rooms and clips with sound, for ``--sync audio``'s tests and benchmark.

An ad's soundtrack stands in as a rising chirp under notes and short noise bursts (seeded: another
seed is another ad). A room plays it back with reverberation (an exponentially decaying impulse
response) under pink noise at a stated signal-to-noise ratio. ``write_clip`` muxes real-face frames
(``emolens.bench.media``) and a soundtrack into an MPEG-4 file with AAC sound (PyAV, the ``study`` extra).

    sound = ad_soundtrack(5.0, 48000, seed=1)
    heard = in_room(place(sound, 2.37, 12.0, 48000), 48000, snr_db=0.0, seed=2)
    write_clip(Path("p07.mp4"), (320, 240), faces=1, fps=10, sound=heard, rate=48000)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from emolens.bench.media import face_tiles, render_frame


def ad_soundtrack(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """``seconds`` of an ad's soundtrack: a chirp between two frequencies from 200 Hz to 3 kHz, two notes
    and two 80 ms noise bursts a second at random moments (all drawn from ``seed``); float32, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    low, high = rng.uniform(200, 3000, 2)
    sweep = low + (high - low) * t / (2 * seconds)  # the instantaneous frequency goes from low to high
    sound = 0.3 * np.sin(2 * np.pi * sweep * t)
    for start in rng.uniform(0, seconds, int(seconds * 2)):
        note = (t >= start) & (t < start + 0.3)
        sound[note] += 0.4 * np.sin(2 * np.pi * rng.uniform(220, 880) * t[note]) * np.exp(-6 * (t[note] - start))
    for start in rng.uniform(0, seconds, int(seconds * 2)):
        burst = (t >= start) & (t < start + 0.08)
        sound[burst] += rng.normal(0, 0.3, burst.sum())
    return (0.5 * sound / np.abs(sound).max()).astype(np.float32)


def place(sound: np.ndarray, at_s: float, seconds: float, rate: int) -> np.ndarray:
    """``seconds`` of silence with ``sound`` starting at ``at_s`` (cut at the end)."""
    out = np.zeros(int(seconds * rate), np.float32)
    start = int(round(at_s * rate))
    piece = sound[:max(len(out) - start, 0)]
    out[start:start + len(piece)] = piece
    return out


def pink_noise(samples: int, seed: int = 0) -> np.ndarray:
    """Pink (1/f power) noise, unit power: a room's hum and murmur weigh on the low frequencies."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(size=samples))
    spectrum[1:] /= np.sqrt(np.arange(1, len(spectrum)))
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, samples)
    return noise / np.sqrt(np.mean(noise ** 2))


def in_room(sound: np.ndarray, rate: int, snr_db: float | None, seed: int = 0,
            reverb_s: float = 0.3) -> np.ndarray:
    """``sound`` as a microphone in a room hears it: reverberation as loud as the direct sound, decaying
    by 60 dB in ``reverb_s``, then pink noise ``snr_db`` below the played sound's power (``None``: neither)."""
    if snr_db is None:
        return sound.astype(np.float32)
    rng = np.random.default_rng(seed)
    t = np.arange(int(reverb_s * rate)) / rate
    response = rng.normal(size=len(t)) * 10 ** (-3 * t / reverb_s)
    response *= 1 / np.sqrt(np.sum(response[1:] ** 2))
    response[0] = 1.0  # the direct sound
    size = 1 << int(np.ceil(np.log2(len(sound) + len(response))))
    heard = np.fft.irfft(np.fft.rfft(sound, size) * np.fft.rfft(response, size), size)[:len(sound)]
    played = np.abs(sound) > 1e-6
    power = np.mean(heard[played] ** 2) if played.any() else 1.0
    heard = heard + pink_noise(len(heard), seed + 1) * np.sqrt(power / 10 ** (snr_db / 10))
    return (0.5 * heard / np.abs(heard).max()).astype(np.float32)


def write_clip(path: Path, size_wh: tuple[int, int], faces: int, fps: int, sound: np.ndarray, rate: int,
               numbered: bool = False) -> Path:
    """An MPEG-4 clip as long as ``sound``: frames of ``faces`` real faces and ``sound`` (mono, AAC);
    ``numbered``: each frame carries its index (``emolens.bench.numbered``)."""
    import av

    from emolens.bench.numbered import stamp_number

    tiles = face_tiles(faces)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=Fraction(fps))
        video.width, video.height, video.pix_fmt = size_wh[0], size_wh[1], "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for index in range(int(len(sound) / rate * fps)):
            image = render_frame(tiles, size_wh, index / fps)
            frame = av.VideoFrame.from_ndarray(stamp_number(image, index) if numbered else image, format="bgr24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        step = 1024  # AAC's frame
        for start in range(0, len(sound), step):
            chunk = av.AudioFrame.from_ndarray(sound[None, start:start + step].astype(np.float32), format="fltp",
                                               layout="mono")
            chunk.sample_rate, chunk.pts = rate, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode())
    return path
