"""Remote panels and the operator's dashboard (``emolens serve --study DIR``; see ``emolens.serve.panel``).

Open pages (static, no data): ``GET /panel/{study}`` (the participant's page) and ``GET /studies/{study}``
(the dashboard). The participant's calls need their invitation code or the key ``join`` gave them
(in a room, ``join`` with the service's token, or with none on localhost, draws a new participant):
``POST /panel/{study}/join``, ``POST /panel/{study}/consent``, ``GET /panel/{study}/stimuli/{name}``
(header ``X-Emolens-Key``) and ``WS /panel/{study}/ws`` (subprotocol ``panel.<key>``). The dashboard's
data needs the service's token: ``GET /studies/{study}/status``, ``POST /studies/{study}/report``
(rebuilt now) and ``GET /studies/{study}/report/study.html``.
"""

from __future__ import annotations

import asyncio
import mimetypes

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from emolens.errors import EmolensError
from emolens.serve import auth
from emolens.serve.errors import ApiError
from emolens.serve.panel import PanelStudy, Participant, serve_participant
from emolens.serve.routes.client import STATIC
from emolens.serve.service import Service, require_token, service
from emolens.study.file import REPORT_DIR
from emolens.study.report import build_study_report

router = APIRouter(include_in_schema=False)
KEY_PROTOCOL = "panel."
REPLACED_WAIT_S = 10.0


class JoinIn(BaseModel):
    code: str | None = Field(default=None, max_length=100)
    key: str | None = Field(default=None, max_length=100)


class ConsentIn(BaseModel):
    key: str = Field(max_length=100)
    agreed: bool


def _panel(running: Service, study: str) -> PanelStudy:
    if study not in running.panels:
        raise ApiError(404, f"no study {study!r} is served here")
    return running.panels[study]


def _participant(panel: PanelStudy, key: str | None) -> Participant:
    participant = panel.find(key)
    if participant is None:
        raise ApiError(403, "no session has this key: open your invitation link again")
    return participant


def _has_token(request: Request) -> bool:
    try:
        require_token(request)
    except ApiError:
        return False
    return True


def _joined(panel: PanelStudy, participant: Participant) -> dict:
    """What the page needs: who, what to say, what to play in which order, where to go on."""
    study = panel.file
    return {"participant": participant.id, "key": participant.key, "state": participant.state,
            "checked": participant.checked, "title": study.name, "consent": study.consent,
            "retention": study.retention, "baseline_s": study.baseline_s,
            "stimuli": [{"name": name, "kind": study.stimulus(name).kind,
                         "duration_s": study.stimulus(name).duration_s,
                         "url": f"/panel/{panel.name}/stimuli/{name}"} for name in participant.order],
            "resume": panel.resume_at(participant)}


@router.get("/panel/{study}")
async def panel_page(study: str, request: Request) -> FileResponse:
    _panel(service(request), study)
    return FileResponse(STATIC / "panel.html", media_type="text/html")


@router.post("/panel/{study}/join")
async def join(study: str, body: JoinIn, request: Request) -> dict:
    panel = _panel(service(request), study)
    client = request.client.host if request.client else "?"
    participant = panel.join(body.code, body.key, _has_token(request), client)
    return _joined(panel, participant)


@router.post("/panel/{study}/consent")
async def consent(study: str, body: ConsentIn, request: Request) -> dict:
    panel = _panel(service(request), study)
    participant = _participant(panel, body.key)
    if participant.state not in ("joined", "declined"):
        return _joined(panel, participant)  # answered already (a reload)
    try:
        await asyncio.to_thread(panel.answer_consent, participant, body.agreed)
    except EmolensError as error:
        raise ApiError(503, str(error)) from None
    return _joined(panel, participant)


@router.get("/panel/{study}/stimuli/{name}")
async def stimulus(study: str, name: str, request: Request) -> FileResponse:
    panel = _panel(service(request), study)
    _participant(panel, request.headers.get("x-emolens-key"))
    if name not in panel.file.names:
        raise ApiError(404, f"the study has no stimulus {name!r}")
    path = panel.folder / panel.file.stimulus(name).file
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")


@router.websocket("/panel/{study}/ws")
async def participant_stream(websocket: WebSocket, study: str) -> None:
    """Camera frames in, one answer per frame out (``emolens.serve.panel.serve_participant``)."""
    running = service(websocket)
    panel = running.panels.get(study)
    protocols = websocket.scope.get("subprotocols", [])
    key = next((p[len(KEY_PROTOCOL):] for p in protocols if p.startswith(KEY_PROTOCOL)), None)
    participant = panel.find(key) if panel is not None else None
    if participant is None or participant.state != "watching":
        await websocket.close(code=1008, reason="no session is open for this key: join and consent first")
        return
    if not running.pool.ready.is_set():
        await websocket.close(code=1013, reason="the model is still loading")
        return
    await websocket.accept(subprotocol=auth.STREAM_PROTOCOL if auth.STREAM_PROTOCOL in protocols else None)
    if participant.connection is not None:  # a reload, or a second page: the newest one goes on
        await participant.connection.close(code=1000, reason="continued in another page")
    try:
        async with asyncio.timeout(REPLACED_WAIT_S):
            await participant.turn.acquire()
    except TimeoutError:
        await websocket.close(code=1013, reason="the previous connection is still closing; retry")
        return
    participant.connection = websocket
    participant.user_agent = websocket.headers.get("user-agent", "")
    try:
        await asyncio.to_thread(panel.open_recording, participant)  # back after the service restarted
        await serve_participant(websocket, panel, participant)
    finally:
        if participant.connection is websocket:
            participant.connection = None
        participant.turn.release()


@router.get("/studies/{study}")
async def dashboard_page(study: str, request: Request) -> FileResponse:
    _panel(service(request), study)
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@router.get("/studies/{study}/status", dependencies=[Depends(require_token)])
async def status(study: str, request: Request) -> dict:
    panel = _panel(service(request), study)
    try:
        return await asyncio.to_thread(panel.status)
    except EmolensError as error:
        raise ApiError(503, str(error)) from None


@router.post("/studies/{study}/report", dependencies=[Depends(require_token)])
async def rebuild_report(study: str, request: Request) -> dict:
    """The study report from the sessions on disk now (those in progress join once they end or drop)."""
    panel = _panel(service(request), study)
    try:
        result = await asyncio.to_thread(build_study_report, panel.folder, True)
    except EmolensError as error:
        raise ApiError(409, str(error)) from None
    return {"report": f"/studies/{study}/report/study.html", "warnings": result.warnings}


@router.get("/studies/{study}/report/study.html", dependencies=[Depends(require_token)])
async def report(study: str, request: Request) -> FileResponse:
    path = _panel(service(request), study).folder / REPORT_DIR / "study.html"
    if not path.is_file():
        raise ApiError(404, "no report yet: rebuild it from the dashboard")
    return FileResponse(path, media_type="text/html")
