"""The FastAPI application: routes, the token rule, and the service's life cycle.

``create_app(config)`` builds an app that, once started, loads ``config.workers`` sets of models on a
thread (``/healthz`` answers at once, ``/readyz`` once they are loaded), sweeps expired jobs, and
on shutdown stops the job thread and deletes every job folder. Every request passes the Host and
Origin rules first (``emolens.serve.guard``). Open without a token: ``/healthz``,
the browser client (``/``, ``/static/*``, ``/palette.json``, ``/demo.webm``), the OpenAPI pages and the
remote panels' and dashboard's pages, which hold no data; a panel's participant calls with their
invitation code or key (``emolens.serve.routes.panel``); everything else follows the token rule
(``emolens.serve.auth``). On shutdown every panel session still open is written, incomplete.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from emolens import __version__
from emolens.serve.config import ServeConfig
from emolens.serve.errors import install_handlers
from emolens.serve.guard import HostOriginGuard
from emolens.serve.jobs import JobStore
from emolens.serve.metrics import MetricsMiddleware
from emolens.serve.routes import analysis, client, health, panel, stream
from emolens.serve.service import Service

log = logging.getLogger("emolens.serve")


def create_app(config: ServeConfig) -> FastAPI:
    """The service for ``config``; see the module docstring for what starting it does."""
    running = Service.for_config(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=_load, args=(running,), name="emolens-load", daemon=True).start()
        sweeper = asyncio.create_task(_sweep(running.jobs, max(0.5, min(config.limits.job_ttl_s / 4, 60.0))))
        yield
        sweeper.cancel()
        await asyncio.to_thread(running.jobs.close)
        for study in running.panels.values():
            await asyncio.to_thread(study.close)
        await asyncio.to_thread(running.pool.close)

    app = FastAPI(title="Emolens", version=__version__, lifespan=lifespan,
                  description="Seven emotions for every face in an image, a video or a live stream.")
    app.state.service = running
    install_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=running.metrics)
    app.add_middleware(HostOriginGuard, hosts=config.accepted_hosts(), origins=config.allowed_origins)
    for router in (health.open_router, health.router, analysis.router, stream.router, client.router,
                   panel.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=client.STATIC), name="static")
    return app


def _load(running: Service) -> None:
    """Load the models (on a thread, so /healthz answers meanwhile) and say how it went on stderr."""
    pool = running.pool
    pool.load()
    if pool.error:
        print(f"emolens: error: {pool.error}", file=sys.stderr, flush=True)
    else:
        print(f"emolens: {pool.first.classifier.describe()}; {running.config.workers} worker(s) ready",
              file=sys.stderr, flush=True)


async def _sweep(jobs: JobStore, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        removed = jobs.sweep()
        if removed:
            log.info("deleted %d expired job folder(s)", removed)
