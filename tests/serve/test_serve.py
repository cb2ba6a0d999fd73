"""``emolens serve`` over real HTTP and WebSocket: a real Uvicorn server on a free 127.0.0.1 port,
the real model, real media (the astronaut photo, the demo clip), real clients (httpx, websockets).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

import httpx  # noqa: E402
from PIL import Image  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from emolens.analyze import analyze_inputs  # noqa: E402
from emolens.bench.media import write_video  # noqa: E402
from emolens.card import ModelCard  # noqa: E402
from emolens.cli import main  # noqa: E402
from emolens.options import AnalyzerOptions  # noqa: E402
from emolens.pipeline import Analyzer  # noqa: E402
from emolens.record import timeline_columns  # noqa: E402
from emolens.serve.config import DEFAULT_WORKERS, Limits, ServeConfig  # noqa: E402
from emolens.serve.jobs import OWNER  # noqa: E402
from emolens.serve.schemas import ImageResult  # noqa: E402
from emolens.serve.server import bind_socket, make_server  # noqa: E402
from emolens.sources import open_source  # noqa: E402

ASSETS = Path(str(resources.files("emolens.assets")))
PHOTO = ASSETS / "astronaut.jpg"
DEMO = ASSETS / "demo.mp4"
LABELS = ModelCard.load().labels
TOKEN = "s3cret-token"


@contextmanager
def running(config: ServeConfig, wait_for: str = "/readyz", port: int = 0) -> Iterator[str]:
    """Serve ``config`` on 127.0.0.1 (``port``, or a free one) in a thread until the block ends; yields the base
    URL once ``wait_for`` answers 200."""
    sock = bind_socket("127.0.0.1", port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = make_server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}{wait_for}", headers=headers).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{wait_for} did not answer 200 in 60 s"
        time.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def jobs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jobs")


@pytest.fixture(scope="module")
def base(jobs_dir) -> Iterator[str]:
    """The service with its defaults."""
    with running(ServeConfig(jobs_dir=jobs_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Iterator[str]:
    """The service with tiny limits: 200 kB uploads, 0.2 megapixels, 3 s videos, one request at a time,
    jobs deleted one second after they end."""
    limits = Limits(image_bytes=200_000, video_bytes=3_000_000, pixels=200_000, video_s=3.0, queue=1,
                    job_ttl_s=1.0)
    with running(ServeConfig(limits=limits, jobs_dir=tmp_path_factory.mktemp("small-jobs"))) as url:
        yield url


@pytest.fixture(scope="module")
def guarded(tmp_path_factory) -> Iterator[str]:
    with running(ServeConfig(token=TOKEN, jobs_dir=tmp_path_factory.mktemp("guarded-jobs"))) as url:
        yield url


def encoded(image: np.ndarray, ext: str) -> bytes:
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def assert_error(response: httpx.Response, status: int, words: str) -> None:
    """A 4xx/5xx answer is exactly one JSON line ``{"error": ...}`` that says what went wrong."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text and "Traceback" not in response.text
    body = response.json()
    assert list(body) == ["error"] and words in body["error"], body


def assert_astronaut(face: dict) -> None:
    """The astronaut's face: where the detector finds it, smiling, probabilities in card order."""
    assert list(face["probs"]) == list(LABELS)
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert face["dominant"] == "happy"
    box = face["box"]
    assert abs(box["x"] - 177) < 12 and abs(box["y"] - 82) < 12 and 80 < box["w"] < 115
    assert len(face["keypoints"]) == 6 and face["det_score"] > 0.6


# ---------------------------------------------------------------- service endpoints


def test_health_ready_and_model(base):
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz").json()
    assert ready["ready"] and ready["provider"] in ("CPU", "CUDA") and ready["workers"] == DEFAULT_WORKERS
    assert f"on {ready['provider']}" in ready["device"]
    model = httpx.get(f"{base}/v1/model").json()
    card = ModelCard.load()
    assert model["labels"] == list(card.labels) and model["sha256"] == card.sha256
    assert model["input"] == card.info["input"] and model["metrics"] == card.info["metrics"]


def test_not_ready_is_503_with_the_reason(tmp_path):
    """A model that cannot load: alive, not ready, and every analysis request says why."""
    config = ServeConfig(analyzer=AnalyzerOptions(model=str(tmp_path / "missing.json")), jobs_dir=tmp_path / "jobs")
    with running(config, wait_for="/healthz") as url:
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"{url}/readyz")).json()["detail"] == "loading the model":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ready.status_code == 503 and not ready.json()["ready"]
        assert "model card not found" in ready.json()["detail"]
        refused = httpx.post(f"{url}/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
        assert_error(refused, 503, "model card not found")
        assert_error(httpx.get(f"{url}/v1/model"), 503, "model card not found")


def test_openapi_documents_the_real_schemas(base):
    spec = httpx.get(f"{base}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("ImageResult", "Face", "Box", "JobStatus", "ModelInfo", "Ready", "ErrorOut"):
        assert name in schemas
    post = spec["paths"]["/v1/images"]["post"]
    assert {"multipart/form-data", "image/jpeg", "image/png", "image/webp"} <= set(post["requestBody"]["content"])
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ImageResult")
    assert {"401", "413", "415", "422", "503"} <= set(post["responses"])
    assert httpx.get(f"{base}/docs").status_code == 200


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("ext, media, form", [(".jpg", "image/jpeg", False), (".png", "image/png", False),
                                              (".webp", "image/webp", True), (".jpg", "image/jpeg", True)])
def test_image_faces(base, astronaut, ext, media, form):
    data = encoded(astronaut, ext)
    if form:
        response = httpx.post(f"{base}/v1/images", files={"file": (f"photo{ext}", data, media)})
    else:
        response = httpx.post(f"{base}/v1/images", content=data, headers={"Content-Type": media})
    assert response.status_code == 200, response.text
    result = response.json()
    ImageResult.model_validate(result)  # sent as built, so checked here against the schema it documents
    assert (result["width"], result["height"]) == (512, 512)
    assert len(result["faces"]) == 1 and result["faces"][0]["face_id"] == 1
    assert_astronaut(result["faces"][0])
    assert result["timings"]["inference_ms"] > 0


def test_image_without_a_face(base):
    grey = np.full((240, 320, 3), 128, np.uint8)
    response = httpx.post(f"{base}/v1/images", content=encoded(grey, ".png"), headers={"Content-Type": "image/png"})
    assert response.status_code == 200 and response.json()["faces"] == []


def test_exif_orientation_is_applied(base, astronaut):
    """A phone photo stored sideways with an EXIF 'rotate' tag is analysed upright."""
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(astronaut[:, :, ::-1])))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the viewer turns it 90 degrees clockwise
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", exif=exif, quality=92)
    faces = httpx.post(f"{base}/v1/images", content=buffer.getvalue(),
                       headers={"Content-Type": "image/jpeg"}).json()["faces"]
    assert len(faces) == 1 and faces[0]["dominant"] == "happy"


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "GIF")
    return buffer.getvalue()


@pytest.mark.parametrize("body, media, status, words", [
    (b"hello, not an image", "text/plain", 415, "unsupported content type 'text/plain'"),
    (b"hello, not an image", "image/jpeg", 422, "not an image"),
    (PHOTO.read_bytes()[:30_000], "image/jpeg", 422, "truncated or corrupt"),
    (_gif(), "image/gif", 415, "unsupported content type 'image/gif'"),
    (_gif(), "application/octet-stream", 415, "unsupported image format GIF"),
    (b"", "image/png", 422, "empty upload"),
])
def test_bad_images_are_one_line_4xx(base, body, media, status, words):
    assert_error(httpx.post(f"{base}/v1/images", content=body, headers={"Content-Type": media}), status, words)


def test_bad_forms(base):
    form = b'--b0undary\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file here\r\n--b0undary--\r\n'
    assert_error(httpx.post(f"{base}/v1/images", content=form,
                            headers={"Content-Type": "multipart/form-data; boundary=b0undary"}), 422, "no file part")
    assert_error(httpx.post(f"{base}/v1/images", files={"file": ("notes.txt", b"text", "text/plain")}), 415,
                 "unsupported content type")
    assert_error(httpx.post(f"{base}/v1/videos?every=0", content=DEMO.read_bytes(),
                            headers={"Content-Type": "video/mp4"}), 422, "every")
    assert_error(httpx.get(f"{base}/v1/nothing"), 404, "Not Found")


# ---------------------------------------------------------------- limits


def test_upload_size_limit(small, astronaut):
    big = encoded(astronaut, ".png")  # about 480 kB, over the 200 kB limit
    assert len(big) > 200_000
    assert_error(httpx.post(f"{small}/v1/images", content=big, headers={"Content-Type": "image/png"}), 413,
                 "upload too large")
    assert_error(httpx.post(f"{small}/v1/images", files={"file": ("big.png", big, "image/png")}), 413,
                 "upload too large")

    def chunks():  # no Content-Length: the limit must hold while the body streams in
        for start in range(0, len(big), 16_384):
            yield big[start:start + 16_384]

    assert_error(httpx.post(f"{small}/v1/images", content=chunks(), headers={"Content-Type": "image/png"}), 413,
                 "upload too large")


def test_pixel_limit(small, astronaut):
    data = encoded(astronaut, ".jpg")  # 512x512 = 262,144 pixels > 200,000, but under 200 kB
    assert_error(httpx.post(f"{small}/v1/images", content=data, headers={"Content-Type": "image/jpeg"}), 413,
                 "262144 pixels")
    fits = encoded(cv2.resize(astronaut, (400, 400)), ".jpg")
    assert httpx.post(f"{small}/v1/images", content=fits, headers={"Content-Type": "image/jpeg"}).status_code == 200


def test_video_limits(small, tmp_path):
    assert DEMO.stat().st_size < 3_000_000
    assert_error(httpx.post(f"{small}/v1/videos", files={"file": ("demo.mp4", DEMO.read_bytes(), "video/mp4")}),
                 413, "video frames too large: 640x480")
    long_clip = write_video(tmp_path / "long.mp4", (320, 240), faces=1, seconds=4.0, fps=5)
    assert_error(httpx.post(f"{small}/v1/videos", content=long_clip.read_bytes(),
                            headers={"Content-Type": "video/mp4"}), 413, "video too long: 4 s, the limit is 3 s")
    big = tmp_path / "big.mp4"
    big.write_bytes(DEMO.read_bytes() * 4)
    assert_error(httpx.post(f"{small}/v1/videos", content=big.read_bytes(), headers={"Content-Type": "video/mp4"}),
                 413, "upload too large")
    assert_error(httpx.post(f"{small}/v1/videos", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"}),
                 415, "send a video")
    assert_error(httpx.post(f"{small}/v1/videos", content=b"\x00" * 5000, headers={"Content-Type": "video/mp4"}),
                 422, "cannot read the video")


def test_full_queue_is_503_with_retry_after(small, astronaut):
    """With a queue of one, a request still uploading holds the place; the next one is refused at once."""
    data = encoded(cv2.resize(astronaut, (400, 400)), ".jpg")
    release = threading.Event()
    answers = []

    def slow_body():
        yield data[:1000]
        release.wait(30)
        yield data[1000:]

    def slow_client():
        answers.append(httpx.post(f"{small}/v1/images", content=slow_body(), headers={"Content-Type": "image/jpeg"},
                                  timeout=60))

    thread = threading.Thread(target=slow_client)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while "emolens_queue_depth 1.0" not in httpx.get(f"{small}/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused = httpx.post(f"{small}/v1/images", content=data, headers={"Content-Type": "image/jpeg"})
        assert_error(refused, 503, "busy")
        assert refused.headers["Retry-After"] == "1"
    finally:
        release.set()
        thread.join(60)
    assert answers[0].status_code == 200 and len(answers[0].json()["faces"]) == 1
    assert httpx.post(f"{small}/v1/images", content=data, headers={"Content-Type": "image/jpeg"}).status_code == 200


# ---------------------------------------------------------------- video jobs


def wait_for_job(base: str, job_id: str, headers: dict | None = None, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()
        assert 0.0 <= status["progress"] <= 1.0
        if status["state"] in ("done", "failed"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def test_video_job_runs_to_the_analyze_csv_and_report(base, jobs_dir, tmp_path):
    response = httpx.post(f"{base}/v1/videos?every=3", files={"file": ("demo.mp4", DEMO.read_bytes(), "video/mp4")})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["state"] in ("queued", "running") and job["frames_total"] == 40 and job["timeline"] is None
    status = wait_for_job(base, job["id"])
    assert status["state"] == "done" and status["progress"] == 1.0 and status["frames_done"] == 40
    assert status["timeline"] == f"/v1/jobs/{job['id']}/timeline.csv" and status["expires"]

    csv = httpx.get(f"{base}{status['timeline']}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    served = pd.read_csv(io.StringIO(csv.text))
    assert list(served.columns) == timeline_columns(LABELS)
    assert set(served["source"]) == {"demo.mp4"} and status["faces"] == len(served)

    # The same rows as emolens analyze: frames, ids, boxes, probabilities (timestamps are wall-clock).
    analyze_inputs([str(DEMO)], tmp_path / "cli.csv", every=3, log=lambda _: None)
    cli = pd.read_csv(tmp_path / "cli.csv")
    same = [c for c in cli.columns if c not in ("timestamp", "source")]
    pd.testing.assert_frame_equal(served[same], cli[same], check_exact=False, atol=2e-3)

    report = httpx.get(f"{base}{status['report']}", timeout=120)  # built on first request: charts
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<html" in report.text and "happy" in report.text

    # Everything the job wrote is inside its own folder; the upload went once the timeline was written.
    folder = jobs_dir / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == [OWNER, "report", "timeline.csv"]
    assert [p.name for p in jobs_dir.iterdir()] == [job["id"]]


def test_job_survives_a_client_disconnect(base):
    """The uploader hangs up at once; the job still runs to its CSV."""
    with httpx.Client() as client:
        job_id = client.post(f"{base}/v1/videos?every=6", content=DEMO.read_bytes(),
                             headers={"Content-Type": "video/mp4"}).json()["id"]
    status = wait_for_job(base, job_id)
    assert status["state"] == "done" and status["frames_done"] == 20
    rows = pd.read_csv(io.StringIO(httpx.get(f"{base}/v1/jobs/{job_id}/timeline.csv").text))
    assert len(rows) == status["faces"] and set(rows["source"]) == {"upload.mp4"}


def test_unknown_job_and_job_cleanup(small, two_face_video):
    assert_error(httpx.get(f"{small}/v1/jobs/0123456789abcdef"), 404, "no job")
    job_id = httpx.post(f"{small}/v1/videos", files={"file": ("two.mp4", two_face_video.read_bytes(),
                                                              "video/mp4")}).json()["id"]
    assert wait_for_job(small, job_id)["state"] == "done"
    deadline = time.monotonic() + 10
    while httpx.get(f"{small}/v1/jobs/{job_id}").status_code != 404:  # deleted 1 s after it ended
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert_error(httpx.get(f"{small}/v1/jobs/{job_id}/timeline.csv"), 404, "expired")


# ---------------------------------------------------------------- the stream


def demo_frames(count: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(DEMO))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        assert ok
        frames.append(encoded(image, ".jpg"))
    capture.release()
    return frames


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/v1/stream"


def test_stream_tracks_faces_frame_by_frame(base):
    with connect(ws_url(base)) as ws:
        messages = []
        for frame in demo_frames(20):
            ws.send(frame)
            messages.append(json.loads(ws.recv(timeout=30)))
    assert [m["frame"] for m in messages] == list(range(20)) and messages[-1]["dropped"] == 0
    for message in messages:
        assert {face["face_id"] for face in message["faces"]} == {1, 2}  # two faces, IDs stable throughout
        for face in message["faces"]:
            assert list(face["probs"]) == list(LABELS) == list(face["raw"])
            assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-3)
        assert message["latency_ms"] > 0
    last = messages[-1]["faces"][0]
    assert last["dominant"] == "happy" and last["probs"] != last["raw"]  # smoothed differs from raw


def test_a_streams_ids_and_smoothing_equal_the_command_lines_on_the_same_frames(base):
    """Before: the service tracked with a FaceTracker of its own, on arrival times; now every front end tracks
    through a pipeline Session, and a client may give each frame's capture time ({"t_s": ...})."""
    with Analyzer() as analyzer, open_source(DEMO) as source:  # the loop `emolens analyze` runs
        local = [(result.frame.t_s, result.frame.image, result.faces) for _, result in zip(range(30),
                                                                                          analyzer.run(source))]
    with connect(ws_url(base)) as ws:
        answers = []
        for t_s, image, _ in local:
            ws.send(json.dumps({"t_s": t_s}))
            ws.send(encoded(image, ".png"))  # lossless: the service sees the pixels analyze saw
            answers.append(json.loads(ws.recv(timeout=30)))
    for (t_s, _, faces), answer in zip(local, answers):
        assert answer["t_s"] == pytest.approx(t_s, abs=1e-4)
        served = sorted(answer["faces"], key=lambda face: face["face_id"])
        assert [face["face_id"] for face in served] == sorted(int(i) for i in faces.face_id)
        order = np.argsort(faces.face_id)
        for face, smoothed in zip(served, faces.smoothed[order]):
            assert [face["probs"][label] for label in LABELS] == pytest.approx(smoothed.tolist(), abs=1e-4)


def test_stream_drops_stale_frames_latest_wins(base):
    frames = demo_frames(60)
    with connect(ws_url(base)) as ws:
        for frame in frames:  # far faster than the server analyses
            ws.send(frame)
        answered = []
        while not answered or answered[-1]["frame"] != len(frames) - 1:
            answered.append(json.loads(ws.recv(timeout=30)))
    indices = [m["frame"] for m in answered]
    assert indices == sorted(indices) and len(answered) < len(frames)
    assert answered[-1]["dropped"] == len(frames) - len(answered) > 0


def test_stream_bad_frame_gets_an_error_and_the_stream_goes_on(base):
    with connect(ws_url(base)) as ws:
        ws.send("not a frame")
        assert "binary message" in json.loads(ws.recv(timeout=30))["error"]
        ws.send(b"\xff\xd8 broken jpeg")
        assert json.loads(ws.recv(timeout=30)) == {"frame": 1, "error": "not an image: the upload is not a JPEG, "
                                                                         "PNG or WebP file"}
        ws.send(demo_frames(1)[0])
        assert len(json.loads(ws.recv(timeout=30))["faces"]) == 2


def test_metrics_count_requests_faces_and_frames(base):
    httpx.post(f"{base}/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    text = httpx.get(f"{base}/metrics").text
    assert re.search(r'emolens_requests_total\{method="POST",route="/v1/images",status="200"\} [1-9]', text)
    assert re.search(r'emolens_request_seconds_bucket\{le="0.1",route="/v1/images"\} [1-9]', text)
    assert re.search(r'emolens_faces_total\{endpoint="images"\} [1-9]', text)
    assert re.search(r'emolens_stream_frames_total\{outcome="dropped"\} [1-9]', text)
    assert "emolens_queue_depth 0.0" in text and "emolens_jobs_active" in text


# ---------------------------------------------------------------- the token rule


def test_token_rule_over_http(guarded):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/readyz", "/v1/model", "/metrics", "/v1/jobs/abc"):
        assert_error(httpx.get(f"{guarded}{path}"), 401, "Authorization: Bearer")
        assert_error(httpx.get(f"{guarded}{path}", headers={"Authorization": "Bearer wrong"}), 401, "token")
    refused = httpx.post(f"{guarded}/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert_error(refused, 401, "token")
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    answered = httpx.post(f"{guarded}/v1/images", content=PHOTO.read_bytes(),
                          headers={"Content-Type": "image/jpeg", **auth})
    assert answered.status_code == 200 and len(answered.json()["faces"]) == 1
    assert httpx.get(f"{guarded}/v1/model", headers=auth).status_code == 200
    assert httpx.get(f"{guarded}/healthz").status_code == 200  # open: the container's health check
    assert httpx.get(f"{guarded}/").status_code == 200  # the page holds no data; it asks for the token


def test_token_rule_over_websocket(guarded):
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url(guarded)):
            pass
    assert refused.value.response.status_code == 403
    frame = demo_frames(1)[0]
    with connect(ws_url(guarded), additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ws.send(frame)
        assert len(json.loads(ws.recv(timeout=30))["faces"]) == 2
    with connect(ws_url(guarded), subprotocols=["emolens", f"bearer.{TOKEN}"]) as ws:  # as the browser sends it
        assert ws.subprotocol == "emolens"
        ws.send(frame)
        assert len(json.loads(ws.recv(timeout=30))["faces"]) == 2


def test_non_local_bind_needs_a_token(capsys, monkeypatch):
    monkeypatch.delenv("EMOLENS_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emolens: error: binding to 0.0.0.0") and "--token" in err[0]


def test_the_serve_command_starts_answers_and_stops(tmp_path):
    """The very command a user (and the container) runs, in its own process, stopped by SIGTERM; the token
    comes from a file, out of sight of 'ps'."""
    token_file = tmp_path / "token"
    token_file.write_text("f" * 32 + "\n")
    process = subprocess.Popen([sys.executable, "-m", "emolens", "serve", "--port", "0", "--jobs-dir",
                                str(tmp_path / "jobs"), "--token-file", str(token_file)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "EMOLENS_TOKEN": ""})
    auth = {"Authorization": f"Bearer {'f' * 32}"}
    try:
        first = process.stdout.readline()
        url = re.search(r"serving (http://127\.0\.0\.1:\d+)", first).group(1)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", headers=auth).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        assert_error(httpx.get(f"{url}/readyz"), 401, "token")
        faces = httpx.post(f"{url}/v1/images", content=PHOTO.read_bytes(),
                           headers={"Content-Type": "image/jpeg", **auth}).json()["faces"]
        assert_astronaut(faces[0])
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    # Uvicorn shuts down gracefully, then re-raises the signal, so the exit reports SIGTERM as usual.
    assert process.returncode == -signal.SIGTERM and "Traceback" not in err and "warning" not in err
    assert "worker(s) ready" in err
    assert not any((tmp_path / "jobs").iterdir())


def test_busy_port_is_one_line(capsys):
    taken = bind_socket("127.0.0.1", 0)
    port = str(taken.getsockname()[1])
    try:
        assert main(["serve", "--port", port]) == 1
    finally:
        taken.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"emolens: error: cannot listen on 127.0.0.1:{port}")


# ---------------------------------------------------------------- trust: tokens, files, strangers


def test_network_bind_needs_a_long_token(tmp_path, capsys, monkeypatch):
    taken = bind_socket("0.0.0.0", 0)  # were the token accepted, the bind would fail instead of serving
    port = str(taken.getsockname()[1])
    token_file = tmp_path / "token"
    token_file.write_text("short\n")
    monkeypatch.setenv("EMOLENS_TOKEN", "0123456789abcde")  # 15 characters
    try:
        assert main(["serve", "--host", "0.0.0.0", "--port", port]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "needs a token of 16 characters or more, this one has 15" in err[0]
        assert main(["serve", "--host", "0.0.0.0", "--port", port, "--token-file", str(token_file)]) == 1
        assert "this one has 5" in capsys.readouterr().err
    finally:
        taken.close()


def test_token_on_the_command_line_warns(capsys, monkeypatch):
    """``ps`` shows a command line to every local user: --token works, with a warning."""
    monkeypatch.delenv("EMOLENS_TOKEN", raising=False)
    taken = bind_socket("127.0.0.1", 0)
    try:
        assert main(["serve", "--port", str(taken.getsockname()[1]), "--token", "a" * 32]) == 1
    finally:
        taken.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == ("emolens: warning: --token shows the token to every user of this machine (in 'ps'); "
                      "use --token-file or the EMOLENS_TOKEN environment variable")
    assert err[-1].startswith("emolens: error: cannot listen on")


def test_job_folders_and_files_are_private(base, jobs_dir):
    """Whatever the umask, only the service's user can read a job's upload and timeline."""
    umask = os.umask(0o022)
    try:
        response = httpx.post(f"{base}/v1/videos?every=6&keep_upload=true", content=DEMO.read_bytes(),
                              headers={"Content-Type": "video/mp4"})
        assert wait_for_job(base, response.json()["id"])["state"] == "done"
    finally:
        os.umask(umask)
    folder = jobs_dir / response.json()["id"]
    assert sorted(p.name for p in folder.iterdir()) == [OWNER, "input.mp4", "timeline.csv"]  # kept, as asked
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        OWNER: 0o600, "input.mp4": 0o600, "timeline.csv": 0o600}


def test_delete_job_removes_its_folder(base, jobs_dir):
    done = httpx.post(f"{base}/v1/videos?every=6", content=DEMO.read_bytes(), headers={"Content-Type": "video/mp4"})
    assert wait_for_job(base, done.json()["id"])["state"] == "done"
    running_job = httpx.post(f"{base}/v1/videos", content=DEMO.read_bytes(), headers={"Content-Type": "video/mp4"})
    for job_id in (done.json()["id"], running_job.json()["id"]):
        assert httpx.delete(f"{base}/v1/jobs/{job_id}").status_code == 204
        assert_error(httpx.get(f"{base}/v1/jobs/{job_id}"), 404, "no job")
        assert_error(httpx.delete(f"{base}/v1/jobs/{job_id}"), 404, "no job")
    assert not (jobs_dir / done.json()["id"]).exists()
    deadline = time.monotonic() + 30
    while (jobs_dir / running_job.json()["id"]).exists():  # the running job stops at its next frame
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_killed_server_leaves_nothing_after_the_next_start(tmp_path, monkeypatch):
    """kill -9 leaves the upload and timeline in the temp dir; the next start deletes them, and only them."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "emolens", "serve", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "EMOLENS_TOKEN": "", "TMPDIR": str(temp)})
    try:
        url = re.search(r"serving (http://127\.0\.0\.1:\d+)", process.stdout.readline()).group(1)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        job_id = httpx.post(f"{url}/v1/videos?every=6&keep_upload=true", content=DEMO.read_bytes(),
                            headers={"Content-Type": "video/mp4"}).json()["id"]
        assert wait_for_job(url, job_id)["state"] == "done"
    finally:
        process.kill()
        process.wait(timeout=30)
    (left,) = temp.glob("emolens-jobs-*")
    assert (left / job_id / "timeline.csv").is_file()
    not_ours = temp / "emolens-jobs-not-ours"  # no owner file: never touched
    not_ours.mkdir()
    still_running = temp / "emolens-jobs-still-running"  # its server is alive (this process)
    still_running.mkdir()
    (still_running / OWNER).write_text(str(os.getpid()))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with running(ServeConfig()):
        assert not left.exists() and not_ours.is_dir() and still_running.is_dir()
        (ours,) = set(temp.glob("emolens-jobs-*")) - {not_ours, still_running}
        assert ours.stat().st_mode & 0o777 == 0o700 and (ours / OWNER).read_text() == str(os.getpid())
    assert not ours.exists()


@pytest.fixture(scope="module")
def brisk(tmp_path_factory) -> Iterator[str]:
    """Short patience: uploads cut off after 1 s without progress, streams after 1 s without a frame;
    two image requests, two streams at once."""
    limits = Limits(queue=2, streams=2, read_timeout_s=1.0, stream_idle_s=1.0)
    with running(ServeConfig(limits=limits, jobs_dir=tmp_path_factory.mktemp("brisk-jobs"),
                             allowed_hosts=("emolens.lan",), allowed_origins=("https://app.example",))) as url:
        yield url


def raw_request(base: str, path: str, length: int) -> socket.socket:
    """A connection that has sent the headers of ``POST path`` announcing ``length`` bytes, and no body."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/octet-stream\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode())
    return sock


def trickle(base: str, every_s: float | None, seconds: float = 5.0) -> bytes:
    """``POST /v1/images`` one byte every ``every_s`` (None: no byte at all) for at most ``seconds``;
    the server's answer, or b"" if none came."""
    with raw_request(base, "/v1/images", 100_000) as sock:
        sock.settimeout(every_s or seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                return sock.recv(4096)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    sock.sendall(b"x")
    return b""


def test_slow_uploads_are_cut_off_and_free_the_queue(brisk):
    """Two trickling clients fill the queue of two; both get 408 within the read timeout, then others get in."""
    answers: list[bytes] = []
    clients = [threading.Thread(target=lambda every=every: answers.append(trickle(brisk, every)))
               for every in (0.25, None)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 10
    while "emolens_queue_depth 2.0" not in httpx.get(f"{brisk}/metrics").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for client in clients:
        client.join(10)
    assert len(answers) == 2 and all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
    assert any(b"averaged under 32 KiB/s" in answer for answer in answers)
    assert any(b"nothing arrived for 1 s" in answer for answer in answers)
    answered = httpx.post(f"{brisk}/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert answered.status_code == 200 and len(answered.json()["faces"]) == 1


def test_idle_streams_are_closed_and_free_their_places(brisk):
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(connect(ws_url(brisk))) for _ in range(2)]  # both places taken, no frame sent
        for ws in idle:
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd.code == 1000 and closed.value.rcvd.reason == "idle: no frame for 1 s"
    with connect(ws_url(brisk)) as ws:
        ws.send(demo_frames(1)[0])
        assert len(json.loads(ws.recv(timeout=30))["faces"]) == 2


@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> Iterator[str]:
    """Two video jobs at once, and job folders that hold one and a half demo clips."""
    limits = Limits(jobs=2, disk_bytes=DEMO.stat().st_size * 3 // 2)
    with running(ServeConfig(limits=limits, jobs_dir=tmp_path_factory.mktemp("tight-jobs"))) as url:
        yield url


def test_uploads_in_progress_count_as_jobs(tight):
    hanging = [raw_request(tight, "/v1/videos", 1_000_000) for _ in range(2)]
    try:
        for sock in hanging:
            sock.sendall(b"\x00" * 1000)
        deadline = time.monotonic() + 10
        while "emolens_jobs_active 2.0" not in httpx.get(f"{tight}/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        refused = httpx.post(f"{tight}/v1/videos", content=DEMO.read_bytes(), headers={"Content-Type": "video/mp4"})
        assert_error(refused, 503, "2 video jobs are uploading, queued or running")
    finally:
        for sock in hanging:
            sock.close()
    deadline = time.monotonic() + 10
    while "emolens_jobs_active 0.0" not in httpx.get(f"{tight}/metrics").text:  # hung up: their places are free
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_job_folders_have_a_byte_limit(tight):
    kept = httpx.post(f"{tight}/v1/videos?every=6&keep_upload=true", content=DEMO.read_bytes(),
                      headers={"Content-Type": "video/mp4"}).json()["id"]
    assert wait_for_job(tight, kept)["state"] == "done"
    refused = httpx.post(f"{tight}/v1/videos", content=DEMO.read_bytes(), headers={"Content-Type": "video/mp4"})
    assert_error(refused, 507, "no room for this upload")
    assert httpx.delete(f"{tight}/v1/jobs/{kept}").status_code == 204
    accepted = httpx.post(f"{tight}/v1/videos?every=6", content=DEMO.read_bytes(),
                          headers={"Content-Type": "video/mp4"})
    assert accepted.status_code == 202, accepted.text
    assert wait_for_job(tight, accepted.json()["id"])["state"] == "done"


def test_other_hosts_and_origins_are_refused(brisk):
    """A web page cannot call the local service, neither cross-origin nor by DNS rebinding."""
    port = brisk.rsplit(":", 1)[1]

    def post_photo(**headers: str) -> httpx.Response:
        return httpx.post(f"{brisk}/v1/images", content=PHOTO.read_bytes(),
                          headers={"Content-Type": "image/jpeg", **headers})

    assert_error(httpx.get(f"{brisk}/readyz", headers={"Host": f"attacker.example:{port}"}), 421,
                 "host 'attacker.example")
    assert_error(post_photo(Origin="https://attacker.example"), 403,
                 "cross-origin request from 'https://attacker.example' refused")
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url(brisk), origin="https://attacker.example"):
            pass
    assert refused.value.response.status_code == 403
    # Its own pages, the configured origin and host name, and clients that send no Origin are served.
    for headers in ({"Origin": brisk}, {"Origin": "https://app.example"}, {"Host": f"emolens.lan:{port}"}, {}):
        answered = post_photo(**headers)
        assert answered.status_code == 200, (headers, answered.text)
    with connect(ws_url(brisk), origin=brisk) as ws:
        ws.send(demo_frames(1)[0])
        assert len(json.loads(ws.recv(timeout=30))["faces"]) == 2


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_client_hang_up_is_one_log_line(base):
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("emolens.serve", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        for path in ("/v1/videos", "/v1/images"):
            with raw_request(base, path, 100_000) as sock:
                sock.sendall(b"\x00" * 1000)
                time.sleep(0.2)  # the upload has begun
            deadline = time.monotonic() + 10
            while "emolens_queue_depth 0.0" not in (text := httpx.get(f"{base}/metrics").text) or \
                    "emolens_jobs_active 0.0" not in text:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(0.2)  # anything logged after the request ended
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    lines = [record.getMessage() for record in records.records]
    assert [record.exc_info for record in records.records] == [None, None], lines
    assert lines == ["client 127.0.0.1 hung up during POST /v1/videos",
                     "client 127.0.0.1 hung up during POST /v1/images"]


def test_mpo_photo_is_read_as_its_first_image(base, tmp_path):
    """Many phones and cameras write MPO: a JPEG followed by more images."""
    photo = Image.open(PHOTO)
    mpo = tmp_path / "photo.jpg"
    photo.save(mpo, format="MPO", save_all=True, append_images=[photo.rotate(90)])
    assert Image.open(mpo).format == "MPO" and Image.open(mpo).n_frames == 2
    response = httpx.post(f"{base}/v1/images", content=mpo.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 200, response.text
    assert len(response.json()["faces"]) == 1
    assert_astronaut(response.json()["faces"][0])


def test_an_upload_is_decoded_as_a_file_is(base, tmp_path):
    """Before: uploads had a decoder of their own (Pillow's RGB conversion, which clips a 16-bit gray PNG to
    white), so such a photo found its face from a folder but not over HTTP; now both use images.decode_image."""
    gray = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2GRAY)
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), gray.astype(np.uint16) * 257)  # a 16-bit gray PNG, as scientific cameras write
    answer = httpx.post(f"{base}/v1/images", content=deep.read_bytes(), headers={"Content-Type": "image/png"},
                        timeout=30).json()
    with Analyzer() as analyzer:
        local = analyzer.analyze(deep)
    assert len(answer["faces"]) == len(local) == 1
    served = answer["faces"][0]["probs"]
    assert [served[label] for label in LABELS] == pytest.approx(local.probs[0].tolist(), abs=1e-4)


def test_behaviour_is_served_where_the_command_line_has_it(tmp_path):
    """Before: action units, head pose and attention were the CLI's alone; with --behaviour the service reads
    them too, for images, streams and video jobs (the job's CSV has analyze --behaviour's columns)."""
    config = ServeConfig(analyzer=AnalyzerOptions(behaviour=True), jobs_dir=tmp_path / "jobs")
    with running(config) as url:
        image = httpx.post(f"{url}/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"},
                           timeout=60).json()
        with connect(ws_url(url)) as ws:
            ws.send(demo_frames(1)[0])
            streamed = json.loads(ws.recv(timeout=60))
        job = httpx.post(f"{url}/v1/videos?every=10", files={"file": ("demo.mp4", DEMO.read_bytes(), "video/mp4")})
        status = wait_for_job(url, job.json()["id"])
        served = pd.read_csv(io.StringIO(httpx.get(f"{url}{status['timeline']}").text))
    ImageResult.model_validate(image)
    face = image["faces"][0]["behaviour"]
    assert face["attentive"] == 1.0 and abs(face["yaw"]) < 25 and 0 <= face["aus"]["AU12"] <= 1
    assert all(streamed_face["behaviour"]["aus"] for streamed_face in streamed["faces"])
    assert list(served.columns) == timeline_columns(LABELS, behaviour=True)
    assert served["AU12"].notna().all()


def test_each_set_of_pooled_models_loads_one_landmarker():
    """The pool lends a set of models to one thread at a time, so a second landmarker (Analyzer.run's two) would
    only hold memory: each set gets one, and each borrowed set reads behaviour."""
    from emolens.pipeline import Session
    from emolens.serve.pool import ModelPool

    pool = ModelPool(AnalyzerOptions(behaviour=True), workers=2, queue_size=2)
    try:
        pool.load()
        assert pool.ready.is_set(), pool.error
        faces = [pool.analyze(cv2.imread(str(PHOTO)), Session(pool.options), 0.0) for _ in range(2)]
        with pool.borrow() as first, pool.borrow() as second:
            assert first is not second and first.behaviour.workers == second.behaviour.workers == 1
    finally:
        pool.close()
    assert all(len(found) == 1 and 0 <= found.aus[0][0] <= 1 for found in faces)
