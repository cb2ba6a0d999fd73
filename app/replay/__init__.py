"""Replay of a recorded session: its video with the timeline's faces, markers, and moments to export.

No Qt here: ``emolens.gui.replay_window`` is the window over these functions.
"""

from emolens.replay.recording import Recording, load_recording

__all__ = ["Recording", "load_recording"]
