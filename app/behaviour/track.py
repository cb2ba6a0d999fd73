"""Behaviour over time, per face ID: which faces to measure, held values, blinks, totals.

The landmarker is the slowest stage (about 9-11 ms per face on one core, benchmarks/behaviour.md),
so each face is measured at ``hz`` times a second of media time on average (``hz = 0``:
every frame), and at most ``budget_hz`` readings a second are shared by all faces in view (four
faces at a budget of 30: 7.5 Hz each); in between, a face's last reading is held (landmarks move
with the box). Emotions are still read on every frame. Blinks are found only on fresh readings:
the eyes close (mean eye closure ``>= closed``) and open again (``< opened``) within
``blink_max_s``; a longer closure is not a blink. A closure shorter than about one reading
interval can be missed.

Example::

    tracker = BehaviourTracker(hz=15.0)
    rows = tracker.due(faces, t_s)                       # which faces to measure now
    faces = tracker.update(faces, t_s, rows, estimator.estimate(image, faces, rows))
    tracker.totals()                                     # seconds, blinks, attention, summed
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from emolens.behaviour.landmarker import BehaviourSample
from emolens.behaviour.signals import AU_NAMES, BLENDSHAPE_NAMES, N_LANDMARKS, attentive, expressiveness
from emolens.types import Faces


@dataclass
class FaceBehaviourTotals:
    """What faces did while tracked: seconds seen, blinks, landmarker readings, attentive readings."""

    seconds: float = 0.0
    blinks: int = 0
    readings: int = 0
    attentive: int = 0
    expressiveness_sum: float = 0.0

    @property
    def blink_rate_per_min(self) -> float:
        return 60.0 * self.blinks / self.seconds if self.seconds > 0 else math.nan

    @property
    def attention_share(self) -> float:
        return self.attentive / self.readings if self.readings else math.nan

    @property
    def mean_expressiveness(self) -> float:
        return self.expressiveness_sum / self.readings if self.readings else math.nan


@dataclass
class _FaceState:
    next_due_s: float
    last_seen_s: float
    held: tuple | None = None          # (sample, its row, box centre) of the last reading that found the face
    closed_since_s: float | None = None
    totals: FaceBehaviourTotals = field(default_factory=FaceBehaviourTotals)


class BehaviourTracker:
    """Schedules landmarker readings per face ID and turns them into ``Faces`` behaviour fields.

    Args:
        hz: readings per face per second of media time (0 = every frame). Lower is cheaper;
            held values lag by up to ``1 / hz`` and blinks shorter than that can be missed.
        budget_hz: at most this many readings per second over all faces of a frame (0 = no cap):
            with ``n`` faces each is read at ``min(hz, budget_hz / n)``. Ignored when ``hz`` is 0.
        attention_yaw_deg, attention_pitch_deg: half-angles of the attention cone
            (``emolens.behaviour.signals.attentive``). Wider counts more glances as attention.
        blink_max_s: the longest closure that still counts as a blink.
        closed, opened: eye-closure thresholds (hysteresis) for a blink's start and end.
        max_gap_s: a face unseen this long is forgotten (as the face tracker does).
    """

    def __init__(self, hz: float = 15.0, attention_yaw_deg: float = 25.0, attention_pitch_deg: float = 20.0,
                 blink_max_s: float = 0.5, closed: float = 0.5, opened: float = 0.35, max_gap_s: float = 1.0,
                 budget_hz: float = 0.0):
        self.period_s = 1.0 / hz if hz else 0.0
        self.budget_period_s = 1.0 / budget_hz if hz and budget_hz else 0.0
        self.attention_yaw_deg, self.attention_pitch_deg = attention_yaw_deg, attention_pitch_deg
        self.blink_max_s, self.closed, self.opened, self.max_gap_s = blink_max_s, closed, opened, max_gap_s
        self._faces: dict[int, _FaceState] = {}
        self._done: list[FaceBehaviourTotals] = []

    def reset(self) -> None:
        """Forget every face (a new source or image); their totals stay in ``totals()``."""
        self._done += [state.totals for state in self._faces.values()]
        self._faces = {}

    def due(self, faces: Faces, t_s: float) -> np.ndarray:
        """Row indices of the faces to measure at ``t_s`` (``faces.face_id`` must be set).

        Schedules them: call once per frame, in frame order, before that frame's ``update``.
        """
        rows = []
        period_s = max(self.period_s, len(faces) * self.budget_period_s)
        for row, face_id in enumerate(faces.face_id):
            state = self._faces.get(int(face_id))
            if state is None:
                state = self._faces[int(face_id)] = _FaceState(next_due_s=t_s, last_seen_s=t_s)
            if t_s >= state.next_due_s - 1e-9:
                rows.append(row)
                state.next_due_s = max(state.next_due_s + period_s, t_s)
        return np.array(rows, np.int64)

    def update(self, faces: Faces, t_s: float, rows: np.ndarray, sample: BehaviourSample) -> Faces:
        """``faces`` with the behaviour fields: fresh readings for ``rows``, held ones elsewhere."""
        self._forget_stale(t_s)
        n = len(faces)
        fresh = {int(row): i for i, row in enumerate(rows)}
        picks: list[tuple[BehaviourSample, int] | None] = []
        shifts = np.zeros((n, 2), np.float32)
        blink = np.full(n, np.nan, np.float32)
        centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
        for row in range(n):
            face_id = int(faces.face_id[row])
            state = self._faces.get(face_id)
            if state is None:  # forgotten between due() and update(): a gap longer than max_gap_s
                state = self._faces[face_id] = _FaceState(next_due_s=t_s, last_seen_s=t_s)
            state.totals.seconds += min(max(t_s - state.last_seen_s, 0.0), self.max_gap_s)
            state.last_seen_s = max(state.last_seen_s, t_s)
            if row in fresh:
                index = fresh[row]
                state.held = (sample, index, centres[row].copy()) if sample.found[index] else None
                blink[row] = self._blink(state, sample, index, t_s)
            if state.held is None:
                picks.append(None)
            else:
                held_sample, index, centre = state.held
                picks.append((held_sample, index))
                shifts[row] = centres[row] - centre
        out = _gather(picks, shifts)
        out["attentive"] = attentive(out["head_pose"], self.attention_yaw_deg, self.attention_pitch_deg)
        out["expressiveness"] = expressiveness(out["aus"])
        # A held reading (no fresh one this frame) still says "no blink ended here".
        out["blink"] = np.where(np.isnan(blink) & ~np.isnan(out["head_pose"][:, 0]), 0.0, blink).astype(np.float32)
        for row in fresh:
            if not np.isnan(out["attentive"][row]):
                totals = self._faces[int(faces.face_id[row])].totals
                totals.readings += 1
                totals.attentive += int(out["attentive"][row])
                totals.expressiveness_sum += float(out["expressiveness"][row])
        return faces.with_fields(**out)

    def _blink(self, state: _FaceState, sample: BehaviourSample, index: int, t_s: float) -> float:
        """1.0 if a blink ends at this reading, 0.0 if not, NaN without a reading."""
        if not sample.found[index]:
            state.closed_since_s = None
            return math.nan
        closure = 1.0 - float(sample.eye_open[index].mean())
        if state.closed_since_s is None:
            if closure >= self.closed:
                state.closed_since_s = t_s
            return 0.0
        if closure >= self.opened:
            return 0.0
        duration = t_s - state.closed_since_s
        state.closed_since_s = None
        if duration <= self.blink_max_s:
            state.totals.blinks += 1
            return 1.0
        return 0.0

    def _forget_stale(self, t_s: float) -> None:
        for face_id in [i for i, s in self._faces.items() if t_s - s.last_seen_s > self.max_gap_s]:
            self._done.append(self._faces.pop(face_id).totals)

    def totals(self) -> FaceBehaviourTotals:
        """Everything summed over every face seen since this tracker was made."""
        every = self._done + [state.totals for state in self._faces.values()]
        return FaceBehaviourTotals(seconds=sum(t.seconds for t in every), blinks=sum(t.blinks for t in every),
                                   readings=sum(t.readings for t in every),
                                   attentive=sum(t.attentive for t in every),
                                   expressiveness_sum=sum(t.expressiveness_sum for t in every))


def _gather(picks: list[tuple[BehaviourSample, int] | None], shifts: np.ndarray) -> dict[str, np.ndarray]:
    """The ``Faces`` behaviour arrays from one (sample, row) per face, NaN where there is none."""
    n = len(picks)
    out = {"blendshapes": np.full((n, len(BLENDSHAPE_NAMES)), np.nan, np.float32),
           "aus": np.full((n, len(AU_NAMES)), np.nan, np.float32),
           "head_pose": np.full((n, 3), np.nan, np.float32),
           "eye_open": np.full((n, 2), np.nan, np.float32),
           "landmarks": np.full((n, N_LANDMARKS, 2), np.nan, np.float32)}
    names = {"blendshapes": "blendshapes", "aus": "aus", "head_pose": "pose_deg", "eye_open": "eye_open",
             "landmarks": "landmarks"}
    for row, pick in enumerate(picks):
        if pick is None:
            continue
        sample, index = pick
        for field_name, attribute in names.items():
            out[field_name][row] = getattr(sample, attribute)[index]
        out["landmarks"][row] += shifts[row]
    return out
