"""What stimulus was on screen at a given moment, for the recording thread to write on each camera frame's rows.

The stimulus player (GUI thread) reports each stimulus frame as it goes on screen: its stimulus's name, its
position in the stimulus's media (the video frame's own start time, from the player's ``QVideoSink``) and the
``time.perf_counter()`` moment it was shown. The worker (its own thread) asks ``at(captured_s)`` for the moment
a camera frame was captured and gets the frame on screen then, not the wall clock's idea of where the stimulus
should be. An image has no frames: its position runs on from when it was shown (``running=True``).

Example::

    clock = StimulusClock()
    clock.show("ad_a", 0.04, time.perf_counter())     # the player's second frame went on screen
    clock.at(time.perf_counter())                      # ('ad_a', 0.04)
    clock.clear(time.perf_counter())                   # nothing on screen from now on (the baseline, the end)
"""

from __future__ import annotations

import bisect
import threading
from collections import deque

_KEPT = 256  # moments remembered: ten seconds of a 25 fps stimulus, far more than a camera frame waits


class StimulusClock:
    """Moments at which the screen changed, newest last, safe to read from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._moments: deque[tuple[float, str, float, bool]] = deque(maxlen=_KEPT)  # (at_s, name, position, running)

    def show(self, name: str, position_s: float, at_s: float, running: bool = False) -> None:
        """``name`` at ``position_s`` went on screen at ``at_s`` (``perf_counter``); ``running``: the position
        advances with time until the next moment (an image)."""
        with self._lock:
            self._moments.append((at_s, name, position_s, running))

    def clear(self, at_s: float) -> None:
        """No stimulus on screen from ``at_s`` on."""
        self.show("", 0.0, at_s)

    def at(self, captured_s: float) -> tuple[str, float] | None:
        """The stimulus on screen at ``captured_s`` and its position then; None when none was."""
        with self._lock:
            moments = list(self._moments)
        index = bisect.bisect_right([moment[0] for moment in moments], captured_s) - 1
        if index < 0:
            return None
        at_s, name, position_s, running = moments[index]
        if not name:
            return None
        return name, position_s + (captured_s - at_s if running else 0.0)
