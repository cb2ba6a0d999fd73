"""``emolens bench batch``: throughput of ``emolens batch`` on the local and Ray engines, 1 and 2 workers.

It writes one clip of a real face (the astronaut, ``emolens.bench.media``; 640x480, 25 fps,
one minute), copies it to 4 inputs, and runs the same batch four times into fresh
output folders: ``local`` and ``ray`` (a local Ray cluster started once, before the clock runs)
with 1 and 2 workers. Each run's wall time covers what a user waits for: worker start-up, model
loading, analysis and the manifest. Figures: hours of video per hour of wall time, frames/s,
per-input seconds (median and p95, inside the worker), Ray's overhead per input against the
local engine with the same workers, peak memory per worker, and a projection to more nodes.

    emolens bench batch [--quick]
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import onnxruntime
import pandas as pd

from emolens.batch.runner import run_batch
from emolens.batch.tasks import BatchSettings
from emolens.bench.media import write_video
from emolens.bench.pipeline import median_p95
from emolens.bench.registry import BenchRun
from emolens.options import AnalyzerOptions

CONFIGS = (("local", 1), ("ray", 1), ("local", 2), ("ray", 2))
_NODE_SIZES = (16, 64)
_NODE_COUNTS = (1, 10, 100)


def measure(engine: str, workers: int, inputs: list[Path], out: Path) -> dict:
    """One batch run: wall time, frames, video seconds, per-input seconds and worker memory."""
    settings = BatchSettings(AnalyzerOptions(device="cpu"))
    started = time.perf_counter()
    summary = run_batch([str(p) for p in inputs], str(out), settings, engine=engine, workers=workers,
                        log=lambda _: None, progress=False)
    wall = time.perf_counter() - started
    if summary.failed:
        raise RuntimeError(f"benchmark inputs failed: {summary.failed}")
    manifest = pd.read_parquet(out / "manifest.parquet")
    return {"wall": wall, "frames": int(manifest["frames"].sum()), "video_s": float(manifest["duration_s"].sum()),
            "per_input": median_p95(manifest["wall_s"]), "rss_mb": float(manifest["worker_rss_mb"].max())}


def run(bench: BenchRun) -> int:
    """Time both engines on 4 inputs of 60 s (``quick``: 2 of 5 s, a smoke run); write ``bench.out``."""
    count, seconds = (2, 5.0) if bench.quick else (4, 60.0)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="emolens-bench-batch-") as temporary:
        folder = Path(temporary)
        clip = write_video(folder / "clip.mp4", (640, 480), faces=1, seconds=seconds, fps=25.0)
        inputs = [clip] + [shutil.copy(clip, folder / f"clip{i}.mp4") for i in range(1, count)]
        ray_start_s = _start_ray()
        try:
            results = {}
            for engine, workers in CONFIGS:
                results[engine, workers] = measure(engine, workers, [Path(p) for p in inputs],
                                                   folder / f"{engine}{workers}")
                bench.log(f"{engine} x{workers}: {results[engine, workers]['wall']:.1f} s")
        finally:
            import ray

            ray.shutdown()
    text = _report(results, count, seconds, ray_start_s, load_before, os.getloadavg(), bench.quick)
    bench.write(text)
    return 0


def _start_ray() -> float:
    """A local Ray cluster with 2 CPUs on 127.0.0.1, started before any run is timed; its start-up seconds."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_worker_niceness"] = "0"  # as `emolens batch` starts a local cluster (see engines.py)
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - started


def _report(results: dict, count: int, seconds: float, ray_start_s: float, load_before, load_after,
            quick: bool) -> str:
    lines = [
        "# Batch benchmark (`emolens batch`)",
        "",
        f"Command: `emolens bench batch{' --quick' if quick else ''}`. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only; "
        f"Python {platform.python_version()}, ray {version('ray')}, pyarrow {version('pyarrow')}, "
        f"onnxruntime {onnxruntime.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Inputs: {count} copies of a {seconds:.0f} s, 25 fps, 640x480 clip of one real face (the astronaut, "
        "`emolens.bench.media`), default short-range detector. Each row is one `run_batch` call into a fresh "
        "folder; wall time includes starting the workers and loading the model in each (the Ray cluster itself "
        f"was started once before, in {ray_start_s:.1f} s, and is not counted; its workers run at the same "
        "priority as the local engine's, as in a cluster `emolens batch` starts). Per-input seconds are measured "
        "inside the worker (decode, analyse, write the Parquet file).",
        "",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
        f"{', '.join(f'{v:.2f}' for v in load_after)}.",
        "",
        "| engine | workers | wall s | frames/s | hours of video per hour | per input s (median / p95) "
        "| peak memory per worker MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (engine, workers), r in results.items():
        lines.append(f"| {engine} | {workers} | {r['wall']:.1f} | {r['frames'] / r['wall']:.1f} | "
                     f"**{r['video_s'] / r['wall']:.1f}** | {r['per_input'][0]:.1f} / {r['per_input'][1]:.1f} | "
                     f"{r['rss_mb']:.0f} |")
    lines += ["", "## Ray's overhead against the local engine", ""]
    for workers in (1, 2):
        local, ray = results["local", workers], results["ray", workers]
        per_input = (ray["wall"] - local["wall"]) / count
        lines.append(f"- {workers} worker(s): {per_input:+.2f} s per input end to end "
                     f"({(ray['wall'] / local['wall'] - 1) * 100:+.1f}% of the local engine's wall time); "
                     f"inside the worker {ray['per_input'][0] - local['per_input'][0]:+.2f} s per input (median)")
    best = max(results.values(), key=lambda r: r["video_s"] / r["wall"])
    per_core = results["ray", 1]["video_s"] / results["ray", 1]["wall"]
    lines += [
        "",
        "## Projection to more nodes (a projection, not a measurement)",
        "",
        f"From the measured Ray rate with one worker on one core here ({per_core:.1f} hours of video per hour), "
        "assuming one worker per core, inputs far more numerous than workers, and storage that keeps up. "
        "A busy core of another machine is faster or slower than this VM's; rerun this benchmark there.",
        "",
        "| nodes | " + " | ".join(f"{cores}-core nodes: video h per h" for cores in _NODE_SIZES) + " |",
        "|---:|" + "---:|" * len(_NODE_SIZES),
    ]
    for nodes in _NODE_COUNTS:
        lines.append(f"| {nodes} | " + " | ".join(f"{per_core * cores * nodes:,.0f}" for cores in _NODE_SIZES)
                     + " |")
    lines += ["", f"Core-hours per hour of video: {1 / per_core:.3f} (one worker per core); the best rate "
              f"measured on this 2-core machine was {best['video_s'] / best['wall']:.1f} hours of video per hour.",
              ""]
    return "\n".join(lines)
