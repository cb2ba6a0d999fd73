"""The FastAPI application: routes, the token rule, and the service's life cycle.

``create_app(config)`` builds an app that, once started, loads ``config.workers`` sets of models on a
thread (``/healthz`` answers at once, ``/readyz`` once they are loaded), sweeps expired jobs, and
on shutdown stops the job thread and deletes every job folder. Every request passes the Host and
Origin rules first (``emolens.serve.guard``). Open without a token: ``/healthz``,
the browser client (``/``, ``/static/*``, ``/palette.json``, ``/demo.webm``) and the OpenAPI pages,
which hold no data; everything else follows the token rule (``emolens.serve.auth``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import sys
import threading
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Query, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from emolens import __version__
from emolens.errors import EmolensError
from emolens.palette import emotion_hex
from emolens.pipeline import Session
from emolens.serve import auth
from emolens.serve.config import ServeConfig
from emolens.serve.demo import demo_webm
from emolens.serve.engine import Engine
from emolens.serve.errors import ApiError, install_handlers
from emolens.serve.guard import HostOriginGuard
from emolens.serve.jobs import Job, JobStore
from emolens.serve.media import check_image_type, check_video_type, decode_image, media_type, open_video
from emolens.serve.metrics import Metrics, MetricsMiddleware
from emolens.serve.schemas import ErrorOut, Health, ImageResult, JobStatus, ModelInfo, Ready, face_dicts
from emolens.serve.stream import serve_stream
from emolens.serve.uploads import read_upload

log = logging.getLogger("emolens.serve")

STATIC = Path(str(resources.files("emolens.serve") / "static"))
_ERRORS = {code: {"model": ErrorOut} for code in (401, 403, 408, 413, 415, 421, 422, 503)}


def _binary_body(types: list[str], what: str) -> dict:
    """OpenAPI for a body that is either the raw file or a multipart form with a ``file`` field."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    form = {"schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary", "description": what}}}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": form,
                                                          **{media: binary for media in types}}}}


def create_app(config: ServeConfig) -> FastAPI:
    """The service for ``config``; see the module docstring for what starting it does."""
    limits = config.limits
    engine = Engine(config.analyzer, config.workers, limits.queue)
    jobs = JobStore(config.jobs_dir, engine, limits)
    streams = {"open": 0}
    metrics = Metrics(lambda: engine.in_flight, jobs.active, lambda: streams["open"])

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        def load() -> None:
            engine.load()
            if engine.error:
                print(f"emolens: error: {engine.error}", file=sys.stderr, flush=True)
            else:
                print(f"emolens: {engine.first.classifier.describe()}; {config.workers} worker(s) ready",
                      file=sys.stderr, flush=True)

        threading.Thread(target=load, name="emolens-load", daemon=True).start()
        sweeper = asyncio.create_task(_sweep(jobs, max(0.5, min(limits.job_ttl_s / 4, 60.0))))
        yield
        sweeper.cancel()
        await asyncio.to_thread(jobs.close)
        await asyncio.to_thread(engine.close)

    app = FastAPI(title="Emolens", version=__version__, lifespan=lifespan,
                  description="Seven emotions for every face in an image, a video or a live stream.")
    install_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(HostOriginGuard, hosts=config.accepted_hosts(), origins=config.allowed_origins)
    app.state.engine, app.state.jobs = engine, jobs

    def require_token(request: Request) -> None:
        auth.check_request(config.token, request.headers.get("authorization"))

    def require_ready() -> None:
        if not engine.ready.is_set():
            raise ApiError(503, engine.error or "the model is still loading; retry shortly", {"Retry-After": "1"})

    api = APIRouter(dependencies=[Depends(require_token)], responses=_ERRORS)

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> Health:
        """Alive: the process answers (open without a token, for container health checks)."""
        return Health()

    @api.get("/readyz", response_model=Ready, tags=["service"], responses={503: {"model": Ready}})
    async def readyz():
        """Ready: the model is loaded; names the ONNX Runtime provider that runs it. 503 until then."""
        if not engine.ready.is_set():
            body = Ready(ready=False, workers=config.workers, detail=engine.error or "loading the model")
            return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
        classifier = engine.first.classifier
        return Ready(ready=True, provider=classifier.provider, device=classifier.describe(), workers=config.workers)

    @api.get("/v1/model", response_model=ModelInfo, tags=["service"], dependencies=[Depends(require_ready)])
    async def model() -> ModelInfo:
        """The model card: labels in output order, input contract, accuracy figures, sha256."""
        card = engine.first.card
        return ModelInfo(name=card.info.get("name", card.model_path.stem), version=__version__,
                         labels=list(card.labels), sha256=card.sha256, input=card.info["input"],
                         metrics=card.info.get("metrics", {}), quantization=card.info.get("quantization"),
                         provider=engine.first.classifier.provider)

    @api.get("/metrics", tags=["service"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics: requests, latencies, faces, queue depth, streams, jobs."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    def analyse_image(data: bytes) -> dict:
        started = time.perf_counter()
        image = decode_image(data, limits)
        decoded = time.perf_counter()
        faces = engine.analyse(image, Session(engine.options), 0.0)
        metrics.faces.labels("images").inc(len(faces))
        return {"width": image.shape[1], "height": image.shape[0], "faces": face_dicts(faces, engine.first.labels),
                "timings": {"decode_ms": round((decoded - started) * 1000, 3),
                            "inference_ms": round((time.perf_counter() - decoded) * 1000, 3)}}

    @api.post("/v1/images", response_model=ImageResult, tags=["analysis"],
              openapi_extra=_binary_body(["image/jpeg", "image/png", "image/webp"], "a JPEG, PNG or WebP image"))
    async def post_image(request: Request) -> dict:
        """Every face of one image (a raw body or a multipart ``file``): box, keypoints, probabilities."""
        async with engine.admitted():
            if not _is_form(request):
                check_image_type(request.headers.get("content-type"))
            body = io.BytesIO()
            upload = await read_upload(request, body, limits.image_bytes, limits)
            check_image_type(upload.content_type)
            return await engine.run(analyse_image, body.getvalue())

    @api.post("/v1/videos", response_model=JobStatus, status_code=202, tags=["analysis"],
              dependencies=[Depends(require_ready)], responses={507: {"model": ErrorOut}},
              openapi_extra=_binary_body(["video/mp4", "video/webm", "application/octet-stream"], "a video file"))
    async def post_video(request: Request, every: int = Query(1, ge=1, description="analyse one frame in N"),
                         keypoints: bool = Query(False, description="add the keypoint columns to the CSV"),
                         filename: str = Query("", max_length=200, description="name for a raw body's video"),
                         keep_upload: bool = Query(False, description="keep the uploaded video in the job's folder "
                                                                      "until the job expires (default: deleted "
                                                                      "once the timeline is written)")):
        """Start a job over an uploaded video; poll ``GET /v1/jobs/{id}`` until it is done."""
        if not _is_form(request):
            check_video_type(request.headers.get("content-type"))
        job = jobs.create(filename, keypoints, keep_upload)
        try:
            partial = job.folder / "upload.part"
            with jobs.sink(job, partial) as sink:
                upload = await read_upload(request, sink, limits.video_bytes, limits)
            check_video_type(upload.content_type)
            name = Path(upload.filename or filename).name or "upload" + (
                mimetypes.guess_extension(media_type(upload.content_type)) or "")
            path = jobs.input_path(job, name)
            partial.rename(path)
            job.upload = path
            source = await asyncio.to_thread(open_video, path, limits, every)
        except BaseException:
            jobs.discard(job)
            raise
        job.name = name
        jobs.start(job, source)
        return _status(job, jobs)

    @api.get("/v1/jobs/{job_id}", response_model=JobStatus, tags=["analysis"])
    async def get_job(job_id: str) -> JobStatus:
        """A job's state and progress; once done, the URLs of its timeline and report."""
        return _status(jobs.get(job_id), jobs)

    @api.delete("/v1/jobs/{job_id}", status_code=204, tags=["analysis"], response_class=Response)
    async def delete_job(job_id: str) -> Response:
        """Delete a job and everything in its folder now; a job still running is stopped first."""
        await asyncio.to_thread(jobs.erase, jobs.pop(job_id))
        return Response(status_code=204)

    @api.get("/v1/jobs/{job_id}/timeline.csv", tags=["analysis"], response_class=FileResponse,
             responses={200: {"content": {"text/csv": {}}}, 409: {"model": ErrorOut}})
    async def get_timeline(job_id: str) -> FileResponse:
        """The job's CSV timeline, in the schema of ``emolens analyze``."""
        job = _finished(jobs.get(job_id))
        return FileResponse(job.timeline, media_type="text/csv", filename=f"{Path(job.name).stem}.csv")

    @api.get("/v1/jobs/{job_id}/report", tags=["analysis"], response_class=HTMLResponse,
             responses={409: {"model": ErrorOut}})
    async def get_report(job_id: str) -> FileResponse:
        """The job's HTML report (as ``emolens report`` writes it), built on first request."""
        job = _finished(jobs.get(job_id))
        try:
            html = await asyncio.to_thread(jobs.report, job)  # not on the inference threads: charts take seconds
        except EmolensError as error:
            raise ApiError(422, f"cannot build the report: {error}") from None
        return FileResponse(html, media_type="text/html")

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        """JPEG frames in, one ``StreamMessage`` per processed frame out (see ``emolens.serve.stream``)."""
        protocols = websocket.scope.get("subprotocols", [])
        if not auth.stream_allowed(config.token, websocket.headers.get("authorization"), protocols):
            await websocket.close(code=1008, reason="missing or wrong token")
            return
        await websocket.accept(subprotocol=auth.STREAM_PROTOCOL if auth.STREAM_PROTOCOL in protocols else None)
        if not engine.ready.is_set() or streams["open"] >= limits.streams:
            reason = "the model is still loading" if not engine.ready.is_set() else \
                f"busy: {limits.streams} streams are open"
            await websocket.close(code=1013, reason=reason)  # 1013: try again later
            return
        streams["open"] += 1
        try:
            await serve_stream(websocket, engine, limits, metrics)
        finally:
            streams["open"] -= 1

    @app.get("/", include_in_schema=False)
    async def client() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/demo.webm", include_in_schema=False)
    async def demo() -> Response:
        """The bundled demo clip of real faces, for the client's "no camera" state."""
        return Response(await asyncio.to_thread(demo_webm), media_type="video/webm")

    @app.get("/palette.json", include_in_schema=False)
    async def palette() -> dict[str, str]:
        """The window's emotion colours (``emolens.palette``), for the browser client."""
        labels = list(engine.first.labels) if engine.ready.is_set() else []
        return dict(zip(labels, emotion_hex(labels)))

    app.include_router(api)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _is_form(request: Request) -> bool:
    return media_type(request.headers.get("content-type")) == "multipart/form-data"


def _finished(job: Job) -> Job:
    if job.state != "done":
        detail = f"it failed: {job.error}" if job.state == "failed" else \
            f"it is {job.state}; poll GET /v1/jobs/{job.id} until its state is done"
        raise ApiError(409, f"job {job.id} has no timeline yet: {detail}")
    return job


def _status(job: Job, jobs: JobStore) -> JobStatus:
    done = job.state == "done"
    progress = 1.0 if done else (min(job.frames_done / job.frames_total, 0.99) if job.frames_total else 0.0)
    return JobStatus(id=job.id, state=job.state, progress=round(progress, 4), frames_done=job.frames_done,
                     frames_total=job.frames_total, faces=job.faces, error=job.error, created=job.created,
                     finished=job.finished, expires=jobs.expires(job),
                     timeline=f"/v1/jobs/{job.id}/timeline.csv" if done else None,
                     report=f"/v1/jobs/{job.id}/report" if done else None)


async def _sweep(jobs: JobStore, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        removed = jobs.sweep()
        if removed:
            log.info("deleted %d expired job folder(s)", removed)
