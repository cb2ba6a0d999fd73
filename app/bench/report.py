"""Benchmark the report on a long session: one hour at 30 fps with 6 faces (648,000 rows).

    python -m emolens.bench.report [RESULTS.md] [--repeat 3]     # default benchmarks/report.md

The timeline is synthesised with numpy and written by pandas in the schema of
``emolens.record`` (smooth emotion curves, faces leaving and coming back, a minute in which
nobody is seen, a marker every ten minutes). Each report is then built in a fresh child
process, so that neither the synthesis nor an earlier run counts toward its peak memory
(the child's own high-water mark, imports included). Prints and writes the median and slowest
time and the peak memory against the targets: 30 s and 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from emolens.bench.registry import BenchRun
from emolens.bench.results import check_results_path, run_module, write_results
from emolens.evaluation.labels import FER2013_LABELS
from emolens.record import timeline_columns

TARGET_S = 30.0
TARGET_MIB = 1024.0
MARKERS = ("ad starts", "logo", "price shown", "ad ends", "discussion", "second ad")


def synthesize_timeline(path: Path, seconds: float = 3600.0, fps: float = 30.0, faces: int = 6,
                        labels: tuple[str, ...] = FER2013_LABELS, seed: int = 0) -> int:
    """Write a timeline CSV of ``faces`` faces over ``seconds``; returns its number of rows."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * fps)
    time_s = np.arange(frames) / fps
    # Logits: a few slow sine waves per face and emotion, plus frame-to-frame jitter.
    periods = rng.uniform(20, 600, size=(faces, len(labels), 3))
    phases = rng.uniform(0, 2 * np.pi, size=periods.shape)
    logits = np.sin(2 * np.pi * time_s[:, None, None, None] / periods + phases).sum(axis=-1) * 1.5
    logits += rng.normal(0, 0.3, size=logits.shape)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True)).astype(np.float32)
    probs /= probs.sum(axis=-1, keepdims=True)
    # Each face looks away 3 s in every 5 minutes (staggered); nobody is in the room from 30:00 to 30:20.
    seen = ((time_s[:, None] + 47 * np.arange(faces)) % 300 >= 3) & ~((time_s >= 1800) & (time_s < 1820))[:, None]

    frame_index, face_index = np.nonzero(seen)
    face_rows = pd.DataFrame({"frame": frame_index, "face_id": face_index + 1})
    face_rows[["x", "y", "w", "h"]] = np.round(rng.uniform(50, 400, size=(len(face_rows), 4)), 1)
    face_rows["det_score"] = np.round(rng.uniform(0.6, 1.0, size=len(face_rows)), 4)
    chosen = probs[frame_index, face_index]
    face_rows[list(labels)] = np.round(chosen.astype(np.float64), 5)
    face_rows["dominant"] = np.asarray(labels)[chosen.argmax(axis=1)]
    empty = pd.DataFrame({"frame": np.flatnonzero(~seen.any(axis=1))})
    rows = pd.concat([face_rows, empty]).sort_values("frame", kind="stable").reset_index(drop=True)

    stamps = np.datetime64("2026-01-05T14:00:00.000") + np.round(time_s * 1000).astype("timedelta64[ms]")
    rows["timestamp"] = np.char.add(np.datetime_as_string(stamps, unit="ms"), "Z")[rows["frame"]]
    rows["source"] = "focus-group.mp4"
    rows["time_s"] = np.round(time_s[rows["frame"]], 3)
    rows["face_id"] = rows["face_id"].astype("Int64")
    first_rows = ~rows["frame"].duplicated()
    marked = first_rows & (rows["frame"] % int(600 * fps) == int(60 * fps))
    rows["marker"] = pd.Series(np.resize(MARKERS, int(marked.sum())), index=rows.index[marked])
    rows.reindex(columns=timeline_columns(labels)).to_csv(path, index=False, lineterminator="\n")  # no stimulus
    return len(rows)


def run(bench: BenchRun) -> int:
    """``emolens bench report``: ``main`` with its defaults (``quick``: a short smoke run)."""
    return main([str(bench.out), *(["--minutes", "5", "--repeat", "1"] if bench.quick else []),
                 *(["--overwrite"] if bench.overwrite else [])], command=bench.command)


def main(argv: list[str] | None = None, command: str | None = None) -> int:
    """Run the benchmark; 0 when both targets are met, 1 otherwise. ``command`` is how the results
    file says to reproduce it (default: this module's command line with ``argv``)."""
    parser = argparse.ArgumentParser(prog="python -m emolens.bench.report", description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default="benchmarks/report.md", help="markdown file for the figures")
    parser.add_argument("--repeat", type=int, default=3, help="reports to build, each in a fresh process")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the synthetic session")
    parser.add_argument("--overwrite", action="store_true", help="replace the results file if it exists")
    parser.add_argument("--once", nargs=2, metavar=("CSV", "OUTDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.once:
        return _report_once(Path(args.once[0]), Path(args.once[1]))
    check_results_path(Path(args.results), args.overwrite)

    with tempfile.TemporaryDirectory(prefix="emolens-bench-") as folder:
        csv = Path(folder) / "focus-group.csv"
        started = time.perf_counter()
        rows = synthesize_timeline(csv, seconds=args.minutes * 60)
        size_mib = csv.stat().st_size / 2**20
        print(f"synthesised {rows:,} rows ({size_mib:.0f} MiB) in {time.perf_counter() - started:.1f} s")
        runs = [_child_run(csv, Path(folder) / f"report{run}") for run in range(args.repeat)]
    seconds = [run["seconds"] for run in runs]
    peak_mib = max(run["peak_mib"] for run in runs)
    passed = max(seconds) < TARGET_S and peak_mib < TARGET_MIB
    print(f"report of {rows:,} rows ({args.minutes:g} min, 30 fps, 6 faces): "
          f"median {statistics.median(seconds):.1f} s, slowest {max(seconds):.1f} s, "
          f"peak memory {peak_mib:.0f} MiB (targets {TARGET_S:.0f} s, {TARGET_MIB:.0f} MiB: "
          f"{'met' if passed else 'MISSED'})")
    given = argv if argv is not None else sys.argv[1:]
    command = command or shlex.join(["python", "-m", "emolens.bench.report", *given])
    _write_results(Path(args.results), rows, size_mib, seconds, peak_mib, passed, command, args.overwrite)
    print(f"results: {args.results}")
    return 0 if passed else 1


def _child_run(csv: Path, out_dir: Path) -> dict[str, float]:
    """Build one report in a fresh interpreter; its time and peak memory."""
    command = [sys.executable, "-m", "emolens.bench.report", "--once", str(csv), str(out_dir)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the report failed: {done.stderr.strip()}")
    run = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  report in {run['seconds']:.1f} s, peak memory {run['peak_mib']:.0f} MiB")
    return run


def _report_once(csv: Path, out_dir: Path) -> int:
    from emolens.report import build_report

    started = time.perf_counter()
    build_report([csv], out_dir)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_mib": _peak_mib()}))
    return 0


def _peak_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux's ``ru_maxrss`` keeps the parent's size at fork across ``exec``, so the high-water
    mark of this process's own memory (``VmHWM``) is read where it exists.
    """
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 2**10
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def _write_results(path: Path, rows: int, size_mib: float, seconds: list[float], peak_mib: float,
                   passed: bool, command: str, overwrite: bool) -> None:
    machine = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
               f"Python {platform.python_version()}")
    text = (
        "# Report benchmark\n\n"
        f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine}; "
        f"pandas {pd.__version__}.\n\n"
        f"| timeline | rows | CSV | reports | median | slowest | peak memory | "
        f"targets ({TARGET_S:.0f} s, {TARGET_MIB / 1024:.0f} GiB) |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        f"| synthetic, 30 fps, 6 faces | {rows:,} | {size_mib:.0f} MiB | {len(seconds)} | "
        f"{statistics.median(seconds):.1f} s | {max(seconds):.1f} s | {peak_mib:.0f} MiB | "
        f"{'met' if passed else 'missed'} |\n\n"
        "Each report runs in a fresh process (imports included in the memory figure), reads the whole CSV and "
        "writes every table, chart and the HTML page.\n")
    write_results(path, text, overwrite)


if __name__ == "__main__":
    run_module(main)
