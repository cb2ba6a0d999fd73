"""``emolens bench serve``: a bounded load test of ``emolens serve`` on 127.0.0.1 with real clients.

It starts ``emolens serve --port 0`` as its own process (so the load generator does not share
its interpreter), then:

- ``POST /v1/images`` of a 640x480 JPEG of one real face (the astronaut, ``emolens.assets``) from
  1, 4 and 16 concurrent httpx clients, each level bounded by a request count and a time budget:
  throughput, p50/p95/p99 latency as the client sees it, errors, and the server's RSS before and
  after;
- ``WS /v1/stream`` from one client sending the demo clip's frames one after another (the next
  when the previous is answered): frames per second and p50/p95 round-trip frame latency;
- the classifier alone, ``k`` calls of one face against one call of ``k`` faces: what batching
  concurrent requests into one classifier call could save at most.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import httpx
import numpy as np
from websockets.asyncio.client import connect

from emolens.bench.media import DEMO, face_tiles, render_frame
from emolens.bench.registry import BenchRun
from emolens.serve.config import DEFAULT_WORKERS

_CONCURRENCY = (1, 4, 16)
# Inference workers the image levels are measured with: the default first (the stream runs on it).
_WORKERS = tuple(dict.fromkeys((DEFAULT_WORKERS, 1, 2)))


def _percentiles(samples_s: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(samples_s) * 1000.0, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (Linux ``/proc``; None elsewhere)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else None


def start_server(*args: str, token: str = "") -> tuple[subprocess.Popen, str]:
    """``emolens serve --port 0 ARGS`` on 127.0.0.1 in its own process, once ready: the process and its URL.

    Raises:
        RuntimeError: it did not start, or was not ready within 120 s.
    """
    process = subprocess.Popen([sys.executable, "-m", "emolens", "serve", "--port", "0", *args],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env={**os.environ, "EMOLENS_TOKEN": token})
    match = re.search(r"serving (http://\S+?) ", process.stdout.readline())
    if match is None:
        process.kill()
        raise RuntimeError("emolens serve did not start")
    url = match.group(1)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", headers=headers).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("emolens serve did not become ready in 120 s")


async def _load(url: str, body: bytes, clients: int, requests: int, budget_s: float) -> dict:
    """``clients`` closed-loop clients sharing ``requests`` requests, stopping at ``budget_s``."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    remaining = {"n": requests}
    deadline = time.perf_counter() + budget_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(session: httpx.AsyncClient) -> None:
        while remaining["n"] > 0 and time.perf_counter() < deadline:
            remaining["n"] -= 1
            started = time.perf_counter()
            try:
                response = await session.post(f"{url}/v1/images", content=body,
                                              headers={"Content-Type": "image/jpeg"})
                outcome = "ok" if response.status_code == 200 else str(response.status_code)
            except httpx.HTTPError as error:
                outcome = type(error).__name__
            if outcome == "ok":
                latencies.append(time.perf_counter() - started)
            else:
                errors[outcome] = errors.get(outcome, 0) + 1

    async with httpx.AsyncClient(limits=limits, timeout=30) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        wall = time.perf_counter() - started
    p50, p95, p99 = _percentiles(latencies) if latencies else (0.0, 0.0, 0.0)
    return {"clients": clients, "ok": len(latencies), "errors": errors, "wall_s": wall,
            "throughput": len(latencies) / wall, "p50": p50, "p95": p95, "p99": p99}


async def _stream(url: str, frames: list[bytes], count: int, budget_s: float) -> dict:
    latencies: list[float] = []
    ws_url = url.replace("http://", "ws://") + "/v1/stream"
    async with connect(ws_url, max_size=None) as ws:
        for index in range(3):  # warm-up
            await ws.send(frames[index % len(frames)])
            await ws.recv()
        started = time.perf_counter()
        deadline = started + budget_s
        faces = 0
        while len(latencies) < count and time.perf_counter() < deadline:
            sent = time.perf_counter()
            await ws.send(frames[len(latencies) % len(frames)])
            message = json.loads(await ws.recv())
            latencies.append(time.perf_counter() - sent)
            faces += len(message.get("faces", []))
        wall = time.perf_counter() - started
    p50, p95, _ = _percentiles(latencies)
    return {"frames": len(latencies), "fps": len(latencies) / wall, "p50": p50, "p95": p95,
            "faces_per_frame": faces / max(len(latencies), 1)}


def _batching(repeats: int) -> list[tuple[int, float, float]]:
    """(k, ms for k one-face calls, ms for one k-face call), classifier on one thread, median of ``repeats``."""
    from emolens.card import ModelCard
    from emolens.classify import Classifier
    from emolens.crop import crop_faces
    from emolens.detect import FaceDetector

    card = ModelCard.load()
    classifier = Classifier(card, "cpu", threads=1)
    image = render_frame(face_tiles(1), (640, 480), 0.0)
    with FaceDetector() as detector:
        crops = crop_faces(image, detector.detect(image), card)
    rows = []
    for k in (4, 16):
        batch = np.repeat(crops, k, axis=0)
        separate, together = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(k):
                classifier.predict(crops)
            separate.append(time.perf_counter() - started)
            started = time.perf_counter()
            classifier.predict(batch)
            together.append(time.perf_counter() - started)
        rows.append((k, float(np.median(separate)) * 1000, float(np.median(together)) * 1000))
    return rows


def _demo_frames(count: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(DEMO))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    capture.release()
    return frames


def run(bench: BenchRun) -> int:
    """Run the load test and write ``bench.out`` (markdown); see the module docstring."""
    quick, log = bench.quick, bench.log
    requests, budget_s = (60, 5.0) if quick else (1000, 30.0)
    stream_frames = 40 if quick else 600
    image = render_frame(face_tiles(1), (640, 480), 0.0)
    body = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    levels, rss, stream = [], {}, None
    for workers in _WORKERS:
        process, url = start_server("--workers", str(workers))
        try:
            asyncio.run(_load(url, body, 2, 20, 10.0))  # warm-up: first calls allocate
            rss[workers] = [_rss_mib(process.pid)]
            for clients in _CONCURRENCY:
                result = {**asyncio.run(_load(url, body, clients, requests, budget_s)), "workers": workers}
                log(f"images, {workers} worker(s), {clients} client(s): {result['throughput']:.1f}/s, "
                    f"p95 {result['p95']:.1f} ms, errors {result['errors'] or 0}")
                levels.append(result)
            rss[workers].append(_rss_mib(process.pid))
            if stream is None:
                stream = asyncio.run(_stream(url, _demo_frames(120), stream_frames, budget_s))
                log(f"stream: {stream['fps']:.1f} frames/s, p95 {stream['p95']:.1f} ms")
                rss[workers].append(_rss_mib(process.pid))
        finally:
            process.terminate()
            process.wait(timeout=30)
    batching = _batching(30 if quick else 300)
    bench.write(_markdown(levels, stream, batching, rss, quick, requests, budget_s, len(body), load_before))
    return 0


def _fmt_mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def _markdown(levels: list[dict], stream: dict, batching: list, rss: dict[int, list], quick: bool, requests: int,
              budget_s: float, jpeg_bytes: int, load: float | None) -> str:
    lines = ["# `emolens serve` under load", "",
             f"`emolens bench serve{' --quick' if quick else ''}` on {platform.machine()}, "
             f"{os.cpu_count()} CPU core(s), "
             f"Python {platform.python_version()}, fastapi {version('fastapi')}, uvicorn {version('uvicorn')}, "
             f"onnxruntime {version('onnxruntime-gpu') if _has('onnxruntime-gpu') else version('onnxruntime')}; "
             f"server: `emolens serve` (CPU; `--workers` as in each row, default {DEFAULT_WORKERS}) in its own "
             "process, clients in another. "
             + (f"Load average when it started: {load:.1f} (other work shares these cores)." if load else ""),
             "" if not quick else "\n**--quick: a smoke run, not figures to quote.**", "",
             f"## `POST /v1/images`: a 640x480 JPEG ({jpeg_bytes // 1024} KiB) of one face",
             "", f"Each level: closed-loop httpx clients, at most {requests} requests or {budget_s:.0f} s; latency "
             "is the client's, from sending the request to reading the answer.", "",
             "| workers | clients | requests | errors | images/s | p50 ms | p95 ms | p99 ms |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for level in levels:
        errors = sum(level["errors"].values())
        detail = f" ({', '.join(f'{k}: {v}' for k, v in level['errors'].items())})" if errors else ""
        lines.append(f"| {level['workers']} | {level['clients']} | {level['ok'] + errors} | {errors}{detail} | "
                     f"**{level['throughput']:.1f}** | {level['p50']:.1f} | {level['p95']:.1f} | {level['p99']:.1f} |")
    lines += [""] + [f"Server RSS with {workers} worker(s): {_fmt_mib(values[0])} after warm-up, "
                     f"{_fmt_mib(values[1])} after the image levels"
                     + (f", {_fmt_mib(values[2])} after the stream." if len(values) > 2 else ".")
                     for workers, values in rss.items()]
    lines += ["", f"The stream below ran on the server with {next(iter(rss))} worker(s).", "",
              "## `WS /v1/stream`: one client, the demo clip's 640x480 frames (two faces)", "",
              "The client sends the next JPEG frame when the previous one is answered; latency is the round trip.",
              "", "| frames | frames/s | p50 ms | p95 ms | faces per frame |", "| ---: | ---: | ---: | ---: | ---: |",
              f"| {stream['frames']} | **{stream['fps']:.1f}** | {stream['p50']:.1f} | {stream['p95']:.1f} | "
              f"{stream['faces_per_frame']:.1f} |", "",
              "## Would batching concurrent image requests pay?", "",
              "The classifier alone on one thread: `k` calls with one face each against one call with `k` faces "
              "(median).", "", "| k | k calls of 1 face, ms | 1 call of k faces, ms | saved per face, ms |",
              "| ---: | ---: | ---: | ---: |"]
    for k, separate, together in batching:
        lines.append(f"| {k} | {separate:.2f} | {together:.2f} | {(separate - together) / k:.2f} |")
    lines.append("")
    return "\n".join(lines)


def _has(distribution: str) -> bool:
    try:
        version(distribution)
    except Exception:  # PackageNotFoundError
        return False
    return True
