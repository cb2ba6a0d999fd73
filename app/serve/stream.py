"""``WS /v1/stream``: JPEG (or PNG, WebP) frames in, one JSON message per processed frame out.

Two tasks share one connection. The reader takes every message as it arrives and keeps only
the newest frame in a one-place slot, counting the one it replaces as dropped; the processor
takes whatever is in the slot, analyses it on a worker thread and answers. A client sending
faster than the server can analyse thus gets answers about its newest frames with bounded
delay (latest wins, as in the window), and the last frame it sends is always answered.
Each connection has its own ``Session`` (the tracking the command line uses), so face IDs are
stable and scores smoothed over time. A frame's time is when it arrived, unless the client says
when it was captured: a text message ``{"t_s": 12.48}`` before a frame gives that frame's time in
seconds (the camera's clock, or a stimulus's ``currentTime``); the IDs and smoothing then equal
``emolens analyze``'s on the same frames.
A connection that sends nothing for ``limits.stream_idle_s`` is closed (code 1000, the reason
says why), so idle clients do not keep others out of the ``limits.streams`` places.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from emolens.pipeline import Session
from emolens.serve.config import Limits
from emolens.serve.errors import ApiError
from emolens.serve.media import decode_image
from emolens.serve.metrics import Metrics
from emolens.serve.pool import ModelPool
from emolens.serve.schemas import face_dicts


class _Slot:
    """The newest unprocessed frame: ``(index, arrival time, frame time (s), bytes)``; a new one replaces it."""

    def __init__(self) -> None:
        self.frame: tuple[int, float, float, bytes] | None = None
        self.closed = False
        self.changed = asyncio.Event()

    def put(self, frame: tuple[int, float, float, bytes]) -> bool:
        """Store ``frame``; True when it replaced one never processed."""
        replaced = self.frame is not None
        self.frame = frame
        self.changed.set()
        return replaced

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    async def take(self) -> tuple[int, float, float, bytes] | None:
        """The newest frame once there is one; None when the connection closed."""
        while self.frame is None and not self.closed:
            self.changed.clear()
            await self.changed.wait()
        frame, self.frame = self.frame, None
        return None if self.closed else frame


async def serve_stream(websocket: WebSocket, pool: ModelPool, limits: Limits, metrics: Metrics) -> None:
    """Run one accepted connection until the client closes it."""
    options = pool.options
    session = Session(options)
    labels = pool.first.labels
    slot = _Slot()
    opened = time.monotonic()
    counts = {"received": 0, "dropped": 0}
    announced: float | None = None  # the capture time a client gave for its next frame

    async def read() -> None:
        nonlocal announced
        try:
            while True:
                message = await receive_within(websocket, limits.stream_idle_s)
                if message is None:
                    await websocket.close(code=1000, reason=f"idle: no frame for {limits.stream_idle_s:g} s")
                    return
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is None and (given := _frame_time(message.get("text"))) is not None:
                    announced = given
                    continue
                index = counts["received"]
                counts["received"] += 1
                if data is None:
                    metrics.frames.labels("invalid").inc()
                    await websocket.send_json({"frame": index, "error": "send each frame as a binary message "
                                                                        "holding a JPEG, PNG or WebP image, "
                                                                        "after an optional {\"t_s\": seconds}"})
                    continue
                metrics.frames.labels("received").inc()
                arrived = time.monotonic() - opened
                if slot.put((index, arrived, arrived if announced is None else announced, data)):
                    counts["dropped"] += 1
                    metrics.frames.labels("dropped").inc()
                announced = None
        except WebSocketDisconnect:
            return
        finally:
            slot.close()

    def analyze(data: bytes, t_s: float):  # on a worker thread; one frame of this connection at a time
        return pool.analyze(decode_image(data, limits), session, t_s)

    async def process() -> None:
        while (frame := await slot.take()) is not None:
            index, arrived, t_s, data = frame
            try:
                faces = await pool.run(analyze, data, t_s)
            except ApiError as error:
                metrics.frames.labels("invalid").inc()
                await websocket.send_json({"frame": index, "error": error.message})
                continue
            metrics.faces.labels("stream").inc(len(faces))
            await websocket.send_json({
                "frame": index, "t_s": round(t_s, 4), "faces": face_dicts(faces, labels, stream=True),
                "dropped": counts["dropped"], "latency_ms": round((time.monotonic() - opened - arrived) * 1000, 2)})

    reader = asyncio.create_task(read())
    try:
        await process()
    except (WebSocketDisconnect, RuntimeError):  # the client left while we answered
        pass
    finally:
        reader.cancel()


async def receive_within(websocket: WebSocket, seconds: float) -> dict | None:
    """The client's next message, or None when it sent nothing for ``seconds`` (an idle connection)."""
    try:
        async with asyncio.timeout(seconds):
            return await websocket.receive()
    except TimeoutError:
        return None


def _frame_time(text: str | None) -> float | None:
    """The seconds of a ``{"t_s": seconds}`` message (a finite number, 0 or more), else None."""
    try:
        value = json.loads(text)["t_s"] if text else None
    except (ValueError, TypeError, KeyError):
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) and value >= 0 else None
