"""``POST /v1/images`` (every face of one image) and the video jobs: ``POST /v1/videos``,
``GET|DELETE /v1/jobs/{id}``, its ``timeline.csv`` and ``report``."""

from __future__ import annotations

import asyncio
import io
import mimetypes
import time
import unicodedata
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from emolens.errors import EmolensError
from emolens.pipeline import Session
from emolens.serve.errors import ApiError
from emolens.serve.jobs import Job, JobStore
from emolens.serve.media import check_image_type, check_video_type, decode_image, media_type, open_video
from emolens.serve.schemas import ErrorOut, ImageResult, JobStatus, face_dicts
from emolens.serve.service import ERROR_RESPONSES, Service, require_ready, require_token, service
from emolens.serve.uploads import read_upload

router = APIRouter(tags=["analysis"], dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)


def _binary_body(types: list[str], what: str) -> dict:
    """OpenAPI for a body that is either the raw file or a multipart form with a ``file`` field."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    form = {"schema": {"type": "object", "required": ["file"],
                       "properties": {"file": {"type": "string", "format": "binary", "description": what}}}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": form,
                                                          **{media: binary for media in types}}}}


def _analyze_image(running: Service, data: bytes) -> dict:
    """Decode and analyse one uploaded image (on an inference thread); the ``ImageResult``."""
    started = time.perf_counter()
    image = decode_image(data, running.limits)
    decoded = time.perf_counter()
    faces = running.pool.analyze(image, Session(running.pool.options), 0.0)  # stands alone: IDs 1..n
    running.metrics.faces.labels("images").inc(len(faces))
    return {"width": image.shape[1], "height": image.shape[0], "faces": face_dicts(faces, running.pool.first.labels),
            "timings": {"decode_ms": round((decoded - started) * 1000, 3),
                        "inference_ms": round((time.perf_counter() - decoded) * 1000, 3)}}


@router.post("/v1/images", response_model=ImageResult,
             openapi_extra=_binary_body(["image/jpeg", "image/png", "image/webp"], "a JPEG, PNG or WebP image"))
async def post_image(request: Request) -> JSONResponse:
    """Every face of one image (a raw body or a multipart ``file``): box, keypoints, probabilities."""
    running = service(request)
    async with running.pool.admitted():
        if not _is_form(request):
            check_image_type(request.headers.get("content-type"))
        body = io.BytesIO()
        upload = await read_upload(request, body, running.limits.image_bytes, running.limits)
        check_image_type(upload.content_type)
        result = await running.pool.run(_analyze_image, running, body.getvalue())
    # Built in ImageResult's shape already (tests/serve check it against the schema): sent as it is, not
    # validated into the model and dumped again on every request.
    return JSONResponse(result)


@router.post("/v1/videos", response_model=JobStatus, status_code=202, dependencies=[Depends(require_ready)],
             responses={507: {"model": ErrorOut}},
             openapi_extra=_binary_body(["video/mp4", "video/webm", "application/octet-stream"], "a video file"))
async def post_video(request: Request, every: int = Query(1, ge=1, description="analyse one frame in N"),
                     keypoints: bool = Query(False, description="add the keypoint columns to the CSV"),
                     filename: str = Query("", max_length=200, description="name for a raw body's video"),
                     keep_upload: bool = Query(False, description="keep the uploaded video in the job's folder "
                                                                  "until the job expires (default: deleted "
                                                                  "once the timeline is written)")):
    """Start a job over an uploaded video; poll ``GET /v1/jobs/{id}`` until it is done."""
    running = service(request)
    jobs, limits = running.jobs, running.limits
    if not _is_form(request):
        check_video_type(request.headers.get("content-type"))
    job = jobs.create(filename, keypoints, keep_upload)
    try:
        partial = job.folder / "upload.part"
        with jobs.sink(job, partial) as sink:
            upload = await read_upload(request, sink, limits.video_bytes, limits)
        check_video_type(upload.content_type)
        name = _file_name(upload.filename or filename) or "upload" + (
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


@router.get("/v1/jobs/{job_id}", response_model=JobStatus)
async def get_job(request: Request, job_id: str) -> JobStatus:
    """A job's state and progress; once done, the URLs of its timeline and report."""
    jobs = service(request).jobs
    return _status(jobs.get(job_id), jobs)


@router.delete("/v1/jobs/{job_id}", status_code=204, response_class=Response)
async def delete_job(request: Request, job_id: str) -> Response:
    """Delete a job and everything in its folder now; a job still running is stopped first."""
    jobs = service(request).jobs
    await asyncio.to_thread(jobs.erase, jobs.pop(job_id))
    return Response(status_code=204)


@router.get("/v1/jobs/{job_id}/timeline.csv", response_class=FileResponse,
            responses={200: {"content": {"text/csv": {}}}, 409: {"model": ErrorOut}})
async def get_timeline(request: Request, job_id: str) -> FileResponse:
    """The job's CSV timeline, in the schema of ``emolens analyze``."""
    job = _finished(service(request).jobs.get(job_id))
    return FileResponse(job.timeline, media_type="text/csv", filename=f"{Path(job.name).stem}.csv")


@router.get("/v1/jobs/{job_id}/report", response_class=HTMLResponse, responses={409: {"model": ErrorOut}})
async def get_report(request: Request, job_id: str) -> FileResponse:
    """The job's HTML report (as ``emolens report`` writes it), built on first request."""
    jobs = service(request).jobs
    job = _finished(jobs.get(job_id))
    try:
        html = await asyncio.to_thread(jobs.report, job)  # not on the inference threads: charts take seconds
    except EmolensError as error:
        raise ApiError(422, f"cannot build the report: {error}") from None
    return FileResponse(html, media_type="text/html")


def _file_name(name: str) -> str:
    """An uploaded file's base name without control or format characters (a NUL, a line break, a bidi override:
    the name is the CSV's ``source`` column and the report's title)."""
    return Path("".join(char for char in name if unicodedata.category(char)[0] != "C")).name


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
