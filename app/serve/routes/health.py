"""``/healthz`` (open), ``/readyz``, ``/v1/model`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from emolens import __version__
from emolens.serve.schemas import Health, ModelInfo, Ready
from emolens.serve.service import ERROR_RESPONSES, Service, require_ready, require_token, service

open_router = APIRouter(tags=["service"])
router = APIRouter(tags=["service"], dependencies=[Depends(require_token)], responses=ERROR_RESPONSES)


@open_router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Alive: the process answers (open without a token, for container health checks)."""
    return Health()


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
async def readyz(request: Request):
    """Ready: the model is loaded; names the ONNX Runtime provider that runs it. 503 until then."""
    running: Service = service(request)
    pool, workers = running.pool, running.config.workers
    if not pool.ready.is_set():
        body = Ready(ready=False, workers=workers, detail=pool.error or "loading the model")
        return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
    classifier = pool.first.classifier
    return Ready(ready=True, provider=classifier.provider, device=classifier.describe(), workers=workers)


@router.get("/v1/model", response_model=ModelInfo, dependencies=[Depends(require_ready)])
async def model(request: Request) -> ModelInfo:
    """The model card: labels in output order, input contract, accuracy figures, sha256."""
    first = service(request).pool.first
    card = first.card
    return ModelInfo(name=card.info.get("name", card.model_path.stem), version=__version__,
                     labels=list(card.labels), sha256=card.sha256, input=card.info["input"],
                     metrics=card.info.get("metrics", {}), quantization=card.info.get("quantization"),
                     provider=first.classifier.provider)


@router.get("/metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    """Prometheus metrics: requests, latencies, faces, queue depth, streams, jobs."""
    return Response(service(request).metrics.render(), media_type="text/plain; version=0.0.4")
