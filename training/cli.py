"""``emolens train``: the command line and the resume plumbing of the trainer (``emolens.training.train`` is its story).

    emolens train DATA --out runs/mine [--epochs N ...]      a new run
    emolens train DATA --out runs/mine --resume [--epochs N] continue it where it stopped (a new --epochs re-plans)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import keras

from emolens.card import ModelCard
from emolens.errors import EmolensError
from emolens.evaluation.labels import FER2013_LABELS, check_label_map, parse_label_map
from emolens.record import file_in_the_way
from emolens.training import train
from emolens.training.backbones import BACKBONES
from emolens.training.export import CALIBRATIONS
from emolens.training.train import (
    BEST_WEIGHTS,
    CHECKPOINT,
    CONFIG_FIELDS,
    FACERES_SIZE,
    STATE,
    STATE_FIELDS,
    TARGET_MODES,
    TrainConfig,
    finish,
    fit,
    load_data,
    read_run_file,
    write_config,
)
from emolens.training.warm_start import trained_widths


def resumed_config(given: TrainConfig, saved: dict, epochs: int | None) -> tuple[TrainConfig, list[str]]:
    """The run's own config (``--epochs`` may re-plan it) and a warning per flag ``--resume`` ignores."""
    defaults = asdict(TrainConfig(data=given.data))
    # These decide only what the export reports and how it quantizes, not the fit: a resumed run takes them.
    export_settings = {name: getattr(given, name) for name in ("report_fer2013", "calibration", "max_ms_per_face")
                       if getattr(given, name) != defaults[name]}
    # The folder given is the run's, wherever it was fitted (a GPU machine's runs/NAME, say).
    config = TrainConfig(**{**saved, "out": given.out, "widths": tuple(saved["widths"]),
                            "convs": tuple(saved["convs"]), **({"epochs": epochs} if epochs is not None else {}),
                            **export_settings})
    warnings = []
    for name, value in asdict(given).items():
        if name in ("data", "out", "epochs") or value == defaults[name] or value == asdict(config)[name]:
            continue
        warnings.append(f"--resume continues the run in {given.out} with its own {name.replace('_', '-')} "
                        f"({asdict(config)[name]}); the {value} given is ignored (only --epochs, --report-fer2013, "
                        "--calibration and --max-ms-per-face can change)")
    return config, warnings


def _widths(args: argparse.Namespace, defaults: TrainConfig) -> tuple[int, ...]:
    """--widths as given; else the --init-from model's (a fine-tune keeps its model's width, whatever width the
    shipped model has), else the default."""
    if args.widths:
        return tuple(args.widths)
    return (args.init_from and trained_widths(ModelCard.load(args.init_from))) or defaults.widths


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    defaults = TrainConfig(data="")
    parser = argparse.ArgumentParser(prog="emolens train", description=train.__doc__.split("\n\n")[0])
    parser.add_argument("data", help="fer2013.csv, ROOT/<split>/<emotion>/* or ROOT/<emotion>/*")
    parser.add_argument("--out", default=defaults.out,
                        help=f"run folder: checkpoints, reports, ONNX and card (default {defaults.out}); a new run "
                             "needs a new or empty folder")
    parser.add_argument("--epochs", type=int,
                        help=f"length of the schedule (default {defaults.epochs}; with --resume: the run's own, "
                             f"and a new value re-plans the remaining decay)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--backbone", choices=BACKBONES, default=defaults.backbone,
                        help="cnn: the VGG-style CNN, trained from scratch; faceres: a MobileNet pretrained for face "
                             "identification (VGGFace2), fetched once from the npm package @vladmandic/human, "
                             "fine-tuned whole with a new head")
    parser.add_argument("--image-size", "--input-size", type=int,
                        help=f"side of the square input (default {defaults.image_size}; with --backbone faceres "
                             f"{FACERES_SIZE})")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=defaults.channels)
    parser.add_argument("--widths", type=int, nargs="+",
                        help="filters per stage (default: the --init-from model's, else "
                             f"{' '.join(map(str, defaults.widths))})")
    parser.add_argument("--convs", type=int, nargs="+", default=list(defaults.convs))
    parser.add_argument("--dropout", type=float, default=defaults.dropout, help="dropout before the logits")
    parser.add_argument("--label-smoothing", type=float, default=defaults.label_smoothing)
    parser.add_argument("--class-weight-power", type=float, default=defaults.class_weight_power,
                        help="weigh each class by (n_max / n_class) ** POWER (0: no class weights)")
    parser.add_argument("--targets", choices=("auto", *TARGET_MODES), default=defaults.targets,
                        help="FER+ votes: majority label, the vote distribution (crossentropy), or a label drawn "
                             "from it each epoch (probability); auto: crossentropy when votes exist")
    parser.add_argument("--keep-single-votes", action="store_true",
                        help="FER+: keep classes with a single vote (default: the paper's outlier rule drops them)")
    parser.add_argument("--scene-views", type=float, default=defaults.scene_views, metavar="P",
                        help="show a face as the app's pipeline crops it from a camera-like frame with probability P")
    parser.add_argument("--mixup", type=float, default=defaults.mixup, metavar="ALPHA",
                        help="blend pairs of faces and their targets by a Beta(ALPHA, ALPHA) weight (0: off)")
    parser.add_argument("--ema", type=float, default=defaults.ema, metavar="MOMENTUM",
                        help="validate and ship a moving average of the weights (momentum per step, e.g. 0.999)")
    parser.add_argument("--init-from", metavar="MODEL.onnx",
                        help="start from an exported model's weights (its card beside it): the same architecture, "
                             "or a narrower one with as many convolutions per stage, whose filters the wider "
                             "--widths copy")
    parser.add_argument("--teacher", metavar="MODEL.onnx",
                        help="distil an exported model (its card beside it): each training target blends in its "
                             "scores on the face")
    parser.add_argument("--teacher-weight", type=float, default=defaults.teacher_weight, metavar="W",
                        help=f"the teacher's share of each target, 0-1 (default {defaults.teacher_weight})")
    parser.add_argument("--report-fer2013", metavar="FER2013_TEST_DIR",
                        help="also report FER2013 test accuracy with its original labels (FER+ runs)")
    parser.add_argument("--patience", type=int, default=defaults.patience,
                        help="stop after N epochs without a val gain (default: run the whole schedule)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--classes", nargs="+", help="train on these emotions only")
    parser.add_argument("--map-label", action="append", default=[], metavar="NAME=EMOTION",
                        help="map a data set label to an emotion, or to 'drop' (repeatable)")
    parser.add_argument("--limit-per-class", type=int, help="use at most N images per class (quick runs)")
    parser.add_argument("--cache-dir", default=defaults.cache_dir, help="decoded-data cache ('' disables)")
    parser.add_argument("--flip-tta", choices=("auto", "on", "off"), default=defaults.flip_tta,
                        help="average with the mirrored face; auto: only if it gains >= 0.5 points on val")
    parser.add_argument("--quantize", choices=("auto", "on", "off"), default=defaults.quantize,
                        help="ship int8 weights; auto: only if val accuracy drops by <= 0.5 points")
    parser.add_argument("--calibration", choices=tuple(CALIBRATIONS), default=defaults.calibration,
                        help="how the int8 ranges are set from 512 training faces (onnxruntime's calibrations)")
    parser.add_argument("--max-ms-per-face", type=float, metavar="MS",
                        help="stop before test is read if the exported model takes longer per face (batch 1, one "
                             "CPU thread, as emolens bench times it; e.g. 2)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    args = parser.parse_args(argv)
    _check_options(args)
    label_map = parse_label_map(args.map_label)
    check_label_map(label_map, FER2013_LABELS, whose="the emotions")
    widths = _widths(args, defaults)
    image_size = (args.image_size if args.image_size is not None
                  else FACERES_SIZE if args.backbone == "faceres" else defaults.image_size)
    _check_shape(args.backbone, image_size, widths, tuple(args.convs))
    config = TrainConfig(
        data=args.data, out=args.out, backbone=args.backbone, image_size=image_size, channels=args.channels,
        widths=widths, convs=tuple(args.convs), dropout=args.dropout,
        epochs=defaults.epochs if args.epochs is None else args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, label_smoothing=args.label_smoothing,
        class_weight_power=args.class_weight_power, targets=args.targets, drop_single_votes=not args.keep_single_votes,
        scene_views=args.scene_views, mixup=args.mixup, ema=args.ema, init_from=args.init_from,
        teacher=args.teacher, teacher_weight=args.teacher_weight,
        report_fer2013=args.report_fer2013,
        patience=args.patience, seed=args.seed, classes=args.classes,
        label_map=label_map, limit_per_class=args.limit_per_class, flip_tta=args.flip_tta,
        quantize=args.quantize, calibration=args.calibration, max_ms_per_face=args.max_ms_per_face,
        cache_dir=os.path.expanduser(args.cache_dir) if args.cache_dir else None,
    )
    return config, args


def _check_options(args: argparse.Namespace) -> None:
    """Refuse a number out of its range, before anything is read or written."""
    if args.epochs is not None and args.epochs < 1:
        raise EmolensError(f"--epochs must be 1 or more, got {args.epochs}")
    if args.batch_size < 1:
        raise EmolensError(f"--batch-size must be 1 or more, got {args.batch_size}")
    # "not (...)" so that NaN, which fails every comparison, is out of range too.
    if not args.learning_rate > 0 or math.isinf(args.learning_rate):
        raise EmolensError(f"--learning-rate must be a positive number such as 0.002, got {args.learning_rate}")
    if not args.mixup >= 0 or math.isinf(args.mixup):
        raise EmolensError(f"--mixup must be 0 (off) or a positive Beta parameter such as 0.2, got {args.mixup}")
    if args.max_ms_per_face is not None and not args.max_ms_per_face > 0:
        raise EmolensError(f"--max-ms-per-face must be a positive number of milliseconds, got {args.max_ms_per_face}")
    if not 0 < args.teacher_weight <= 1:
        raise EmolensError(f"--teacher-weight must be a share between 0 and 1 such as 0.5, got {args.teacher_weight}")
    if args.backbone == "faceres" and args.init_from:
        raise EmolensError("--init-from continues a --backbone cnn model; --backbone faceres starts from its "
                           "pretrained weights: give one or the other")
    if args.ema is not None and not 0 < args.ema < 1:
        raise EmolensError(f"--ema must be a momentum between 0 and 1 such as 0.999, got {args.ema}")
    for flag, value in (("--dropout", args.dropout), ("--label-smoothing", args.label_smoothing)):
        if not 0 <= value < 1:
            raise EmolensError(f"{flag} must be a share from 0 up to (not including) 1, got {value}")
    if not 0 <= args.scene_views <= 1:
        raise EmolensError(f"--scene-views must be a probability from 0 to 1, got {args.scene_views}")
    if not args.class_weight_power >= 0 or math.isinf(args.class_weight_power):
        raise EmolensError(f"--class-weight-power must be 0 (no class weights) or more, got {args.class_weight_power}")
    if args.limit_per_class is not None and args.limit_per_class < 1:
        raise EmolensError(f"--limit-per-class must be 1 or more, got {args.limit_per_class}")
    for flag, values in (("--widths", args.widths or ()), ("--convs", args.convs)):
        if any(value < 1 for value in values):
            raise EmolensError(f"{flag} must all be 1 or more, got {' '.join(map(str, values))}")


def _check_shape(backbone: str, image_size: int, widths: tuple[int, ...], convs: tuple[int, ...]) -> None:
    """Refuse an input the network cannot take: the cnn's stages each halve it (2x2 max-pooling) and need a pixel
    left after the last; faceres's MobileNet pads every stride ("same") and takes any size."""
    if backbone == "cnn" and len(widths) != len(convs):
        raise EmolensError(f"--widths and --convs must name as many stages, got {len(widths)} and {len(convs)}")
    smallest = 2 ** len(widths) if backbone == "cnn" else 1
    if image_size < smallest:
        raise EmolensError(f"--image-size (--input-size) must be {smallest} or more for --backbone {backbone}"
                           + (f" with {len(widths)} stages (each halves it)" if backbone == "cnn" else "")
                           + f", got {image_size}")


def _check_out(out: Path, resume: bool) -> None:
    """Refuse an ``--out`` that is a file, that holds files which are not a run (any of them could be replaced), or
    that holds a run and ``--resume`` is not given."""
    taken = file_in_the_way(out)
    if taken is not None:
        raise EmolensError(f"--out {out}: {taken} is a file, not a folder: give a folder for the run")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not _is_run(out):
        names = sorted(path.name for path in out.iterdir())
        raise EmolensError(f"--out {out} holds files that are not an emolens run ({', '.join(names[:3])}"
                           f"{', ...' if len(names) > 3 else ''}): give a new or empty folder")
    if not resume:
        raise EmolensError(f"{out} already holds a run: continue it with --resume, or start this one in another --out")


def _is_run(out: Path) -> bool:
    """Whether ``out`` holds what ``emolens train`` writes: a checkpoint, best weights or a model, or its
    ``config.json`` or ``state.json`` (written before the first epoch ends)."""
    if any((out / name).exists() for name in (CHECKPOINT, BEST_WEIGHTS, "emotion.onnx")):
        return True
    for name, fields in (("config.json", CONFIG_FIELDS), (STATE, STATE_FIELDS)):
        try:
            read_run_file(out / name, fields)
            return True
        except EmolensError:
            continue
    return False


def main(argv: list[str] | None = None) -> int:
    config, args = parse_args(argv)
    out = Path(config.out)
    _check_out(out, args.resume)
    if args.resume and (out / STATE).exists():
        read_run_file(out / STATE, STATE_FIELDS)  # a damaged one stops here, before the data loads
    if args.resume and (out / "config.json").exists():
        saved = read_run_file(out / "config.json", CONFIG_FIELDS)
        config, warnings = resumed_config(config, saved, args.epochs)
        for warning in warnings:
            print(f"emolens train: warning: {warning}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    dataset = load_data(config)
    write_config(config)  # only once the data has loaded, so a mistyped path leaves no run folder behind
    print(f"emolens train: loaded {dataset.sizes()} from {config.data} in {time.perf_counter() - started:.1f} s"
          + (f", skipped {dataset.skipped} unreadable file(s)" if dataset.skipped else ""), flush=True)
    network, state = fit(config, dataset, args.resume)
    print(f"emolens train: best val accuracy {state.get('best_val_accuracy', float('nan')):.4f} "
          f"at epoch {state.get('best_epoch')}", flush=True)
    if keras.backend.backend() != "tensorflow":
        # Keras on JAX (e.g. a GPU machine) fits; the ONNX export traces the model with TensorFlow.
        print(f"emolens train: fitted with the {keras.backend.backend()} backend; export with TensorFlow "
              f"(the train extra): KERAS_BACKEND=tensorflow emolens train {config.data} --out {config.out} --resume",
              flush=True)
        return 0
    finish(config, dataset, network, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
