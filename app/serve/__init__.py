"""``emolens serve``: the analysis behind an HTTP and WebSocket API (the optional ``serve`` extra).

The service loads the models once (``emolens.pipeline.Models``, a pool of them), tracks each job's
and each stream's faces through a ``Session`` as the CLI does, and answers on one port:

    POST /v1/images            one image -> every face: box, keypoints, probabilities, dominant emotion
    POST /v1/videos            a video -> a job id at once; GET /v1/jobs/{id}[/timeline.csv|/report]
    DELETE /v1/jobs/{id}       the job and its folder, now
    WS   /v1/stream            JPEG frames in, one JSON message per processed frame out (latest wins)
    GET  /healthz /readyz /v1/model /metrics /docs, and the browser client at /

Modules: ``config`` (settings and limits), ``app`` (the application and its life cycle), ``service``
(the state every route shares), ``routes`` (health, analysis, stream, client), ``pool`` (the models off the event
loop, the bounded queue), ``uploads`` and ``media`` (bounded reading and checking of uploads),
``jobs`` (video jobs in per-job folders), ``stream`` (the WebSocket loop), ``auth``, ``metrics``,
``schemas`` (the pydantic models of every answer), ``errors``, ``guard`` (Host and Origin); the load
test is ``emolens.bench.serve``.

Example::

    from emolens.serve import ServeConfig, run_server
    run_server(ServeConfig(port=8000))
"""

from __future__ import annotations

from emolens.serve.config import Limits, ServeConfig

__all__ = ["Limits", "ServeConfig", "run_server"]


def run_server(config: ServeConfig) -> None:
    """Check the bind rule, then serve until interrupted (Uvicorn, one process).

    Raises:
        EmolensError: a non-local bind without a token, or the port cannot be opened.
    """
    from emolens.serve.server import run

    run(config)
