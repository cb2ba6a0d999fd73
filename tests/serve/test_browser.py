"""The browser client at ``/`` in real headless Chromium against the real server.

Chromium's fake camera plays a clip made from ``assets/demo.mp4`` (two real faces); the page
streams it over the WebSocket and draws. The test reads the page's own state (``window.emolens``)
through the DevTools protocol and checks the screenshot for boxes in the palette's colours.
Set ``EMOLENS_SCREENSHOTS=1`` to also save the screenshot as ``assets/serve_client.png``.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from .test_serve import DEMO, running

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

import httpx  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from emolens.palette import EMOTION_COLORS  # noqa: E402
from emolens.serve.config import ServeConfig  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                          "(Debian: apt-get install chromium)")
SCREENSHOT = Path(__file__).resolve().parents[2] / "assets" / "serve_client.png"


def write_y4m(path: Path, frames: int = 60) -> Path:
    """The demo clip's first frames as a raw YUV4MPEG2 file, the format Chromium's fake camera plays."""
    capture = cv2.VideoCapture(str(DEMO))
    fps = int(round(capture.get(cv2.CAP_PROP_FPS)))
    with open(path, "wb") as out:
        for index in range(frames):
            ok, image = capture.read()
            assert ok
            if index == 0:
                out.write(f"YUV4MPEG2 W{image.shape[1]} H{image.shape[0]} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n" + cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    capture.release()
    return path


class DevTools:
    """A minimal Chrome DevTools protocol client over the page's WebSocket."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                         awaitPromise=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}: {self.state()}"
            time.sleep(0.2)
        return value

    def state(self) -> dict:
        return json.loads(self.evaluate("JSON.stringify(window.emolens)") or "null")

    def screenshot(self) -> np.ndarray:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), data


@contextmanager
def chromium(url: str, profile: Path, camera: Path | None) -> Iterator[DevTools]:
    """Headless Chromium showing ``url``, with a fake camera playing ``camera`` (or no camera at all)."""
    flags = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=760,600",
             "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
    if camera is not None:
        flags += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
    process = subprocess.Popen([*flags, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.is_file() or not port_file.read_text().strip():
            assert time.monotonic() < deadline and process.poll() is None, "Chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        page = next(t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            tools = DevTools(ws)
            tools.call("Page.enable")
            tools.call("Page.navigate", url=url)
            yield tools
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def palette_pixels(image: np.ndarray, hex_color: str, tolerance: int = 30) -> int:
    """How many pixels of ``image`` (BGR) are within ``tolerance`` of ``hex_color``."""
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image[:, :, ::-1].astype(int) - rgb).max(axis=2) <= tolerance).sum())


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    with running(ServeConfig(jobs_dir=tmp_path_factory.mktemp("browser-jobs"))) as url:
        yield url


def test_client_draws_boxes_and_scores_from_the_camera(server, tmp_path):
    camera = write_y4m(tmp_path / "faces.y4m")
    with chromium(f"{server}/", tmp_path / "profile", camera) as page:
        page.wait_for("window.emolens && window.emolens.answered >= 8 && window.emolens.drawn.length === 2")
        state = page.state()
        image, png = page.screenshot()
    assert state["phase"] == "streaming" and state["source"] == "camera" and state["error"] is None
    assert sorted(face["id"] for face in state["drawn"]) == [1, 2]
    for face in state["drawn"]:
        assert face["dominant"] == "happy" and 0.5 < face["score"] <= 1.0 and face["box"]["w"] > 60
    # The boxes and label backgrounds are drawn in the window's colour for "happy".
    assert palette_pixels(image, EMOTION_COLORS["happy"]) > 2000
    if os.environ.get("EMOLENS_SCREENSHOTS"):
        SCREENSHOT.write_bytes(png)


def test_client_without_a_camera_offers_the_demo_clip(server, tmp_path):
    with chromium(f"{server}/", tmp_path / "profile", camera=None) as page:
        page.wait_for("window.emolens && window.emolens.phase === 'no-camera'")
        assert page.evaluate("document.getElementById('no-camera').hidden") is False
        assert "demo clip" in page.evaluate("document.getElementById('no-camera').innerText")
        page.evaluate("document.getElementById('demo').click()")
        page.wait_for("window.emolens.answered >= 5 && window.emolens.drawn.length === 2")
        state = page.state()
    assert state["phase"] == "streaming" and state["source"] == "demo"
    assert {face["dominant"] for face in state["drawn"]} == {"happy"}
