"""``WS /v1/stream``: JPEG (or PNG, WebP) frames in, one JSON message per processed frame out.

Two tasks share one connection. The reader takes every message as it arrives and keeps only
the newest frame in a one-place slot, counting the one it replaces as dropped; the processor
takes whatever is in the slot, analyses it on a worker thread and answers. A client sending
faster than the server can analyse thus gets answers about its newest frames with bounded
delay (latest wins, as in the window), and the last frame it sends is always answered.
Each connection has its own tracker, so face IDs are stable and scores smoothed over time.
A connection that sends nothing for ``limits.stream_idle_s`` is closed (code 1000, the reason
says why), so idle clients do not keep others out of the ``limits.streams`` places.
"""

from __future__ import annotations

import asyncio
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from emolens.serve.config import Limits
from emolens.serve.engine import Engine
from emolens.serve.errors import ApiError
from emolens.serve.media import decode_image
from emolens.serve.metrics import Metrics
from emolens.serve.schemas import face_dicts
from emolens.track import FaceTracker


class _Slot:
    """The newest unprocessed frame: ``(index, arrival time in s, bytes)``; a new one replaces it."""

    def __init__(self) -> None:
        self.frame: tuple[int, float, bytes] | None = None
        self.closed = False
        self.changed = asyncio.Event()

    def put(self, frame: tuple[int, float, bytes]) -> bool:
        """Store ``frame``; True when it replaced one never processed."""
        replaced = self.frame is not None
        self.frame = frame
        self.changed.set()
        return replaced

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    async def take(self) -> tuple[int, float, bytes] | None:
        """The newest frame once there is one; None when the connection closed."""
        while self.frame is None and not self.closed:
            self.changed.clear()
            await self.changed.wait()
        frame, self.frame = self.frame, None
        return None if self.closed else frame


async def serve_stream(websocket: WebSocket, engine: Engine, limits: Limits, metrics: Metrics) -> None:
    """Run one accepted connection until the client closes it."""
    options = engine.options
    tracker = FaceTracker(options.max_gap_s, options.tau_s)
    labels = engine.first.labels
    slot = _Slot()
    opened = time.monotonic()
    counts = {"received": 0, "dropped": 0}

    async def read() -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(limits.stream_idle_s):
                        message = await websocket.receive()
                except TimeoutError:
                    await websocket.close(code=1000, reason=f"idle: no frame for {limits.stream_idle_s:g} s")
                    return
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                index = counts["received"]
                counts["received"] += 1
                if data is None:
                    metrics.frames.labels("invalid").inc()
                    await websocket.send_json({"frame": index, "error": "send each frame as a binary message "
                                                                        "holding a JPEG, PNG or WebP image"})
                    continue
                metrics.frames.labels("received").inc()
                if slot.put((index, time.monotonic() - opened, data)):
                    counts["dropped"] += 1
                    metrics.frames.labels("dropped").inc()
        except WebSocketDisconnect:
            return
        finally:
            slot.close()

    def analyse(data: bytes):
        return engine.faces(decode_image(data, limits))

    async def process() -> None:
        while (frame := await slot.take()) is not None:
            index, t_s, data = frame
            try:
                faces = await engine.run(analyse, data)
            except ApiError as error:
                metrics.frames.labels("invalid").inc()
                await websocket.send_json({"frame": index, "error": error.message})
                continue
            faces = tracker.update(faces, t_s)
            metrics.faces.labels("stream").inc(len(faces))
            await websocket.send_json({
                "frame": index, "t_s": round(t_s, 4), "faces": face_dicts(faces, labels, stream=True),
                "dropped": counts["dropped"], "latency_ms": round((time.monotonic() - opened - t_s) * 1000, 2)})

    reader = asyncio.create_task(read())
    try:
        await process()
    except (WebSocketDisconnect, RuntimeError):  # the client left while we answered
        pass
    finally:
        reader.cancel()
