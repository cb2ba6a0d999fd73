"""The ``emolens`` command: the GUI by default, and subcommands for headless work.

    emolens [--source S] [--screenshot OUT.png --frames N]     the live window
    emolens analyze INPUT... -o OUT.csv                        frames -> CSV timeline
    emolens batch INPUT... --out DIR [--engine local|ray]      archives -> Parquet dataset (extra "batch")
    emolens evaluate DIR [--crops] [--json]                    accuracy on DIR/<emotion>/*
    emolens bench [pipeline|report|gui|batch]                  speed figures
    emolens report SESSION.csv... -o OUTDIR                    charts, tables, one HTML page
    emolens train DATA ...                                     fit, evaluate, export (extra "train")

Each subcommand parses its options, calls one library function and prints. A user mistake
(``EmolensError``) becomes one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from emolens.errors import EmolensError
from emolens.pipeline import AnalyzerOptions
from emolens.quiet import captured_native_stderr

_DEFAULTS = AnalyzerOptions()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":  # the trainer owns its options (and needs the "train" extra)
        return _train(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except EmolensError as error:
        print(f"emolens: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("emolens: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emolens", description="Emotions of every face, live or from files.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--source", help="camera index, video file or image folder (default: the camera)")
    parser.add_argument("--screenshot", help="process --frames frames, save a screenshot of the window, exit")
    parser.add_argument("--frames", type=int, default=30, help="frames to process before --screenshot (default 30)")
    _add_analyzer_options(parser, use_defaults=False)  # unset options keep the window's saved settings
    parser.set_defaults(handler=_gui)
    commands = parser.add_subparsers(title="subcommands", metavar="COMMAND")

    analyze = commands.add_parser("analyze", help="videos, images or folders -> CSV timeline")
    analyze.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, image, image folder or camera index")
    analyze.add_argument("-o", "--output", required=True, help="CSV timeline to write")
    analyze.add_argument("--every", type=int, default=1, help="process one frame in N (default 1)")
    analyze.add_argument("--keypoints", action="store_true", help="add the six face keypoints as columns")
    _add_analyzer_options(analyze)
    analyze.set_defaults(handler=_analyze)

    evaluate = commands.add_parser("evaluate", help="accuracy on a labelled folder DIR/<emotion>/* or FER+ split")
    evaluate.add_argument("folder", help="folder with one subfolder of images per emotion, or a FER+ split folder "
                                         "(label.csv beside the images)")
    how = evaluate.add_mutually_exclusive_group()
    how.add_argument("--crops", action="store_const", const="crops", dest="mode",
                     help="images are face crops: classify them directly (the default for FER+)")
    how.add_argument("--scenes", action="store_const", const="scenes", dest="mode",
                     help="put each crop into a camera-like frame first, then run the full pipeline")
    evaluate.add_argument("--map-label", action="append", default=[], metavar="NAME=EMOTION",
                          help="map a class folder to an emotion, or to 'drop' (repeatable)")
    evaluate.add_argument("--predictions", metavar="OUT.csv",
                          help="write one row per image, and the worst mistakes as OUT_worst.png")
    evaluate.add_argument("--fer2013-labels", metavar="FER2013_DIR",
                          help="score a FER+ split's raw faces against FER2013's original labels (DIR/<emotion>/*)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_analyzer_options(evaluate)
    evaluate.set_defaults(handler=_evaluate)

    bench = commands.add_parser("bench", help="measure speed; writes benchmarks/<what>.md")
    bench.add_argument("what", nargs="?", choices=("pipeline", "report", "gui", "batch"), default="pipeline")
    bench.add_argument("--out", help="results file (default benchmarks/<what>.md)")
    bench.add_argument("--quick", action="store_true", help="a short smoke run of any benchmark, not figures to quote")
    bench.set_defaults(handler=_bench)

    _add_batch_parser(commands)

    report = commands.add_parser("report", help="timeline CSV(s) -> charts, segment tables, one HTML page")
    report.add_argument("sessions", nargs="+", metavar="SESSION.csv")
    report.add_argument("-o", "--output", required=True, help="folder for the report")
    report.add_argument("--align", help="marker to align several sessions on (default: their starts)")
    report.set_defaults(handler=_report)
    return parser


def _add_batch_parser(commands) -> None:
    batch = commands.add_parser("batch", help="many recordings -> one Parquet dataset, resumable (local or Ray)")
    batch.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="video or image file, folder (recursive), glob pattern, or a .txt/.csv list of inputs")
    batch.add_argument("--out", required=True, help="output folder (or an fsspec URL): timelines/, manifest.parquet")
    batch.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: a process pool here (default); ray: a Ray cluster")
    batch.add_argument("--address", help="Ray cluster to join (host:port, ray://host:10001, auto); "
                                         "default: start a local one")
    batch.add_argument("--workers", type=int, default=0, help="worker processes (default: one per CPU)")
    batch.add_argument("--worker-gpus", type=float, default=0.0, help="GPUs per Ray worker, e.g. 0.25")
    batch.add_argument("--every", type=int, default=1, help="process one frame in N (default 1)")
    batch.add_argument("--keypoints", action="store_true", help="add the six face keypoints as columns")
    batch.add_argument("--csv", action="store_true", help="also write DIR/csv/<input id>.csv")
    batch.add_argument("--retry-failed", action="store_true", help="run the inputs that failed before again")
    _add_analyzer_options(batch)
    batch.set_defaults(handler=_batch)


def _add_analyzer_options(parser: argparse.ArgumentParser, use_defaults: bool = True) -> None:
    """Model and detection options; with ``use_defaults=False`` an option not given stays None."""
    def default(value):
        return value if use_defaults else None

    group = parser.add_argument_group("model and detection")
    group.add_argument("--model", help="a model card (.json) or its .onnx (default: the shipped model)")
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default=default(_DEFAULTS.device),
                       help="auto: CUDA when it loads, else CPU (default)")
    group.add_argument("--detector", choices=("short", "full"), default=default(_DEFAULTS.detector),
                       help="short: near faces, fastest (default); full: small, distant faces too")
    group.add_argument("--tiles", type=int, default=_DEFAULTS.tiles,
                       help="also detect on NxN overlapping tiles (rooms of viewers)")
    group.add_argument("--min-confidence", type=float, default=default(_DEFAULTS.min_confidence),
                       help="detector threshold, 0..1")
    group.add_argument("--max-faces", type=int, default=default(_DEFAULTS.max_faces),
                       help="at most N faces per frame (0 = all)")
    group.add_argument("--smoothing", dest="tau_s", type=float, default=default(_DEFAULTS.tau_s), metavar="SECONDS",
                       help="score smoothing time constant (0 = raw)")


def analyzer_options(args: argparse.Namespace) -> AnalyzerOptions:
    """The ``AnalyzerOptions`` a parsed command line asks for."""
    if not 0.0 <= args.min_confidence <= 1.0:
        raise EmolensError(f"--min-confidence must be between 0 and 1, got {args.min_confidence}")
    if args.max_faces < 0:
        raise EmolensError(f"--max-faces must be 0 or more, got {args.max_faces}")
    if args.tau_s < 0:
        raise EmolensError(f"--smoothing must be 0 or more seconds, got {args.tau_s}")
    if args.tiles < 1:
        raise EmolensError(f"--tiles must be 1 or more, got {args.tiles}")
    return AnalyzerOptions(model=args.model, device=args.device, detector=args.detector, tiles=args.tiles,
                           min_confidence=args.min_confidence, max_faces=args.max_faces, tau_s=args.tau_s)


def _analyze(args: argparse.Namespace) -> int:
    from emolens.analyze import analyze_inputs

    summary = analyze_inputs(args.inputs, Path(args.output), analyzer_options(args), every=args.every,
                             keypoints=args.keypoints, log=_log, progress=_Progress())
    _log(summary.format())
    return 0


def _batch(args: argparse.Namespace) -> int:
    try:
        from emolens.batch import BatchSettings, run_batch
    except ImportError as error:
        raise EmolensError(f"emolens batch needs {error.name}: pip install 'emolens[batch]'") from None

    settings = BatchSettings(analyzer_options(args), every=args.every, keypoints=args.keypoints,
                             write_csv=args.csv)
    summary = run_batch(args.inputs, args.out, settings, engine=args.engine, workers=args.workers,
                        address=args.address, worker_gpus=args.worker_gpus, retry_failed=args.retry_failed,
                        log=_log)
    _log(summary.format())
    if summary.failed:
        raise EmolensError(f"{len(summary.failed)} of {summary.inputs} input(s) failed (listed above and in the "
                           f"manifest); fix them and rerun with --retry-failed")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from emolens.evaluate import evaluate_folder, format_report

    progress = None if args.json else _Progress()
    label_map = dict(item.lower().split("=", 1) for item in args.map_label if "=" in item)
    report = evaluate_folder(args.folder, mode=args.mode, options=analyzer_options(args), progress=progress,
                             label_map=label_map, predictions=Path(args.predictions) if args.predictions else None,
                             fer2013_labels=Path(args.fer2013_labels) if args.fer2013_labels else None)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


# --quick for the window and report benchmarks: a short video, a five-minute session built once.
_QUICK_BENCH = {"gui": ["--seconds", "4"], "report": ["--minutes", "5", "--repeat", "1"], "batch": ["--quick"]}


def _bench(args: argparse.Namespace) -> int:
    out = Path(args.out or f"benchmarks/{args.what}.md")
    if args.what == "pipeline":
        from emolens.bench import run_pipeline_bench

        return run_pipeline_bench(out, quick=args.quick, log=_log)
    module = __import__(f"emolens.{args.what}.bench", fromlist=["main"])
    return module.main([str(out), *(_QUICK_BENCH[args.what] if args.quick else [])])


def _report(args: argparse.Namespace) -> int:
    from emolens.report import build_report

    result = build_report([Path(p) for p in args.sessions], Path(args.output), align_marker=args.align)
    for warning in result.warnings:
        _log(f"warning: {warning}")
    _log(f"report: {result.html}")
    return 0


def _gui(args: argparse.Namespace) -> int:
    from emolens.gui import run_gui

    return run_gui(args)


def _train(argv: list[str]) -> int:
    try:
        with captured_native_stderr():  # TensorFlow's start-up logs
            from emolens.training.train import main as train_main
    except ImportError as error:
        print(f"emolens: error: training needs TensorFlow ({error.name} is missing); "
              f"install the extra: pip install 'emolens[train]'", file=sys.stderr)
        return 1
    try:
        return train_main(argv)
    except (EmolensError, ValueError) as error:
        print(f"emolens: error: {error}", file=sys.stderr)
        return 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Progress:
    """A one-line progress bar on stderr (only when it is a terminal), redrawn at most 5 times a second."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()
        self.drawn = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.drawn < 0.2 and done != total):
            return
        self.drawn = now
        rate = done / max(now - self.started, 1e-9)
        if total:
            filled = int(30 * done / total)
            eta = (total - done) / rate if rate else 0
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} {rate:.1f}/s ETA {eta:.0f}s"
        else:
            line = f"{done} done, {rate:.1f}/s"
        sys.stderr.write("\r" + line + ("\n" if done == total else ""))
        sys.stderr.flush()
