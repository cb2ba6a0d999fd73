"""Remote panels (``emolens serve --study DIR``): participants watch a study's stimuli in their browser while
the service records their faces' scores in stimulus time, into the study's ``sessions/``.

A participant joins with an invitation code (``emolens study invite``), or, in a room, through the
service's token (or none on localhost); either way the page then holds a secret ``key`` (the code
itself for an invitation) that names their session. They answer the study's consent, pass the
camera check, and watch the stimuli in their session's order after the baseline. The page streams
camera frames over ``WS /panel/{study}/ws`` (``serve_participant``), each after a text message saying
when it was captured::

    {"phase": "check"}                                   the camera check: answered, never recorded
    {"phase": "baseline", "t_s": 1.2}                    seconds into the baseline
    {"phase": "stimulus", "stimulus": "ad_a", "t_s": 3.4}  the stimulus playing and its currentTime
    {"phase": "done"}                                     the last stimulus ended (no frame follows)

A frame's time in the session is its stimulus's start (the study's baseline, then the stimuli in
order, each for its duration: ``sessions.stimulus_placements``) plus ``t_s``; the scores go through the
participant's own ``Session`` at that time and into a hidden recording, ``sessions/.P07.recording.csv``.
When the participant finishes, or their connection drops, the recording is placed in stimulus time
as a room session is (``place_in_stimulus_time``) and written as ``sessions/P07.csv`` and its sidecar,
``complete`` false until the last stimulus has ended. A participant who comes back (a reload, a new
connection) resumes the same session where it stopped; frames never go back in time. No frame is
stored: each is decoded, analysed and dropped.

The service may stop and start again mid-session (a restart, SIGTERM, even SIGKILL): the recording's rows
are handed to the OS frame by frame (``CsvRecorder``), and ``sessions/.P07.resume`` (written at consent:
who, the SHA-256 of their key, their number, order and model) lets the next start find them. At start,
each such participant's session is written again from their recordings, incomplete, and they resume it
with the same key: the page's reconnection goes on into the same session; the rows of each run of the
service are kept in their own recording (``.P07.recording.csv``, then ``.P07.recording-1.csv``, ...)
and joined when the session is written. The hidden files are removed once the session is complete.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from starlette.websockets import WebSocket, WebSocketDisconnect

from emolens.errors import EmolensError
from emolens.pipeline import Session
from emolens.record import CsvRecorder, replace_private_text
from emolens.serve.config import Limits
from emolens.serve.errors import ApiError
from emolens.serve.media import decode_image
from emolens.serve.pool import ModelPool
from emolens.serve.stream import receive_within
from emolens.study.file import SESSIONS_DIR, StudyFile, load_study
from emolens.study.invites import code_digest, invited, load_invites
from emolens.study.sessions import (
    Placement,
    SessionInfo,
    place_in_stimulus_time,
    read_sessions,
    session_files,
    stimulus_placements,
    write_session,
)
from emolens.types import Faces, Frame

CHECK_FRAMES = 5  # consecutive good frames that pass the camera check
MAX_FPS = 30  # frames a participant may send per second; more are dropped (the page sends 15)
QUEUE_FRAMES = 45  # frames waiting to be analysed per participant (3 s at 15 fps); more are dropped
MIN_FACE_SHARE = 0.15  # the face's height as a share of the picture's, at least
BRIGHTNESS = (50, 215)  # the face's mean grey level
MAX_TURN = 0.35  # the nose's offset from between the eyes, in eye distances (about 20 degrees of head turn)
FAILED_JOINS = 10  # wrong codes a client may try per minute before 429
NO_FACE = "no face found: sit facing the camera, close enough, with light on your face"


@dataclass
class Participant:
    """One participant's session while the service runs."""

    id: str
    key: str
    number: int
    order: list[str]
    placements: list[Placement]
    session: Session
    check_session: Session
    joined: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    state: str = "joined"  # joined, declined, watching, done
    checked: bool = False
    good_checks: int = 0
    recorder: CsvRecorder | None = None
    frames_received: int = 0
    frames_recorded: int = 0
    frames_with_face: int = 0
    frames_dropped: int = 0
    last_time_s: float = -1.0
    model: str = ""  # the model card's file and hash, for the sidecar
    user_agent: str = ""
    sent_times: deque = field(default_factory=deque)
    connection: WebSocket | None = None  # the page's open connection, if any
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # one connection records at a time

    def allow_frame(self, now: float) -> bool:
        """At most ``MAX_FPS`` frames in any second."""
        while self.sent_times and now - self.sent_times[0] >= 1.0:
            self.sent_times.popleft()
        if len(self.sent_times) >= MAX_FPS:
            return False
        self.sent_times.append(now)
        return True


class PanelStudy:
    """One study served to remote participants: who joined, their sessions, the invitations."""

    def __init__(self, folder: Path, pool: ModelPool, limits: Limits):
        self.folder = Path(folder)
        self.file: StudyFile = load_study(self.folder)
        self.invites = load_invites(self.folder)
        self.name = self.folder.resolve().name
        self.pool = pool
        self.limits = limits
        self.participants: dict[str, Participant] = {}  # by the SHA-256 of their key
        self.failed_joins: dict[str, deque] = {}
        for state in sorted((self.folder / SESSIONS_DIR).glob(".*.resume")):
            self._resume_after_restart(state)

    @property
    def total_s(self) -> float:
        return self.file.baseline_s + sum(stimulus.duration_s for stimulus in self.file.stimuli)

    def refuse_too_many_failures(self, client: str) -> None:
        recent = self.failed_joins.setdefault(client, deque())
        now = time.monotonic()
        while recent and now - recent[0] > 60:
            recent.popleft()
        if len(recent) >= FAILED_JOINS:
            raise ApiError(429, "too many wrong codes from this address; wait a minute", {"Retry-After": "60"})

    def join(self, code: str | None, key: str | None, room: bool, client: str) -> Participant:
        """The participant a page belongs to: by its key (a reload), its invitation code, or a new one in a room.

        Raises:
            ApiError: 429 after too many wrong codes, 403 a wrong code or key (or none without the
                room's token), 409 a code whose session is already over.
        """
        self.refuse_too_many_failures(client)
        secret = key or code
        if secret and (known := self.find(secret)) is not None:
            return known
        if code:
            self.invites = load_invites(self.folder)  # invitations made while the service runs count
            who = invited(self.invites, code)
            if who is None:
                self.failed_joins[client].append(time.monotonic())
                raise ApiError(403, "this link's code is not one of the study's invitations")
            if any(path.exists() for path in session_files(self.folder, who)):
                raise ApiError(409, f"the session of {who} is over; thank you for taking part")
            return self._new_participant(who, code)
        if key or not room:
            self.failed_joins[client].append(time.monotonic())
            raise ApiError(403, "open the link of your invitation (it ends with #code=...)")
        return self._new_participant(self._next_room_participant(), secrets.token_urlsafe(16))

    def find(self, key: str | None) -> Participant | None:
        """The participant whose key this is, if any (one who joined before a restart learns it back)."""
        participant = self.participants.get(code_digest(key)) if key else None
        if participant is not None and not participant.key:
            participant.key = key
        return participant

    def _new_participant(self, who: str, key: str) -> Participant:
        numbers = [info.number for info, _ in read_sessions(self.folder)]
        numbers += [p.number for p in self.participants.values()]
        number = max(numbers, default=0) + 1
        order = self.file.order_for(number)
        participant = Participant(who, key, number, order, stimulus_placements(self.file, order, self.file.baseline_s),
                                  Session(self.pool.options), Session(self.pool.options))
        self.participants[code_digest(key)] = participant
        return participant

    def _next_room_participant(self) -> str:
        taken = set(self.invites) | {p.id for p in self.participants.values()}
        taken |= {path.stem for path in (self.folder / SESSIONS_DIR).glob("*.json")}
        return next(f"R{n:02d}" for n in range(1, 10_000) if f"R{n:02d}" not in taken)

    def answer_consent(self, participant: Participant, agreed: bool) -> None:
        """Record the answer in ``consent.csv`` (time, participant, answer); a yes opens the recording."""
        line = f"{datetime.now(timezone.utc).isoformat(timespec='seconds')},{participant.id}," \
               f"{'yes' if agreed else 'no'}\n"
        path = self.folder / "consent.csv"
        try:
            with open(path, "a", encoding="utf-8") as out:
                if out.tell() == 0:
                    out.write("time,participant,answer\n")
                out.write(line)
        except OSError as error:
            raise EmolensError(f"cannot record the consent in {path}: {error.strerror or error}") from None
        participant.state = "watching" if agreed else "declined"
        if agreed:
            card = self.pool.first.card
            participant.model = f"{card.model_path.name} (sha256 {card.sha256[:12]})"
            self._save_resume_state(participant)
            self.open_recording(participant)

    def open_recording(self, participant: Participant) -> None:
        """Record the participant's next frames (a consent, or a return after a restart): a recording left by
        the service's previous run is kept as the next earlier part first."""
        if participant.recorder is not None:
            return
        path = self.recording_path(participant)
        if path.exists():
            path.rename(path.with_name(f".{participant.id}.recording-{len(self.recordings(participant))}.csv"))
        participant.recorder = CsvRecorder(path, self.pool.first.labels, behaviour=self.pool.options.behaviour,
                                           overwrite=False)

    def recording_path(self, participant: Participant) -> Path:
        return self.folder / SESSIONS_DIR / f".{participant.id}.recording.csv"

    def recordings(self, participant: Participant) -> list[Path]:
        """Every recording of the session on disk, earlier runs of the service first."""
        earlier = (self.folder / SESSIONS_DIR).glob(f".{participant.id}.recording-*.csv")
        current = self.recording_path(participant)
        return sorted(earlier, key=lambda path: int(path.stem.rsplit("-", 1)[1])) + \
            ([current] if current.exists() else [])

    def resume_state_path(self, participant_id: str) -> Path:
        return self.folder / SESSIONS_DIR / f".{participant_id}.resume"

    def _save_resume_state(self, participant: Participant) -> None:
        """What a later start of the service needs to resume this session (never the key itself)."""
        path = self.resume_state_path(participant.id)
        state = {"participant": participant.id, "key_sha256": code_digest(participant.key),
                 "number": participant.number, "order": participant.order, "joined": participant.joined,
                 "model": participant.model}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_private_text(path, json.dumps(state) + "\n")
        except OSError as error:
            raise EmolensError(f"cannot write {path}: {error.strerror or error}") from None

    def _resume_after_restart(self, path: Path) -> None:
        """A participant whose session the service's previous run left open: back in memory, resumable with
        their key, and their session written again from their recordings, incomplete.

        Raises:
            EmolensError: the state file or a recording is unreadable.
        """
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            participant = Participant(state["participant"], "", state["number"], state["order"],
                                      stimulus_placements(self.file, state["order"], self.file.baseline_s),
                                      Session(self.pool.options), Session(self.pool.options),
                                      joined=state["joined"], state="watching", model=state["model"])
            key_digest = state["key_sha256"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            raise EmolensError(f"cannot resume the session in {path}: {error}") from None
        if self._completed(participant):
            self.close_recording(participant)  # the service stopped between writing the session and cleaning up
            return
        rows = self.recorded_rows(participant)
        if len(rows):
            frames = rows.groupby("frame")["face_id"].agg(lambda ids: (ids != "").any())
            participant.frames_recorded, participant.frames_with_face = len(frames), int(frames.sum())
            participant.last_time_s = round(float(pd.to_numeric(rows["time_s"]).max()), 3)
            participant.checked = True
        self.participants[key_digest] = participant
        self.write_session(participant)

    def _completed(self, participant: Participant) -> bool:
        return any(info.participant == participant.id and info.complete for info, _ in read_sessions(self.folder))

    def recorded_rows(self, participant: Participant) -> pd.DataFrame:
        """The rows of every recording of the session, as text, in order.

        Raises:
            EmolensError: a recording is unreadable.
        """
        parts = []
        for path in self.recordings(participant):
            try:
                parts.append(pd.read_csv(path, dtype=str, keep_default_na=False))
            except (OSError, ValueError) as error:
                raise EmolensError(f"cannot read the recording {path}: {error}") from None
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def session_time(self, participant: Participant, phase: dict) -> float | None:
        """A frame's time in the session, from the page's phase message; None outside the baseline and stimuli."""
        t_s = phase.get("t_s")
        if not isinstance(t_s, (int, float)) or isinstance(t_s, bool) or not math.isfinite(t_s) or t_s < 0:
            return None
        if phase.get("phase") == "baseline":
            return float(t_s) if t_s < self.file.baseline_s else None
        placement = next((p for p in participant.placements if p.stimulus == phase.get("stimulus")), None)
        if phase.get("phase") != "stimulus" or placement is None or t_s >= placement.end_s - placement.start_s:
            return None
        return placement.start_s + float(t_s)

    def handle_frame(self, participant: Participant, phase: dict, data: bytes) -> dict:
        """Analyse one frame (on a worker thread): the camera check's answer, or the frame recorded."""
        image = decode_image(data, self.limits)
        if phase.get("phase") == "check":
            faces = self.pool.analyze(image, participant.check_session, time.monotonic())
            problems = camera_problems(image, faces)
            participant.good_checks = 0 if problems else participant.good_checks + 1
            participant.checked = participant.checked or participant.good_checks >= CHECK_FRAMES
            return {"check": {"passed": participant.checked, "problems": problems}}
        time_s = self.session_time(participant, phase)
        if participant.recorder is None or time_s is None or round(time_s, 3) <= participant.last_time_s:
            return {"recorded": False}
        faces = self.pool.analyze(image, participant.session, time_s)
        participant.recorder.append(Frame(participant.frames_recorded, time_s, image, f"panel {participant.id}"),
                                    faces)
        participant.last_time_s = round(time_s, 3)
        participant.frames_recorded += 1
        participant.frames_with_face += bool(len(faces))
        return {"recorded": True, "faces": len(faces), "time_s": round(time_s, 3)}

    def resume_at(self, participant: Participant) -> dict | None:
        """Where a participant who comes back goes on: the baseline or the stimulus (its index in their order)
        and the time in it; None before the first frame recorded."""
        last = participant.last_time_s
        if last < 0:
            return None
        if last < self.file.baseline_s:
            return {"phase": "baseline", "stimulus": 0, "t_s": last}
        for index, placement in enumerate(participant.placements):
            if placement.start_s <= last < placement.end_s:
                return {"phase": "stimulus", "stimulus": index, "t_s": round(last - placement.start_s, 3)}
        return {"phase": "stimulus", "stimulus": len(participant.order), "t_s": 0.0}

    def write_session(self, participant: Participant) -> SessionInfo | None:
        """Place the recording so far in stimulus time and write ``sessions/<id>.csv`` and its sidecar (a
        thread; never while a frame of this participant is being recorded). None before the first frame."""
        if participant.frames_recorded == 0:
            return None
        rows = self.recorded_rows(participant)
        info = SessionInfo(participant=participant.id, number=participant.number, date=participant.joined,
                           order=participant.order, stimulus_at_s=self.file.baseline_s,
                           placements=participant.placements,
                           baseline_s=[0.0, self.file.baseline_s] if self.file.baseline_s else None,
                           recording="remote panel (browser camera; no frame stored)",
                           camera=participant.user_agent[:200],
                           model=participant.model,
                           complete=participant.state == "done")
        timeline, sidecar = session_files(self.folder, participant.id)
        with tempfile.TemporaryDirectory(prefix=".panel-", dir=timeline.parent) as scratch:
            write_session(place_in_stimulus_time(rows, participant.placements), info, timeline, sidecar,
                           Path(scratch))
        return info

    def finish(self, participant: Participant) -> None:
        """The last stimulus ended: write the complete session and close its recording."""
        participant.state = "done"
        self.write_session(participant)
        self.close_recording(participant)

    def close_recording(self, participant: Participant) -> None:
        """The session is complete: its recordings and resume state go (the session holds their rows)."""
        if participant.recorder is not None:
            participant.recorder.close()
            participant.recorder = None
        for path in self.recordings(participant):
            path.unlink(missing_ok=True)
        self.resume_state_path(participant.id).unlink(missing_ok=True)

    def close(self) -> None:
        """The service stops: every session still open is written, incomplete, and stays resumable."""
        for participant in self.participants.values():
            if participant.recorder is not None:
                participant.recorder.close()
                participant.recorder = None
                self.write_session(participant)

    def status(self) -> dict:
        """What the operator's dashboard shows."""
        people = [{"participant": p.id, "state": p.state, "connected": p.connection is not None, "checked": p.checked,
                   "frames": p.frames_recorded, "dropped": p.frames_dropped,
                   "face_found": round(p.frames_with_face / p.frames_recorded, 3) if p.frames_recorded else None,
                   "progress": round(min(1.0, max(p.last_time_s, 0.0) / self.total_s), 3) if p.state != "done"
                   else 1.0}
                  for p in sorted(self.participants.values(), key=lambda p: p.number)]
        written = read_sessions(self.folder)
        return {"study": self.name, "title": self.file.name, "consent": self.file.consent,
                "retention": self.file.retention, "connected": sum(p["connected"] for p in people),
                "done": sum(p["state"] == "done" for p in people), "participants": people,
                "sessions": [{"participant": info.participant, "complete": info.complete} for info, _ in written]}


def camera_problems(image: np.ndarray, faces: Faces) -> list[str]:
    """Why the camera's picture is not good enough yet, in words for the participant (empty: good)."""
    if len(faces) == 0:
        return [NO_FACE]
    if len(faces) > 1:
        return ["more than one face: only you should be in the picture"]
    x0, y0, x1, y1 = faces.xyxy[0]
    problems = []
    if (y1 - y0) < MIN_FACE_SHARE * image.shape[0]:
        problems.append("your face is small in the picture: come closer to the camera")
    crop = image[max(int(y0), 0):max(int(y1), 1), max(int(x0), 0):max(int(x1), 1)]
    brightness = float(crop.mean()) if crop.size else 0.0
    if brightness < BRIGHTNESS[0]:
        problems.append("your face is too dark: light it from the front")
    elif brightness > BRIGHTNESS[1]:
        problems.append("your face is too bright: move away from the light")
    right_eye, left_eye, nose = faces.keypoints[0][:3]
    eyes = float(np.linalg.norm(left_eye - right_eye))
    if eyes > 0 and abs(nose[0] - (left_eye[0] + right_eye[0]) / 2) / eyes > MAX_TURN:
        problems.append("look straight at the screen")
    return problems


def parse_phase(text: str | None) -> dict | None:
    """The page's message before a frame (see the module docstring), else None."""
    try:
        message = json.loads(text) if text else None
    except ValueError:
        return None
    ok = isinstance(message, dict) and message.get("phase") in ("check", "baseline", "stimulus", "done")
    return message if ok else None


class WaitingFrames:
    """One connection's frames waiting to be analysed, in order, with the page's other messages and the refusals
    between them: at most ``QUEUE_FRAMES`` frames, and refusals in a row (same reason) one notice that counts
    them, so a page sending faster than the service analyses cannot make it grow."""

    def __init__(self) -> None:
        self.items: deque = deque()
        self.frames = 0
        self.changed = asyncio.Event()

    def put(self, item) -> None:
        """A frame ``(phase, bytes, arrival)``, ``{"phase": "done"}`` or None (the page left)."""
        self.frames += isinstance(item, tuple)
        self.items.append(item)
        self.changed.set()

    def refuse(self, reason: str) -> None:
        last = self.items[-1] if self.items else None
        if isinstance(last, dict) and last.get("dropped") == reason:
            last["frames"] += 1
        else:
            self.put({"dropped": reason, "frames": 1})

    async def get(self):
        while not self.items:
            self.changed.clear()
            await self.changed.wait()
        item = self.items.popleft()
        self.frames -= isinstance(item, tuple)
        return item


async def serve_participant(websocket: WebSocket, panel: PanelStudy, participant: Participant) -> None:
    """Run one accepted connection of ``participant``: read frames as they come, analyse and record them in
    order (at most ``QUEUE_FRAMES`` waiting; the others refused and counted), answer each (refusals in a row
    at once); the frames that arrived are recorded even if the page leaves meanwhile. Then write the session,
    incomplete unless the page said it was done."""
    frames = WaitingFrames()
    reader = asyncio.create_task(_read_frames(websocket, panel.limits, participant, frames))
    open_ = True
    try:
        while (item := await frames.get()) is not None:
            if isinstance(item, dict) and "dropped" in item:
                answer = {"recorded": False, **item}
            elif isinstance(item, dict):  # {"phase": "done"}
                await asyncio.to_thread(panel.finish, participant)
                answer = {"done": True, "frames": participant.frames_recorded}
            else:
                phase, data, arrived = item
                try:
                    answer = await panel.pool.run(panel.handle_frame, participant, phase, data)
                except ApiError as error:
                    answer = {"error": error.message}
                answer["latency_ms"] = round((time.monotonic() - arrived) * 1000, 1)
            if open_:
                try:
                    await websocket.send_json(answer)
                except (WebSocketDisconnect, RuntimeError):  # the page left: record what it sent, answer no more
                    open_ = False
    finally:
        reader.cancel()
        if participant.state != "done" and participant.recorder is not None:
            await asyncio.to_thread(panel.write_session, participant)  # incomplete until they come back


async def _read_frames(websocket: WebSocket, limits: Limits, participant: Participant, frames: WaitingFrames) -> None:
    """Queue each frame with the phase message before it; ``None`` once the page leaves or says it is done."""
    phase: dict | None = None
    try:
        while True:
            message = await receive_within(websocket, limits.stream_idle_s)
            if message is None or message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is None:
                phase = parse_phase(message.get("text"))
                if phase and phase["phase"] == "done":
                    frames.put(phase)
                    return
                continue
            participant.frames_received += 1
            refused = "no phase message before it" if phase is None else \
                f"over {QUEUE_FRAMES} frames wait" if frames.frames >= QUEUE_FRAMES else \
                f"over {MAX_FPS} frames in a second" if not participant.allow_frame(time.monotonic()) else None
            if refused:
                participant.frames_dropped += 1
                frames.refuse(refused)  # answered in turn, so the page's count stays right
            else:
                frames.put((phase, message["bytes"], time.monotonic()))
            phase = None
    except WebSocketDisconnect:
        return
    finally:
        frames.put(None)
