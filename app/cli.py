"""The ``emolens`` command: the GUI by default, and subcommands for headless work.

    emolens [--source S] [--screenshot OUT.png --frames N]     the live window
    emolens analyze INPUT... -o OUT.csv                        frames -> CSV timeline
    emolens batch INPUT... --out DIR [--engine local|ray]      archives -> Parquet dataset (extra "batch")
    emolens evaluate DIR [--crops] [--json]                    accuracy on DIR/<emotion>/*
    emolens bench [pipeline|detection|report|gui|behaviour]    speed and detection figures
    emolens bench [batch|serve|panels|soak]                    batch, service, remote panel and memory figures
    emolens bench [study|sync|study-window|replay]             study, sync and replay figures
    emolens bench behaviour-validation                         AUs against FER+ emotions
    emolens report SESSION.csv... -o OUTDIR                    charts, tables, one HTML page
    emolens study new|add|invite|report|info DIR ...           ad tests: stimuli, viewers, one study report
    emolens replay SESSION.csv [--at S --screenshot OUT.png]   the session's video, faces and chart, to review
    emolens serve [--host H] [--port P] [--token-file F]      HTTP/WebSocket service (extra "serve")
    emolens train DATA ...                                     fit, evaluate, export (extra "train")
    emolens sweep pack|run|unpack ...                          several recipes at once on a GPU machine
    emolens ensemble MODEL.onnx... --out OUT.onnx              models averaged as one (extra "train")

Each subcommand parses its options, calls one library function and prints. A user mistake
(``EmolensError``) becomes one line on stderr and exit status 1; ``analyze`` exits with 3
(``EXIT_INCOMPLETE``) when it finished but part of an input could not be read. ``--verbose`` shows the
``emolens`` logger's details (why CUDA did not load, say) on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from emolens import __version__
from emolens.bench.registry import BENCHES
from emolens.card import MODEL_NAMES
from emolens.errors import EmolensError, SettingError
from emolens.native import captured_native_stderr, deliver_swallowed_interrupts, quiet_interrupted_teardown
from emolens.options import DETECT_MODES, AnalyzerOptions

# Commands that own their options and need the "train" extra: their modules' main(argv).
TRAINING_COMMANDS = {"train": "emolens.training.cli", "sweep": "emolens.training.sweep",
                     "ensemble": "emolens.training.ensemble"}
# analyze's exit status when it finished but part of an input could not be read (a truncated video, a skipped image)
EXIT_INCOMPLETE = 3
_SQUARES = {"auto": None, "always": True, "never": False}
# The flags whose names are not their setting's (``--max-faces`` is ``max_faces``; see errors.SettingError).
_FLAGS = {"tau_s": "--smoothing", "behaviour_budget_hz": "--behaviour-budget", "output": "-o"}
_EXAMPLES = """examples:
  emolens                                       the live window on the default camera
  emolens --source talk.mp4                     the live window on a video file (or an image folder)
  emolens analyze talk.mp4 -o talk.csv          a CSV timeline of every face, headless
  emolens report talk.csv -o report/            charts and per-segment tables, one HTML page
  emolens study new adtest --stimulus ad.mp4    an ad test; then study add, study report
  emolens replay talk.csv                       replay the video with its faces, chart and markers
  emolens evaluate DIR                          accuracy on DIR/<emotion>/*
  emolens train DATA --out runs/mine            retrain (pip install 'emolens[train]')
  emolens COMMAND --help                        the options of one command
"""


def main(argv: list[str] | None = None) -> int:
    is_process = argv is None  # not called by a test or a script with its own arguments
    argv = sys.argv[1:] if argv is None else argv
    deliver_swallowed_interrupts()
    try:  # everything, imports included: Ctrl+C while a runtime loads is an interruption, not a traceback
        for command in TRAINING_COMMANDS:  # the trainer owns its options ("train" extra)
            leading = argv[:argv.index(command)] if command in argv else None
            if leading is not None and set(leading) <= {"--verbose"}:
                _configure_logging(bool(leading))
                return _training(command, argv[len(leading) + 1:])
        args = build_parser().parse_args(argv)
        _configure_logging(args.verbose)
        return args.handler(args)
    except SettingError as error:  # the library names the setting; the user typed the flag
        print(f"emolens: error: {error.naming(_flag)}", file=sys.stderr)
        return 1
    except EmolensError as error:
        print(f"emolens: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return _interrupted(process=is_process)
    except Exception as error:
        # Libraries turn a Ctrl+C into their own error: ONNX Runtime's loader an ImportError,
        # tqdm an AttributeError when it lands while its lock is being made.
        if not _caused_by_interrupt(error):
            raise
        return _interrupted(process=is_process)


def _flag(setting: str) -> str:
    """The command-line flag of a setting named in a ``SettingError``."""
    return _FLAGS.get(setting, "--" + setting.replace("_", "-"))


def _interrupted(process: bool) -> int:
    """Say "interrupted" as the last line: when ``main`` is the process, native libraries' teardown
    (MediaPipe's logs) must not print after it, so their stderr is closed."""
    quiet_interrupted_teardown()
    print("emolens: interrupted", file=sys.stderr, flush=True)
    if process:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    return 130


def _caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` was raised because of a ``KeyboardInterrupt`` (anywhere in its chain)."""
    seen = error.__cause__ or error.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emolens", description="Emotions of every face, live or from files.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EXAMPLES)
    parser.add_argument("--version", action="version", version=f"emolens {__version__}")
    parser.add_argument("--verbose", action="store_true", help="details on stderr (e.g. why CUDA did not load)")
    parser.add_argument("--source", help="camera index, video file or image folder (default: the camera)")
    parser.add_argument("--screenshot", help="process --frames frames, save the window to this image (.png, ...), exit")
    parser.add_argument("--frames", type=int, default=30, help="frames to process before --screenshot (default 30)")
    parser.add_argument("--overwrite", action="store_true", help="replace the --screenshot file if it exists")
    parser.add_argument("--behaviour", action="store_true", help="start with behaviour on (action units, head pose)")
    parser.add_argument("--mesh", action="store_true", help="draw the landmark mesh (turns behaviour on)")
    parser.add_argument("--head-axes", action="store_true", help="draw head-pose axes (turns behaviour on)")
    parser.add_argument("--save-video", action="store_true",
                        help="save the camera video with recordings, as NAME.mp4 beside the timeline (for replay; "
                             "it is the participant's face)")
    _add_analyzer_options(parser, use_defaults=False)  # unset options keep the window's saved settings
    parser.set_defaults(handler=_gui)
    commands = parser.add_subparsers(title="subcommands", metavar="COMMAND")
    # --verbose after the subcommand too; SUPPRESS keeps one given before it
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="details on stderr (e.g. why CUDA did not load)")
    for add in (_add_analyze_parser, _add_evaluate_parser, _add_bench_parser, _add_batch_parser, _add_report_parser,
                _add_study_parser, _add_replay_parser):
        add(commands, verbose)
    # Listed for --help only: main() hands "emolens [--verbose] train ..." to the trainer before argparse.
    commands.add_parser("train", help="fit, evaluate and export a model on FER2013 or your folders "
                                      "(pip install 'emolens[train]'; emolens train --help)", add_help=False)
    commands.add_parser("sweep", help="fit several recipes at once on a GPU machine, export them here "
                                      "(emolens sweep --help)", add_help=False)
    commands.add_parser("ensemble", help="several exported models averaged as one model with one card "
                                         "(emolens ensemble --help)", add_help=False)
    _add_serve_parser(commands, verbose)
    return parser


def _add_analyze_parser(commands, verbose: argparse.ArgumentParser) -> None:
    analyze = commands.add_parser("analyze", help="videos, images or folders -> CSV timeline", parents=[verbose],
                                  epilog=f"exit status: 0 done; 1 an error (one line on stderr); {EXIT_INCOMPLETE} "
                                  "done, but part of an input could not be read (a truncated video, skipped images); "
                                  "130 interrupted")
    analyze.add_argument("inputs", nargs="+", metavar="INPUT", help="video file, image, image folder or camera index")
    analyze.add_argument("-o", "--output", required=True, help="CSV timeline to write")
    analyze.add_argument("--every", type=int, default=1, help="process one frame in N (default 1)")
    analyze.add_argument("--keypoints", action="store_true", help="add the six face keypoints as columns")
    analyze.add_argument("--behaviour", action="store_true",
                         help="add action units, head pose, eye openness, blinks, attention and expressiveness")
    analyze.add_argument("--landmarks", action="store_true",
                         help="with --behaviour: add the 478 landmarks (956 columns)")
    analyze.add_argument("--behaviour-hz", type=float, default=AnalyzerOptions.behaviour_hz, metavar="HZ",
                         help=f"landmarker readings per face per second (0 = every frame; default "
                              f"{AnalyzerOptions.behaviour_hz:g})")
    analyze.add_argument("--behaviour-budget", type=float, default=AnalyzerOptions.behaviour_budget_hz,
                         metavar="HZ", help="at most this many landmarker readings per second over all faces: with "
                         f"more faces each is read less often (0 = no cap; default "
                         f"{AnalyzerOptions.behaviour_budget_hz:g})")
    analyze.add_argument("--video", metavar="OUT.mp4", help="also write the frames with boxes, IDs and scores drawn "
                         "(.mp4 or .avi; scores smoothed by --smoothing, as the window shows them)")
    analyze.add_argument("--markers", metavar="EVENTS.csv", help="merge markers from a time,label CSV into the "
                         "marker column (time: seconds since each input's start, or an ISO 8601 time)")
    analyze.add_argument("--squares", choices=tuple(_SQUARES), default="auto",
                         help="detect on overlapping full-height squares of the frame: auto (default: the short "
                         "detector on frames 1.5x as wide as high), always, or never (one letterboxed pass)")
    analyze.add_argument("--second-look", choices=("on", "off"), default="on",
                         help="look again, closer, at faces that scored under --min-confidence but at least half "
                         "of it; they count if either look reaches it: on (default) or off (one look)")
    analyze.add_argument("--overwrite", action="store_true", help="replace OUT.csv if it exists")
    _add_analyzer_options(analyze)
    for action in analyze._actions:  # the CSV never holds smoothed scores: say what --smoothing changes here
        if action.dest == "tau_s":
            action.help = ("smoothing time constant of the scores drawn by --video (0 = raw); the CSV's "
                           "emotion columns always hold the model's raw scores")
    analyze.set_defaults(handler=_analyze)


def _add_evaluate_parser(commands, verbose: argparse.ArgumentParser) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy on a labelled folder DIR/<emotion>/* or FER+ split",
                                   parents=[verbose])
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
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace the --predictions files (OUT.csv, OUT_worst.png) if they exist")
    evaluate.add_argument("--fer2013-labels", metavar="FER2013_DIR",
                          help="score a FER+ split's raw faces against FER2013's original labels (DIR/<emotion>/*)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _add_analyzer_options(evaluate)
    evaluate.set_defaults(handler=_evaluate)


def _add_bench_parser(commands, verbose: argparse.ArgumentParser) -> None:
    bench = commands.add_parser("bench", help="measure speed; writes benchmarks/<what>.md", parents=[verbose])
    bench.add_argument("what", nargs="?", default="pipeline", choices=tuple(BENCHES),
                       help="; ".join(f"{name}: {purpose}" for name, (_, purpose) in BENCHES.items())
                       .replace("%", "%%"))
    bench.add_argument("--out", help="results file (default benchmarks/<what>.md; with --quick, a temporary folder)")
    bench.add_argument("--quick", action="store_true",
                       help="a short smoke run, not figures to quote: it never replaces benchmarks/<what>.md")
    bench.add_argument("--overwrite", action="store_true",
                       help="replace the results file if it exists (benchmarks/<what>.md, or --out)")
    bench.add_argument("--minutes", type=float, default=10.0,
                       help="soak: how long to run (default 10); fails above 5%% RSS growth")
    bench.add_argument("--model", choices=tuple(MODEL_NAMES), default="fast",
                       help="pipeline: the shipped emotion model to run (default fast; accurate writes "
                       "benchmarks/pipeline_accurate.md)")
    bench.set_defaults(handler=_bench)


def _add_report_parser(commands, verbose: argparse.ArgumentParser) -> None:
    report = commands.add_parser("report", help="timeline CSV(s) -> charts, segment tables, one HTML page",
                                 parents=[verbose])
    report.add_argument("sessions", nargs="+", metavar="SESSION.csv")
    report.add_argument("-o", "--output", required=True, help="folder for the report")
    report.add_argument("--align", help="marker to align several sessions on (default: their starts)")
    report.add_argument("--overwrite", action="store_true", help="replace the files of an earlier report in the folder")
    report.set_defaults(handler=_report)


def _configure_logging(verbose: bool) -> None:
    """The ``emolens`` logger's records on stderr: warnings always, details with ``--verbose``."""
    logger = logging.getLogger("emolens")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("emolens: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _add_replay_parser(commands, verbose: argparse.ArgumentParser) -> None:
    replay = commands.add_parser("replay", help="a session's video with its faces, chart and markers, to review",
                                 parents=[verbose])
    replay.add_argument("session_csv", metavar="SESSION.csv|STUDY_DIR",
                        help="a timeline written by analyze or the window, or a study folder (lists its sessions)")
    replay.add_argument("--session", type=int, default=1,
                        help="which session of a file that holds several (1 = the first)")
    replay.add_argument("--at", type=float, help="open at this many seconds")
    replay.add_argument("--screenshot", help="save the window at --at to this image (.png, .jpg, ...) and exit")
    replay.add_argument("--overwrite", action="store_true", help="replace the --screenshot file if it exists")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    if args.at is not None and not args.at >= 0:
        raise EmolensError(f"--at {args.at:g}: give the seconds from the session's start (0 or more)")
    if not Path(args.session_csv).exists():
        raise EmolensError(f"{args.session_csv} is not found (expected a timeline CSV or a study folder)")
    from emolens.gui import run_replay

    return run_replay(args)


def _add_serve_parser(commands, verbose: argparse.ArgumentParser) -> None:
    """``emolens serve``; its defaults are ``ServeConfig``'s and ``Limits``' (no FastAPI import needed)."""
    from emolens.serve.config import Limits, ServeConfig

    config, limits = ServeConfig(), Limits()
    serve = commands.add_parser("serve", help="HTTP and WebSocket service with a browser client (extra 'serve')",
                                parents=[verbose])
    serve.add_argument("--host", default=config.host, help=f"address to bind (default {config.host}; "
                                                           f"any other needs a token)")
    serve.add_argument("--port", type=int, default=config.port,
                       help="TCP port (0 = any free port) (default %(default)s)")
    serve.add_argument("--behaviour", action="store_true", help="also read action units, head pose, eye openness, "
                       "blinks and attention for every face (images, videos and streams; costs a landmarker call)")
    serve.add_argument("--workers", type=int, default=config.workers,
                       help="inference threads, one model each (default %(default)s: one per CPU core, at most 2)")
    serve.add_argument("--token-file", metavar="FILE", help="require 'Authorization: Bearer TOKEN', TOKEN being this "
                                                            "file's first line (default: $EMOLENS_TOKEN)")
    serve.add_argument("--token", help="the token itself: every local user sees it in 'ps'; prefer --token-file "
                                       "or $EMOLENS_TOKEN")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also accept requests naming this host (a DNS name the service is reached by); repeatable")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                       help="let pages of this web origin (https://app.example) call the service; repeatable")
    serve.add_argument("--study", action="append", default=[], metavar="DIR",
                       help="serve this study to remote participants (/panel/NAME, NAME the folder's name) and on "
                            "the operator's dashboard (/studies/NAME); repeatable")
    serve.add_argument("--jobs-dir", help="folder for the per-job folders (default: a new temporary folder)")
    serve.add_argument("--job-ttl", type=float, default=limits.job_ttl_s, metavar="SECONDS",
                       help="delete a finished job's folder this long after it ends (default %(default)s)")
    serve.add_argument("--queue", type=int, default=limits.queue,
                       help="image requests admitted at once before 503 (default %(default)s)")
    serve.add_argument("--max-image-mb", type=float, default=limits.image_bytes / 2**20,
                       help="largest image (MiB) (default %(default)s)")
    serve.add_argument("--max-video-mb", type=float, default=limits.video_bytes / 2**20,
                       help="largest video (MiB) (default %(default)s)")
    serve.add_argument("--max-megapixels", type=float, default=limits.pixels / 1e6,
                       help="most pixels per image or video frame, in millions (default %(default)s)")
    serve.add_argument("--max-video-s", type=float, default=limits.video_s,
                       help="longest video, in seconds (default %(default)s)")
    serve.add_argument("--max-disk-mb", type=float, default=limits.disk_bytes / 2**20,
                       help="most the job folders may hold, uploads included (MiB) (default %(default)s)")
    serve.add_argument("--read-timeout", type=float, default=limits.read_timeout_s, metavar="SECONDS",
                       help="drop an upload that pauses this long, or then averages under "
                            f"{limits.upload_rate // 1024} KiB/s (default %(default)s)")
    serve.add_argument("--stream-idle", type=float, default=limits.stream_idle_s, metavar="SECONDS",
                       help="close a stream that sends no frame for this long (default %(default)s)")
    _add_analyzer_options(serve)
    serve.set_defaults(handler=_serve)


def _add_study_parser(commands, verbose: argparse.ArgumentParser) -> None:
    study = commands.add_parser("study", help="ad tests: stimuli shown to viewers, one report in stimulus time",
                                parents=[verbose])
    actions = study.add_subparsers(title="study commands", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="make a study folder: the stimuli in order, a baseline", parents=[verbose])
    new.add_argument("folder", metavar="DIR", help="the study folder to make (new or empty)")
    new.add_argument("--stimulus", action="append", required=True, metavar="FILE",
                     help="a video, or an image shown for a time as IMAGE=SECONDS; repeat, in order")
    new.add_argument("--baseline", type=float, default=0.0, metavar="SECONDS",
                     help="seconds of neutral screen before the first stimulus (default 0: none)")
    new.add_argument("--shuffle", action="store_true", help="each session sees the stimuli in its own "
                     "random order (drawn from a seed recorded in the study file)")
    new.add_argument("--name", help="the study's title (default: the folder's name)")
    new.set_defaults(handler=_study_new)

    add = actions.add_parser("add", help="analyse a recording (or import a timeline CSV) as a viewer's session",
                             parents=[verbose])
    add.add_argument("folder", metavar="DIR")
    add.add_argument("recording", metavar="RECORDING", help="the viewer's video, or a timeline CSV")
    add.add_argument("--participant", required=True, help="the viewer's ID, e.g. P07")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--stimulus-at", type=float, metavar="SECONDS",
                      help="when the first stimulus started in the recording")
    when.add_argument("--stimulus-at-marker", metavar="TEXT",
                      help="the first stimulus started at this marker (in the timeline, or from --markers)")
    when.add_argument("--sync", choices=["audio"], help="find when the first stimulus started by matching its "
                      "sound in the recording's (extra 'study'); refused when unsure")
    add.add_argument("--order", help="the stimuli as this session saw them, comma-separated (default: the "
                     "study's order, or its shuffled order for this session)")
    add.add_argument("--markers", metavar="EVENTS.csv", help="a time,label file merged while analysing")
    add.add_argument("--camera", default="", help="the camera, for the session's record")
    add.add_argument("--notes", default="", help="notes, for the session's record")
    add.add_argument("--date", help="when the session was recorded, ISO 8601 (2024-05-31 or "
                     "2024-05-31T14:05:00+02:00; default: the recording's file time)")
    add.add_argument("--overwrite", action="store_true", help="replace this participant's session")
    add.add_argument("--behaviour", action="store_true", help="also read head pose and attention (the quality "
                     "table's head turn, the attention curve)")
    _add_analyzer_options(add)
    add.set_defaults(handler=_study_add)

    report = actions.add_parser("report", help="the study's page and tables into DIR/report", parents=[verbose])
    report.add_argument("folder", metavar="DIR")
    report.add_argument("--per-viewer", action="store_true", help="add one section per viewer")
    report.add_argument("--overwrite", action="store_true", help="replace an earlier report's files")
    report.set_defaults(handler=_study_report)

    invite = actions.add_parser("invite", help="links for remote participants, one code each (emolens serve --study)",
                                parents=[verbose])
    invite.add_argument("folder", metavar="DIR")
    invite.add_argument("--count", type=int, default=1,
                        help="how many participants to invite, at most 10000 (default %(default)s)")
    invite.add_argument("--url", default="http://127.0.0.1:8000",
                        help="the http:// or https:// address participants reach emolens serve at "
                        "(default %(default)s)")
    invite.set_defaults(handler=_study_invite)

    info = actions.add_parser("info", help="the stimuli, the sessions, what each saw, data quality",
                              parents=[verbose])
    info.add_argument("folder", metavar="DIR")
    info.set_defaults(handler=_study_info)


def _add_batch_parser(commands, verbose: argparse.ArgumentParser) -> None:
    batch = commands.add_parser("batch", help="many recordings -> one Parquet dataset, resumable (local or Ray)",
                                parents=[verbose])
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
    batch.add_argument("--behaviour", action="store_true",
                       help="add action units, head pose, eye openness, blinks, attention and expressiveness")
    batch.add_argument("--csv", action="store_true", help="also write DIR/csv/<input id>.csv")
    batch.add_argument("--retry-failed", action="store_true", help="run the inputs that failed before again")
    _add_analyzer_options(batch)
    batch.set_defaults(handler=_batch)


def _add_analyzer_options(parser: argparse.ArgumentParser, use_defaults: bool = True) -> None:
    """Model and detection options; with ``use_defaults=False`` an option not given stays None."""
    defaults = AnalyzerOptions()

    def default(value):
        return value if use_defaults else None

    group = parser.add_argument_group("model and detection")
    group.add_argument("--model", default=default(defaults.model),
                       help="fast: the shipped default; accurate: the shipped ensemble, more accurate for about three "
                       "times the classifier's time per face; or a model card (.json) or its .onnx")
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default=default(defaults.device),
                       help="auto: CUDA when it loads, else CPU (default)")
    group.add_argument("--detector", choices=("short", "full"), default=default(defaults.detector),
                       help="short: near faces, fastest (default); full: small, distant faces too")
    group.add_argument("--detect", choices=DETECT_MODES, default=default(defaults.detect),
                       help="tracked: the full search every few frames, the faces it found followed in between "
                       "(default); full: the full search on every frame")
    group.add_argument("--tiles", type=int, default=defaults.tiles,
                       help="also detect on NxN overlapping tiles (rooms of viewers)")
    group.add_argument("--min-confidence", type=float, default=default(defaults.min_confidence),
                       help="the detector score, 0..1, a face must reach (default "
                       f"{defaults.min_confidence:g})")
    group.add_argument("--max-faces", type=int, default=default(defaults.max_faces),
                       help="at most N faces per frame (0 = all)")
    group.add_argument("--smoothing", dest="tau_s", type=float, default=default(defaults.tau_s), metavar="SECONDS",
                       help="score smoothing time constant (0 = raw)")


def analyzer_options(args: argparse.Namespace) -> AnalyzerOptions:
    """The ``AnalyzerOptions`` a parsed command line asks for.

    Raises:
        OptionError: an option out of its range (``main`` names its flag).
    """
    return AnalyzerOptions(model=args.model, device=args.device, detector=args.detector, tiles=args.tiles,
                           min_confidence=args.min_confidence, max_faces=args.max_faces, tau_s=args.tau_s,
                           squares=_SQUARES[getattr(args, "squares", "auto")],
                           second_look=getattr(args, "second_look", "on") == "on", detect=args.detect)


def _analyze(args: argparse.Namespace) -> int:
    from emolens.analyze import analyze_inputs

    options = replace(analyzer_options(args), behaviour=args.behaviour, behaviour_hz=args.behaviour_hz,
                      behaviour_budget_hz=args.behaviour_budget)
    with _Progress("frame") as progress:
        summary = analyze_inputs(args.inputs, Path(args.output), options, every=args.every,
                                 keypoints=args.keypoints, log=progress.write, progress=progress,
                                 landmarks=args.landmarks, video=Path(args.video) if args.video else None,
                                 markers=Path(args.markers) if args.markers else None,
                                 overwrite=args.overwrite)
    _log(summary.format())
    return EXIT_INCOMPLETE if summary.incomplete else 0


def _batch(args: argparse.Namespace) -> int:
    try:
        from emolens.batch import BatchSettings, run_batch
    except ImportError as error:
        raise EmolensError(f"emolens batch needs {error.name}: pip install 'emolens[batch]'") from None

    settings = BatchSettings(replace(analyzer_options(args), behaviour=args.behaviour), every=args.every,
                             keypoints=args.keypoints, write_csv=args.csv)
    summary = run_batch(args.inputs, args.out, settings, engine=args.engine, workers=args.workers,
                        address=args.address, worker_gpus=args.worker_gpus, retry_failed=args.retry_failed,
                        log=_log)
    _log(summary.format())
    if summary.failed:
        raise EmolensError(f"{len(summary.failed)} of {summary.inputs} input(s) failed (listed above and in the "
                           f"manifest); fix them and rerun with --retry-failed")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from emolens.evaluation.evaluate import evaluate_folder, format_report
    from emolens.evaluation.labels import parse_label_map

    label_map = parse_label_map(args.map_label)
    with _Progress("image", enabled=not args.json) as progress:
        report = evaluate_folder(args.folder, mode=args.mode, options=analyzer_options(args), progress=progress,
                                 label_map=label_map, predictions=Path(args.predictions) if args.predictions else None,
                                 fer2013_labels=Path(args.fer2013_labels) if args.fer2013_labels else None,
                                 overwrite=args.overwrite)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def bench_results_path(what: str, out: str | None, quick: bool, model: str = "fast") -> Path:
    """Where ``emolens bench WHAT`` writes: ``--out``, else ``benchmarks/WHAT.md`` (the committed
    figures; ``WHAT_accurate.md`` with ``--model accurate``), except for ``--quick``, whose smoke figures go to a
    temporary folder instead."""
    name = what if model == "fast" else f"{what}-{model}"
    if out:
        return Path(out)
    if quick:
        return Path(tempfile.gettempdir()) / "emolens-bench" / f"{name}-quick.md"
    return Path("benchmarks") / f"{name.replace('-', '_')}.md"


def _bench(args: argparse.Namespace) -> int:
    if args.model != "fast" and args.what != "pipeline":
        raise EmolensError(f"--model {args.model} is for emolens bench pipeline; {args.what} runs the default model")
    out = bench_results_path(args.what, args.out, args.quick, args.model)
    scratch = args.quick and not args.out  # the smoke run's own file in the temporary folder: replaced each time
    if scratch:
        _log(f"emolens: a quick smoke run; its figures go to {out} (benchmarks/ is left as it is)")
    from emolens.bench.registry import BenchRun, run_bench
    from emolens.bench.results import check_results_path

    replace = args.overwrite or scratch
    check_results_path(out, replace)
    # The command that reproduces this run, for the results file: this one, as typed (--overwrite aside: it changes
    # no figure).
    command = " ".join(["emolens bench", *([args.what] if args.what != "pipeline" else []),
                        *(["--quick"] if args.quick else []), *(["--out", args.out] if args.out else []),
                        *(["--model", args.model] if args.model != "fast" else [])])
    return run_bench(args.what, BenchRun(out, quick=args.quick, minutes=args.minutes, log=_log, command=command,
                                         model=args.model, overwrite=replace))


def _report(args: argparse.Namespace) -> int:
    from emolens.report import build_report

    result = build_report([Path(p) for p in args.sessions], Path(args.output), align_marker=args.align,
                          overwrite=args.overwrite)
    for warning in result.warnings:
        _log(f"warning: {warning}")
    _log(f"report: {result.html}")
    return 0


def _study_new(args: argparse.Namespace) -> int:
    from emolens.study.file import create_study

    study = create_study(Path(args.folder), args.stimulus, baseline_s=args.baseline, shuffle=args.shuffle,
                         name=args.name)
    _log(f"study {study.name}: {', '.join(study.names)} in {args.folder}; add sessions with emolens study add")
    return 0


def _study_add(args: argparse.Namespace) -> int:
    from emolens.study.sessions import add_session

    options = replace(analyzer_options(args), behaviour=args.behaviour)
    with _Progress("frame") as progress:
        info, warnings = add_session(Path(args.folder), args.recording, args.participant, stimulus_at=args.stimulus_at,
                                     stimulus_at_marker=args.stimulus_at_marker, sync=args.sync,
                                     order=args.order.split(",") if args.order else None,
                                     markers=Path(args.markers) if args.markers else None, options=options,
                                     camera=args.camera, notes=args.notes, date=args.date, overwrite=args.overwrite,
                                     log=progress.write, progress=progress)
    for warning in warnings:
        _log(f"warning: {warning}")
    _log(f"session {info.participant} (#{info.number}): {' -> '.join(info.order)}, first at "
         f"{info.stimulus_at_s:g} s of {args.recording}")
    return 0


def _study_report(args: argparse.Namespace) -> int:
    from emolens.study.report import build_study_report

    result = build_study_report(Path(args.folder), overwrite=args.overwrite, per_viewer=args.per_viewer)
    for warning in result.warnings:
        _log(f"warning: {warning}")
    _log(f"report: {result.html}")
    return 0


def _study_invite(args: argparse.Namespace) -> int:
    """One line per new participant: their ID and their link (the code is shown only here)."""
    from emolens.study.invites import create_invites, server_address

    folder, address = Path(args.folder), server_address(args.url)
    for participant, code in create_invites(folder, args.count):
        print(f"{participant}\t{address}/panel/{folder.resolve().name}#code={code}")
    return 0


def _study_info(args: argparse.Namespace) -> int:
    from emolens.study.info import describe_study

    print(describe_study(Path(args.folder)))
    return 0


def _serve_token(args: argparse.Namespace) -> str | None:
    """The token from ``--token-file``, ``--token`` (with a warning: ``ps`` shows it) or ``$EMOLENS_TOKEN``."""
    if args.token_file and args.token:
        raise EmolensError("give the token with --token-file or --token, not both")
    if args.token_file:
        try:
            lines = Path(args.token_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise EmolensError(f"cannot read the token file {args.token_file}: {error}") from None
        if not lines or not lines[0].strip():
            raise EmolensError(f"the token file {args.token_file} is empty")
        return lines[0].strip()
    if args.token:
        _log("emolens: warning: --token shows the token to every user of this machine (in 'ps'); "
             "use --token-file or the EMOLENS_TOKEN environment variable")
        return args.token
    return os.environ.get("EMOLENS_TOKEN") or None


def _serve_limit(args: argparse.Namespace, dest: str, unit: float = 1.0) -> float:
    """A limit flag's value in ``unit``s (MiB in bytes, say), refused, named as typed, unless positive and finite."""
    typed = getattr(args, dest)
    if not 0 < typed < float("inf"):
        raise SettingError(f"{{{dest}}} must be a positive number, got {typed:g}")
    return typed * unit


def _serve(args: argparse.Namespace) -> int:
    try:
        from emolens.serve import Limits, ServeConfig, run_server
    except ImportError as error:
        raise EmolensError(f"emolens serve needs the 'serve' extra ({error.name} is missing): "
                           f"pip install 'emolens[serve]'") from None
    limits = Limits(image_bytes=int(_serve_limit(args, "max_image_mb", 2**20)),
                    video_bytes=int(_serve_limit(args, "max_video_mb", 2**20)),
                    pixels=int(_serve_limit(args, "max_megapixels", 1e6)), video_s=_serve_limit(args, "max_video_s"),
                    queue=int(_serve_limit(args, "queue")), job_ttl_s=_serve_limit(args, "job_ttl"),
                    disk_bytes=int(_serve_limit(args, "max_disk_mb", 2**20)),
                    read_timeout_s=_serve_limit(args, "read_timeout"), stream_idle_s=_serve_limit(args, "stream_idle"))
    config = ServeConfig(host=args.host, port=args.port, workers=args.workers, token=_serve_token(args),
                         analyzer=replace(analyzer_options(args), behaviour=args.behaviour), limits=limits,
                         jobs_dir=Path(args.jobs_dir) if args.jobs_dir else None,
                         allowed_hosts=tuple(args.allow_host), allowed_origins=tuple(args.allow_origin),
                         studies=tuple(Path(folder) for folder in args.study))
    run_server(config)
    return 0


def _gui(args: argparse.Namespace) -> int:
    from emolens.gui import run_gui

    return run_gui(args)


def _training(command: str, argv: list[str]) -> int:
    from importlib import import_module

    try:
        with captured_native_stderr():  # TensorFlow's start-up logs
            command_main = import_module(TRAINING_COMMANDS[command]).main
    except ImportError as error:
        print(f"emolens: error: training needs Keras and TensorFlow ({error.name} is missing); "
              f"install the extra: pip install 'emolens[train]'", file=sys.stderr)
        return 1
    try:
        return command_main(argv)
    except (EmolensError, ValueError) as error:
        print(f"emolens: error: {error}", file=sys.stderr)
        return 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _LineState:
    """A stream as tqdm writes to it, remembering whether its last write left the cursor mid-line."""

    def __init__(self, stream):
        self._stream = stream
        self.mid_line = False

    def write(self, text: str) -> int:
        if text:
            self.mid_line = not text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name: str):  # isatty, fileno, flush, encoding: the stream's own
        return getattr(self._stream, name)


class _Progress:
    """tqdm progress bars on stderr (none when stderr is not a terminal), one per input.

    Called as ``progress(done, total)``; a ``done`` that goes back means the next input. Use it
    as a context manager: on the way out, Ctrl+C included, the bar is closed and the line ended,
    so what is printed next starts on a line of its own. ``write`` prints a line above the bar.
    """

    def __init__(self, unit: str, enabled: bool = True):
        self.unit = unit
        self.enabled = enabled
        self._bar: tqdm | None = None
        self._done = 0
        self._stderr = _LineState(sys.stderr)

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None or done < self._done:
            self.close()
            try:  # disable=None: no bar unless stderr is a terminal (a log file gets no carriage returns)
                self._bar = tqdm(total=total or None, unit=self.unit, file=self._stderr, disable=None,
                                 dynamic_ncols=True)
            except KeyboardInterrupt:  # the new bar may be drawn already but is not ours to close
                self._end_line()
                raise
        self._bar.update(done - self._done)
        self._done = done

    def write(self, message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        bar, self._bar, self._done = self._bar, None, 0
        if bar is None:
            return
        try:
            bar.close()
        except KeyboardInterrupt:  # tqdm marks a bar closed before it ends its line
            self._end_line()
            raise

    def _end_line(self) -> None:
        """End a bar's line that a Ctrl+C left open, and only then: no empty line between bars and the message."""
        if self._stderr.mid_line:
            self._stderr.write("\n")

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
