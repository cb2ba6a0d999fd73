"""The browser client: its page, the demo clip and the window's colours (open: they hold no data)."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from emolens.palette import emotion_hex
from emolens.serve.demo import demo_webm
from emolens.serve.service import service

STATIC = Path(str(resources.files("emolens.serve") / "static"))
router = APIRouter(include_in_schema=False)


@router.get("/")
async def client() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/demo.webm")
async def demo() -> Response:
    """The bundled demo clip of real faces, for the client's "no camera" state."""
    return Response(await asyncio.to_thread(demo_webm), media_type="video/webm")


@router.get("/palette.json")
async def palette(request: Request) -> dict[str, str]:
    """The window's emotion colours (``emolens.palette``), for the browser client."""
    pool = service(request).pool
    labels = list(pool.first.labels) if pool.ready.is_set() else []
    return dict(zip(labels, emotion_hex(labels)))
