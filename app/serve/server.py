"""Running the app under Uvicorn on a socket bound here, so a busy port is one clear error line."""

from __future__ import annotations

import socket

import uvicorn

from emolens.errors import EmolensError
from emolens.serve.app import create_app
from emolens.serve.config import ServeConfig


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        EmolensError: the address is unknown, in use or not permitted.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        raise EmolensError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def make_server(config: ServeConfig) -> uvicorn.Server:
    """The Uvicorn server for ``config`` (WebSocket messages bounded by the image upload limit)."""
    app = create_app(config)
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio",
                                         ws_max_size=config.limits.image_bytes, timeout_graceful_shutdown=5))


def run(config: ServeConfig) -> None:
    """Bind, print the address, serve until Ctrl+C or SIGTERM."""
    sock = bind_socket(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    server = make_server(config)
    print(f"emolens: serving http://{shown}:{port} (docs at /docs, browser client at /); loading the model",
          flush=True)
    for name in server.config.app.state.service.panels:
        print(f"emolens: study {name}: participants at http://{shown}:{port}/panel/{name} (or their invitation "
              f"links), dashboard at http://{shown}:{port}/studies/{name}", flush=True)
    server.run(sockets=[sock])
