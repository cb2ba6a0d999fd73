"""``emolens bench panels``: remote panels under load, participants as the page is, over real HTTP and WebSocket.

    emolens bench panels [--quick]          # default benchmarks/panels.md

A study with one stimulus (a short clip) is made in a temporary folder and served by a real
``emolens serve --study`` process on 127.0.0.1 with a token, with its default workers. Then, for each level
of 1, 2, 4, 8 and 12 participants at once (``--quick``: 1 and 8, shorter), each participant does what
``static/panel.js`` does: joins with their invitation code, consents, sends a few camera-check frames, then
streams while the stimulus "plays": every 1/15 s a ``{"phase": "stimulus", "t_s": currentTime}`` message and a
640x480 JPEG of real faces (the demo clip's frames, two faces, quality 0.85 as the page's ``toBlob``), without
waiting for answers, and finally ``{"phase": "done"}``. The simulated ``currentTime`` is the time since its
playback started, read when the frame is sent (as the page reads the player's when it grabs the camera).

Measured per level, over every participant:

- the share of the stimulus frames each participant sent that are in their session's timeline on disk
  (goal: at least 95% for every participant);
- frame latency, from sending a frame to reading the server's answer for it (goal: p95 at most 100 ms);
- the difference between each recorded row's ``stimulus_t_s`` and the ``currentTime`` sent with that frame
  (goal: p95 at most 40 ms);
- the frames the server refused, by reason (``over 45 frames wait``: its bounded queue per participant).

The goals are judged at 8 participants; the exit status is 1 when one is missed there.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import secrets
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import httpx
import numpy as np
import pandas as pd
from websockets.asyncio.client import connect

from emolens.bench.media import DEMO, write_video
from emolens.bench.registry import BenchRun

FPS = 15
CHECK_FRAMES = 5
JUDGED_AT = 8
GOAL_SHARE, GOAL_LATENCY_MS, GOAL_SYNC_MS = 0.95, 100.0, 40.0


@dataclass
class Participant:
    """What one simulated participant sent, and what the server answered and recorded."""

    id: str
    sent_t_s: list[float] = field(default_factory=list)  # the currentTime sent with each stimulus frame
    latencies_s: list[float] = field(default_factory=list)  # per answered stimulus frame
    recorded: list[bool] = field(default_factory=list)  # per stimulus frame, in order
    refused: Counter = field(default_factory=Counter)
    share: float = 0.0  # of the frames sent, those in the timeline on disk
    sync_ms: list[float] = field(default_factory=list)  # |stimulus_t_s recorded - currentTime sent|, per row


def demo_frames() -> list[bytes]:
    """The demo clip's frames (640x480, real faces) as the page's JPEGs."""
    capture = cv2.VideoCapture(str(DEMO))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        image = cv2.resize(image, (640, 480)) if image.shape[:2] != (480, 640) else image
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    capture.release()
    return frames


async def take_part(url: str, code: str, frames: list[bytes], stimulus_s: float) -> Participant:
    """One participant's page, from the invitation link to the thank-you (see the module docstring)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        joined = (await client.post("/panel/study/join", json={"code": code})).raise_for_status().json()
        await client.post("/panel/study/consent", json={"key": joined["key"], "agreed": True})
    participant = Participant(joined["participant"])
    ws_url = url.replace("http://", "ws://") + "/panel/study/ws"
    async with connect(ws_url, subprotocols=["emolens", f"panel.{joined['key']}"], max_size=None) as ws:
        for index in range(CHECK_FRAMES):
            await ws.send(json.dumps({"phase": "check"}))
            await ws.send(frames[index % len(frames)])
            await ws.recv()
        sent_at: list[float] = []
        receiver = asyncio.create_task(_answers(ws, sent_at, participant))
        started = time.perf_counter()
        index = 0
        while (current_time := time.perf_counter() - started) < stimulus_s:
            await ws.send(json.dumps({"phase": "stimulus", "stimulus": "ad", "t_s": current_time}))
            await ws.send(frames[index % len(frames)])
            sent_at.append(time.perf_counter())
            participant.sent_t_s.append(current_time)
            index += 1
            await asyncio.sleep(max(0.0, started + index / FPS - time.perf_counter()))
        await ws.send(json.dumps({"phase": "done"}))
        await receiver
    return participant


async def _answers(ws, sent_at: list[float], participant: Participant) -> None:
    """Read the server's answers to the stimulus frames in order (refusals in a row: one answer that counts
    them), until the one to ``done``."""
    async for text in ws:
        answer = json.loads(text)
        if answer.get("done"):
            return
        frames = answer.get("frames", 1) if "dropped" in answer else 1
        for _ in range(frames):
            participant.latencies_s.append(time.perf_counter() - sent_at[len(participant.latencies_s)])
            participant.recorded.append(bool(answer.get("recorded")))
        if "dropped" in answer or "error" in answer:
            participant.refused[answer.get("dropped") or answer["error"]] += frames


def check_timeline(study: Path, participant: Participant) -> None:
    """Compare the participant's session on disk with what they sent: the share kept, the stimulus time error."""
    rows = pd.read_csv(study / "sessions" / f"{participant.id}.csv")
    shown = rows[rows["stimulus"] == "ad"].drop_duplicates("frame")  # one row per frame (two faces: two rows)
    sent = np.asarray(participant.sent_t_s)[np.asarray(participant.recorded, dtype=bool)]
    participant.share = len(shown) / max(len(participant.sent_t_s), 1)
    if len(shown) == len(sent):  # the recorded frames, in the order sent
        participant.sync_ms = list(np.abs(shown["stimulus_t_s"].to_numpy() - sent) * 1000.0)


async def level(url: str, codes: list[str], frames: list[bytes], stimulus_s: float) -> list[Participant]:
    return list(await asyncio.gather(*(take_part(url, code, frames, stimulus_s) for code in codes)))


def summarise(count: int, participants: list[Participant], stimulus_s: float) -> dict:
    latencies = np.concatenate([p.latencies_s for p in participants]) * 1000.0
    sync = np.concatenate([p.sync_ms for p in participants] + [[]])
    refused = sum((p.refused for p in participants), Counter())
    return {"participants": count, "sent": sum(len(p.sent_t_s) for p in participants),
            "sent_each": float(np.mean([len(p.sent_t_s) for p in participants])),
            "recorded_per_s": sum(sum(p.recorded) for p in participants) / stimulus_s,
            "share_min": min(p.share for p in participants),
            "share_median": float(np.median([p.share for p in participants])),
            "latency_p50": float(np.percentile(latencies, 50)), "latency_p95": float(np.percentile(latencies, 95)),
            "sync_p50": float(np.percentile(sync, 50)) if len(sync) else float("nan"),
            "sync_p95": float(np.percentile(sync, 95)) if len(sync) else float("nan"),
            "refused": dict(refused)}


def met(row: dict) -> bool:
    return row["share_min"] >= GOAL_SHARE and row["latency_p95"] <= GOAL_LATENCY_MS and row["sync_p95"] <= GOAL_SYNC_MS


def run(bench: BenchRun) -> int:
    """Serve a study, run each level of participants, write ``bench.out``; 1 when a goal is missed at 8."""
    from emolens.bench.serve import start_server
    from emolens.study.file import create_study
    from emolens.study.invites import create_invites

    counts, stimulus_s = ((1, JUDGED_AT), 6.0) if bench.quick else ((1, 2, 4, JUDGED_AT, 12), 20.0)
    frames = demo_frames()
    token = secrets.token_urlsafe(16)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="emolens-bench-panels-") as scratch:
        clip = write_video(Path(scratch) / "ad.mp4", (160, 120), faces=1, seconds=stimulus_s, fps=5.0)
        study = Path(scratch) / "study"
        create_study(study, [str(clip)], seed=1)
        invites = [code for _, code in create_invites(study, sum(counts))]
        process, url = start_server("--study", str(study), token=token)
        try:
            for count in counts:
                codes, invites = invites[:count], invites[count:]
                participants = asyncio.run(level(url, codes, frames, stimulus_s))
                for participant in participants:
                    check_timeline(study, participant)
                row = summarise(count, participants, stimulus_s)
                bench.log(f"{count} participant(s): {row['share_min']:.1%} of frames kept at least, latency p95 "
                          f"{row['latency_p95']:.0f} ms, stimulus time p95 {row['sync_p95']:.1f} ms, "
                          f"refused {row['refused'] or 0}")
                rows.append(row)
        finally:
            process.terminate()
            process.wait(timeout=30)
    bench.write(markdown(bench, rows, stimulus_s, len(frames[0]) // 1024, load))
    judged = next(row for row in rows if row["participants"] == JUDGED_AT)
    return 0 if met(judged) else 1


def markdown(bench: BenchRun, rows: list[dict], stimulus_s: float, jpeg_kib: int, load: float | None) -> str:
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
               f"Python {platform.python_version()}")
    lines = ["# Remote panels under load", "",
             f"`{bench.command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine}; "
             f"`emolens serve --study` in its own process (default workers), the participants in another"
             + (f"; load average {load:.1f} when it started (other work shares these cores)." if load else "."),
             "" if not bench.quick else "\n**--quick: a smoke run, not figures to quote.**", "",
             f"Each participant streams {FPS} frames a second for a {stimulus_s:g} s stimulus: 640x480 JPEGs "
             f"(~{jpeg_kib} KiB) of the demo clip's two real faces, each after its `currentTime`, without waiting "
             "for answers, as the participant's page does. Kept: the share of the frames a participant sent that "
             "are in their session's timeline on disk (the lowest participant's, and the median). Latency: "
             "from sending a frame to reading the server's answer for it, over every frame of every participant. "
             "Stimulus time: |`stimulus_t_s` recorded − `currentTime` sent| per recorded frame. Refused: frames "
             "the server answered as not recorded, and why (its queue holds 45 frames per participant; more are "
             "dropped and counted, never queued without bound).", "",
             f"Goals (at {JUDGED_AT} participants): kept ≥ {GOAL_SHARE:.0%} for every participant, latency p95 ≤ "
             f"{GOAL_LATENCY_MS:.0f} ms, stimulus time p95 ≤ {GOAL_SYNC_MS:.0f} ms.", "",
             "| participants | frames sent | frames/s each | recorded/s, all | kept (lowest) | kept (median) | "
             "latency p50 ms | latency p95 ms | stimulus time p50 ms | stimulus time p95 ms | refused | goals |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for row in rows:
        refused = ", ".join(f"{reason}: {n}" for reason, n in row["refused"].items()) or "0"
        lines.append(f"| {row['participants']} | {row['sent']} | {row['sent_each'] / stimulus_s:.1f} | "
                     f"{row['recorded_per_s']:.0f} | "
                     f"{row['share_min']:.1%} | {row['share_median']:.1%} | {row['latency_p50']:.1f} | "
                     f"**{row['latency_p95']:.1f}** | {row['sync_p50']:.2f} | {row['sync_p95']:.2f} | {refused} | "
                     f"{'met' if met(row) else 'missed'} |")
    held = [row["participants"] for row in rows if met(row)]
    lines += ["", (f"Goals met with {', '.join(map(str, held))} participant(s) at once here." if held else
                   "Goals met with no number of participants here.")
              + f" Where the service analyses fewer frames a second than the participants send (recorded/s, all, "
              f"under {FPS} per participant), each participant's queue fills, and the frames over it are refused "
              "and counted (refused), not queued: the latency then stays near 45 frames at the rate each "
              "participant is served.", "",
              "The stimulus time recorded is the `currentTime` the page sent, kept to the millisecond: its error "
              "here is rounding. How far the page's `currentTime` is from the moment its camera frame was taken is "
              "the browser's part, not measured here.", ""]
    return "\n".join(lines)
