"""``WS /v1/stream``: the token and the place checks, then the loop (``emolens.serve.stream``)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from emolens.serve import auth
from emolens.serve.service import service
from emolens.serve.stream import serve_stream

router = APIRouter()


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """JPEG frames in, one ``StreamMessage`` per processed frame out (see ``emolens.serve.stream``)."""
    running = service(websocket)
    protocols = websocket.scope.get("subprotocols", [])
    if not auth.stream_allowed(running.config.token, websocket.headers.get("authorization"), protocols):
        await websocket.close(code=1008, reason="missing or wrong token")
        return
    await websocket.accept(subprotocol=auth.STREAM_PROTOCOL if auth.STREAM_PROTOCOL in protocols else None)
    pool, limits = running.pool, running.limits
    if not pool.ready.is_set() or running.streams_open >= limits.streams:
        reason = "the model is still loading" if not pool.ready.is_set() else \
            f"busy: {limits.streams} streams are open"
        await websocket.close(code=1013, reason=reason)  # 1013: try again later
        return
    running.streams_open += 1
    try:
        await serve_stream(websocket, pool, limits, running.metrics)
    finally:
        running.streams_open -= 1
