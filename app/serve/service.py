"""What every route of the service shares: the settings, the models' pool, the jobs, the metrics, the open
streams; and the two rules routes depend on (a token, a loaded model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from starlette.requests import HTTPConnection

from emolens.errors import EmolensError
from emolens.serve import auth
from emolens.serve.config import Limits, ServeConfig
from emolens.serve.errors import ApiError
from emolens.serve.jobs import JobStore
from emolens.serve.metrics import Metrics
from emolens.serve.panel import PanelStudy
from emolens.serve.pool import ModelPool
from emolens.serve.schemas import ErrorOut
from emolens.study.file import load_study

# The error answers a route behind the token may give (OpenAPI).
ERROR_RESPONSES = {code: {"model": ErrorOut} for code in (401, 403, 408, 413, 415, 421, 422, 503)}


@dataclass
class Service:
    """One running service's state (``app.state.service``)."""

    config: ServeConfig
    pool: ModelPool
    jobs: JobStore
    panels: dict[str, PanelStudy] = field(default_factory=dict)  # by the study folder's name
    metrics: Metrics = field(init=False)
    streams_open: int = 0

    def __post_init__(self) -> None:
        self.metrics = Metrics(lambda: self.pool.in_flight, self.jobs.active, lambda: self.streams_open)

    @classmethod
    def for_config(cls, config: ServeConfig) -> Service:
        pool = ModelPool(config.analyzer, config.workers, config.limits.queue)
        panels = panels_for(config.studies, pool, config.limits)  # before the jobs folder: a refused study leaves none
        return cls(config, pool, JobStore(config.jobs_dir, pool, config.limits), panels)

    @property
    def limits(self) -> Limits:
        return self.config.limits


def service(connection: HTTPConnection) -> Service:
    """The running service (a FastAPI dependency, for HTTP and WebSocket routes alike)."""
    return connection.app.state.service


def require_token(request: Request) -> None:
    auth.check_request(service(request).config.token, request.headers.get("authorization"))


def require_ready(request: Request) -> None:
    pool = service(request).pool
    if not pool.ready.is_set():
        raise ApiError(503, pool.error or "the model is still loading; retry shortly", {"Retry-After": "1"})


def panels_for(folders: tuple[Path, ...], pool: ModelPool, limits: Limits) -> dict[str, PanelStudy]:
    """Each study folder to serve, by its name.

    Raises:
        EmolensError: a folder that is not a study, or two studies whose folders have the same name.
    """
    names = [Path(folder).resolve().name for folder in folders]
    for folder in folders:  # every folder is a study before any is opened (opening one resumes its sessions)
        load_study(folder)
    if twice := next((name for name in names if names.count(name) > 1), None):
        raise EmolensError(f"two studies are named {twice!r} (a study is served by its folder's name); "
                           f"rename one folder")
    return {name: PanelStudy(folder, pool, limits) for name, folder in zip(names, folders)}
