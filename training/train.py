"""Train the emotion CNN on FER-style data, evaluate it, and export ONNX plus its model card.

The story, top to bottom:

1. **Load** the data set (CSV, folders or FER+) into uint8 arrays, cached after the first run.
   FER+ faces carry the crowd's vote distribution; ``--targets`` says how to learn from it
   (the FER+ paper's modes): ``majority`` (one-hot of the majority label), ``crossentropy``
   (the vote distribution itself as the target) or ``probability`` (a label drawn from the
   distribution afresh each epoch).
2. **Weigh** the classes: FER2013 has 16x more "happy" than "disgust" faces, so each
   sample is weighted by ``(n_max / n_class) ** class_weight_power``.
3. **See what the app sees**: each training face is rendered into a camera-like frame and cut
   out again by the app's own detector and crop code (``scene_views.py``); each epoch shows
   that view instead of the clean crop with probability ``scene_views``.
4. **Build** the CNN (``model.py``), optionally starting from an exported model's weights
   (``--init-from``, ``warm_start.py``), or a pretrained face network with a new head
   (``--backbone faceres``, ``backbones.py``), and wrap it with the augmentation layers, which run
   only in training, so the network we export never sees them.
5. **Fit** with AdamW, label smoothing and a warm-up + cosine learning-rate schedule
   that lives in the optimizer, so a checkpoint (written every epoch) resumes exactly;
   optionally with mixup (``--mixup``), a moving average of the weights (``--ema``),
   which is then what is validated and exported, and a teacher's scores blended into the
   targets (``--teacher``, ``distill.py``).
   Early stopping watches validation accuracy and keeps the best weights.
6. **Evaluate** on val (temperature fitted there: against the crowd's votes when there are
   any) and on test (reported once).
7. **Export** ONNX through tf2onnx with the temperature (and flip-TTA, if it pays on val)
   folded in, check parity against Keras on real images, quantize to int8 when that keeps
   val accuracy within half a point (several times faster on CPU), time it per face (with
   ``--max-ms-per-face``, a slower model stops here, before test is read), and write the model card.

Runs unchanged on TensorFlow (default) or JAX (``KERAS_BACKEND=jax``); only the
export step needs TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np

from emolens.card import ModelCard
from emolens.errors import EmolensError
from emolens.evaluation.labels import DataError
from emolens.training.backbones import FACERES, build_faceres_network
from emolens.training.batches import TrainingBatches
from emolens.training.data import Dataset, load_dataset
from emolens.training.distill import blend_with_teacher
from emolens.training.evaluate import (
    fit_temperature,
    metrics_report,
    predict_logits,
    save_confusion_png,
    save_curves_png,
    tta_probs,
)
from emolens.training.export import (
    add_metrics,
    calibration_set,
    check_parity,
    export_onnx,
    quantize_int8,
    time_per_face,
    write_card,
)
from emolens.training.model import RandomErasing, WarmupCosine, build_augmenter, build_model
from emolens.training.warm_start import load_onnx_weights

CHECKPOINT = "last.keras"
BEST_WEIGHTS = "best.weights.h5"
STATE = "state.json"
HISTORY = "history.csv"
STATE_FIELDS = frozenset({"epoch", "train_seconds"})  # what every state.json holds
CONFIG_FIELDS = frozenset({"data", "epochs", "widths", "convs"})  # what a run's config.json holds and --resume reads


@dataclass
class TrainConfig:
    """Everything that decides the trained model; the card's ``training.command`` (these defaults plus
    the flags it names) reproduces the shipped one."""

    data: str
    out: str = "runs/emotion"
    backbone: str = "cnn"  # cnn: the VGG-style CNN of model.py; faceres: the pretrained MobileNet of backbones.py
    image_size: int = 48
    channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128, 256)
    convs: tuple[int, ...] = (1, 2, 2, 2)
    dropout: float = 0.25
    epochs: int = 260
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup_epochs: int = 2
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    class_weight_power: float = 0.5
    targets: str = "auto"  # FER+ votes: majority | crossentropy | probability; auto: crossentropy on FER+
    drop_single_votes: bool = True  # the FER+ paper's outlier rule
    scene_views: float = 0.0  # probability of showing a face as the app's pipeline crops it
    mixup: float = 0.0  # Beta(a, a) of mixup's blend (0: off)
    ema: float | None = None  # momentum per step of an average of the weights, validated and shipped (None: off)
    init_from: str | None = None  # an exported .onnx to start from (same architecture, or a narrower one)
    teacher: str | None = None  # an exported .onnx whose scores the targets blend in (distillation)
    teacher_weight: float = 0.5  # the teacher's share of each target
    report_fer2013: str | None = None  # a FER2013 test folder: report its original labels next to FER+
    patience: int | None = None  # None: run the whole schedule; its low-rate tail gains the most
    flip_tta: str = "auto"
    quantize: str = "auto"
    calibration: str = "minmax"  # how int8 ranges are set from training faces: minmax | percentile | entropy
    max_ms_per_face: float | None = None  # refuse an export slower than this (batch 1, one CPU thread) before test
    geometry_samples: int = 1000
    seed: int = 1337
    classes: list[str] | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    limit_per_class: int | None = None
    cache_dir: str | None = "~/.cache/emolens/datasets"


def class_sample_weights(targets: np.ndarray, num_classes: int, power: float) -> np.ndarray:
    """Per-sample weights ``(n_max / n_class) ** power``, normalised to a mean of 1."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    per_class = (counts.max() / np.maximum(counts, 1)) ** power
    weights = per_class[targets]
    return (weights / weights.mean()).astype(np.float32)


def limit_per_class(dataset: Dataset, limit: int, seed: int) -> None:
    """Keep at most ``limit`` random samples of each class in every split (for quick runs and tests)."""
    rng = np.random.default_rng(seed)
    for split, (x, y) in dataset.splits.items():
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:limit] for c in np.unique(y)]))
        dataset.splits[split] = (x[keep], y[keep])
        if split in dataset.distributions:
            dataset.distributions[split] = dataset.distributions[split][keep]


TARGET_MODES = ("majority", "crossentropy", "probability")
FACERES_SIZE = 112  # the faceres backbone's input side by default: FER's 48 px faces, upscaled


def target_mode(config: TrainConfig, dataset: Dataset) -> str:
    """The ``--targets`` mode in force: ``auto`` learns the vote distribution when there is one."""
    if config.targets == "auto":
        return "crossentropy" if dataset.distributions else "majority"
    if config.targets != "majority" and "train" not in dataset.distributions:
        raise DataError(f"--targets {config.targets} needs crowd votes (FER+ data); {dataset.source} has one label "
                        f"per face: use --targets majority")
    return config.targets


def fit(config: TrainConfig, dataset: Dataset, resume: bool,
        views: tuple[np.ndarray | None, np.ndarray | None] | None = None,
        extra_callbacks: tuple[keras.callbacks.Callback, ...] = (),
        backbone_weights: dict[str, np.ndarray] | None = None) -> tuple[object, dict]:
    """Fit (or resume fitting) and return the best model and the training summary.

    ``views`` are the training faces' pipeline views ``(views, found)``, computed (and cached) when not given;
    a machine without MediaPipe passes those computed elsewhere (``sweep.py``), as it passes its own callbacks,
    and, without the registry, the ``--backbone``'s weights (``faceres_weights()``'s arrays; else read from the cache).
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    num_classes = len(dataset.labels)
    x_train, y_train = dataset.splits["train"]
    x_val, y_val = dataset.splits["val"]
    sample_weight = class_sample_weights(y_train, num_classes, config.class_weight_power)
    mode = target_mode(config, dataset)
    targets = (keras.utils.to_categorical(y_train, num_classes) if mode == "majority"
               else dataset.distributions["train"])
    y_val_1h = keras.utils.to_categorical(y_val, num_classes)

    state = _read_state(out) if resume else {"epoch": 0, "train_seconds": 0.0}
    keras.utils.set_random_seed(config.seed + state["epoch"])
    input_shape = (config.image_size, config.image_size, config.channels)
    steps = math.ceil(len(y_train) / config.batch_size)
    # Defined in steps, so a resumed run with another --epochs re-plans the decay from where it is.
    schedule = WarmupCosine(config.learning_rate, steps * min(config.warmup_epochs, config.epochs - 1),
                            steps * config.epochs)
    if resume and (out / CHECKPOINT).exists():
        trainer = keras.saving.load_model(out / CHECKPOINT, custom_objects={"RandomErasing": RandomErasing})
        trainer.optimizer.learning_rate = schedule
        network = trainer.get_layer("emolens_cnn")
    else:
        network = build_network(config, num_classes, x_train, backbone_weights)
        trainer = keras.Sequential([keras.Input(input_shape), build_augmenter(config.seed), network],
                                   name="trainer")
        trainer.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                             **({"use_ema": True, "ema_momentum": config.ema} if config.ema else {})),
            loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    _compile_whole_step_on_jax(trainer)
    print(f"emolens train: {len(y_train)} training and {len(y_val)} validation images, "
          f"{num_classes} classes, {network.count_params():,} parameters, keras backend {keras.backend.backend()}",
          flush=True)
    callbacks = [
        keras.callbacks.ModelCheckpoint(out / CHECKPOINT),  # before the swap: it keeps the raw weights to resume
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema else []),
        _BestWeights(network, out / BEST_WEIGHTS, out / STATE),
        keras.callbacks.CSVLogger(out / HISTORY, append=resume),
        _Throughput(len(y_train), config.epochs, out / STATE),
        *extra_callbacks,
    ]
    if config.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_accuracy", patience=config.patience, mode="max"))
    if state["epoch"] < config.epochs and not state.get("stopped_early"):
        # A run may be resumed elsewhere (fitted on a GPU, exported here): the card names every machine.
        _write_state(out / STATE, fitted_on=sorted(set(state.get("fitted_on", [])) | {_hardware()}))
        views, found = views if views is not None else pipeline_views(config, x_train)
        if config.teacher:
            targets = blend_with_teacher(targets, x_train, Path(config.teacher), dataset.labels, config.teacher_weight)
            print(f"emolens train: each target is {config.teacher_weight:g} {config.teacher}'s scores, the rest "
                  "the data's own", flush=True)
        batches = TrainingBatches(x_train, targets, sample_weight, config.batch_size, config.seed + state["epoch"],
                                  views=views, view_found=found, view_probability=config.scene_views,
                                  draw_labels=mode == "probability", mixup=config.mixup)
        trainer.fit(batches, validation_data=(x_val.astype("float32"), y_val_1h), epochs=config.epochs,
                    initial_epoch=state["epoch"], callbacks=callbacks,
                    verbose=1 if sys.stdout.isatty() else 2)  # a live bar on a terminal, a line per epoch in logs
    state = _read_state(out)
    network.load_weights(out / BEST_WEIGHTS)
    return network, state


def build_network(config: TrainConfig, num_classes: int, x_train: np.ndarray,
                  backbone_weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """The network to fit: the CNN (from scratch or ``--init-from``) or a pretrained ``--backbone`` with a new head."""
    input_shape = (config.image_size, config.image_size, config.channels)
    sample = x_train[np.random.default_rng(config.seed).permutation(len(x_train))[:2048]]
    if config.backbone == "faceres":
        # A few hundred faces give each batch-norm its statistics; MobileNet's 27 layers make each pass count.
        return build_faceres_network(num_classes, input_shape, sample[:256], config.dropout, backbone_weights)
    network = build_model(num_classes, input_shape, config.widths, config.convs, config.dropout)
    if config.init_from:
        try:
            load_onnx_weights(network, Path(config.init_from), sample, seed=config.seed)
        except ValueError as error:
            raise EmolensError(f"--init-from {config.init_from} does not fit --widths/--convs: {error}") from None
    return network


def load_data(config: TrainConfig) -> Dataset:
    """The data set a config names, limited per class if it says so."""
    dataset = load_dataset(config.data, config.image_size, config.channels, config.classes, config.label_map,
                           seed=config.seed, cache_dir=config.cache_dir, drop_single_votes=config.drop_single_votes)
    if config.limit_per_class:
        limit_per_class(dataset, config.limit_per_class, config.seed)
    return dataset


def write_config(config: TrainConfig) -> None:
    """The run's ``config.json``, which ``--resume`` continues from."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))


def pipeline_views(config: TrainConfig, x_train: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Pipeline views of the training faces, cropped with the crop geometry of the ``--init-from`` (else the
    shipped) model's card, at this run's input size (a backbone's 80 or 112 px, where that card says 48)."""
    if config.scene_views <= 0:
        return None, None
    from emolens.training.scene_views import scene_views  # MediaPipe: only when views are asked for

    started = time.perf_counter()
    card = replace(ModelCard.load(config.init_from), input_hw=x_train.shape[1:3], channels=x_train.shape[3])
    views, found = scene_views(x_train, card, config.seed, config.cache_dir)
    print(f"emolens train: pipeline views of {found.sum()} of {len(found)} training faces "
          f"(the detector missed the rest; they keep their crop) in {time.perf_counter() - started:.0f} s", flush=True)
    return views, found


def _compile_whole_step_on_jax(trainer: keras.Model) -> None:
    """On JAX, let XLA compile the training step, augmentation included.

    Keras flags its affine augmentation layers (translation, rotation, zoom) as unsafe for
    XLA, which is true of TensorFlow's kernel only; on JAX they are plain ``jax.numpy`` code.
    Left as they are, they switch the whole step to eager execution, about 100x slower on a GPU.
    """
    if keras.backend.backend() != "jax":
        return
    for layer in trainer.get_layer("augment").layers:
        layer.supports_jit = True
    trainer.jit_compile = True


def read_run_file(path: Path, fields: frozenset[str]) -> dict:
    """A run's ``config.json`` or ``state.json``: a JSON object with at least ``fields``.

    Raises:
        EmolensError: the file is not one the trainer wrote (damaged or someone else's); says what to do.
    """
    try:
        saved = json.loads(path.read_text())
    except OSError as error:
        raise EmolensError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:  # not JSON, or not UTF-8
        problem = f"is not JSON ({error})"
    else:
        if isinstance(saved, dict) and fields <= saved.keys():
            return saved
        problem = f"lacks {', '.join(sorted(fields - set(saved) if isinstance(saved, dict) else fields))}"
    raise EmolensError(f"{path} is not the {path.name} emolens train writes: it {problem}; restore it from a copy, "
                       "or start the run again in another --out")


def _read_state(out: Path) -> dict:
    path = out / STATE
    return read_run_file(path, STATE_FIELDS) if path.exists() else {"epoch": 0, "train_seconds": 0.0}


def _write_state(path: Path, **changes) -> None:
    state = _read_state(path.parent)
    state.update(changes)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)


class _BestWeights(keras.callbacks.Callback):
    """Save the network's weights whenever validation accuracy improves."""

    def __init__(self, network, weights_path: Path, state_path: Path):
        super().__init__()
        self.network, self.weights_path, self.state_path = network, weights_path, state_path
        self.best = _read_state(state_path.parent).get("best_val_accuracy", -1.0)

    def on_epoch_end(self, epoch, logs=None):
        accuracy = float(logs["val_accuracy"])
        if accuracy > self.best:
            self.best = accuracy
            self.network.save_weights(self.weights_path)
            _write_state(self.state_path, best_val_accuracy=accuracy, best_epoch=epoch + 1)


class _Throughput(keras.callbacks.Callback):
    """Print images/s and the ETA of the whole run after each epoch; record progress."""

    def __init__(self, num_images: int, epochs: int, state_path: Path):
        super().__init__()
        self.num_images, self.epochs, self.state_path = num_images, epochs, state_path

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        total = _read_state(self.state_path.parent)["train_seconds"] + seconds
        stopped = bool(self.model.stop_training)
        _write_state(self.state_path, epoch=epoch + 1, train_seconds=total, stopped_early=stopped)
        eta = seconds * (self.epochs - epoch - 1)
        print(f"epoch {epoch + 1}/{self.epochs}: {self.num_images / seconds:.0f} images/s, "
              f"val accuracy {logs['val_accuracy']:.4f}, ETA {eta / 60:.1f} min", flush=True)

    def on_train_end(self, logs=None):
        if self.model.stop_training:
            _write_state(self.state_path, stopped_early=True)


def finish(config: TrainConfig, dataset: Dataset, network, state: dict) -> Path:
    """Calibrate and choose flip-TTA on val, report test once, export ONNX + card. Returns the card."""
    out = Path(config.out)
    labels = dataset.labels
    x_val, y_val = dataset.splits["val"]
    votes_val = dataset.distributions.get("val")
    x_train = dataset.splits["train"][0]
    val_logits, val_flipped = predict_logits(network, x_val), predict_logits(network, x_val, flip=True)
    variants = {}
    for tta, flipped in (("plain", None), ("flip_tta", val_flipped)):
        temperature = fit_temperature(val_logits, y_val, flipped, votes_val)
        variants[tta] = {"temperature": temperature,
                         "uncalibrated": metrics_report(tta_probs(val_logits, flipped, 1.0), y_val, labels, votes_val),
                         "calibrated": metrics_report(tta_probs(val_logits, flipped, temperature), y_val, labels,
                                                      votes_val)}
    gain = variants["flip_tta"]["calibrated"]["accuracy"] - variants["plain"]["calibrated"]["accuracy"]
    flip_tta = config.flip_tta == "on" or (config.flip_tta == "auto" and gain >= 0.005)
    chosen = variants["flip_tta" if flip_tta else "plain"]
    temperature = chosen["temperature"]
    print(f"emolens train: val accuracy {chosen['calibrated']['accuracy']:.4f}, flip-TTA {'on' if flip_tta else 'off'} "
          f"(it changes val accuracy by {gain:+.4f}), temperature {temperature}", flush=True)

    from emolens.training.geometry import derive_crop_geometry  # MediaPipe: not needed to fit (e.g. on a GPU box)

    rng = np.random.default_rng(config.seed)
    sample = x_train[rng.permutation(len(x_train))[: config.geometry_samples]]
    geometry, geometry_stats = derive_crop_geometry(sample)
    float_path = export_onnx(network, out / "emotion_fp32.onnx", temperature, flip_tta)
    parity = check_parity(network, float_path, x_val[:256], temperature, flip_tta)
    chosen_path, quantization = _choose_precision(config, float_path, calibration_set(sample), x_val, y_val, labels)
    cost = _check_cost(config, chosen_path)
    # Only a model within the budget replaces the run's emotion.onnx, so a refused one leaves the last export whole.
    onnx_path = Path(shutil.copyfile(chosen_path, out / "emotion.onnx"))
    metrics = {"val": onnx_metrics(onnx_path, x_val, y_val, labels, votes_val)}
    if "test" in dataset.splits:
        metrics["test"] = onnx_metrics(onnx_path, *dataset.splits["test"], labels, dataset.distributions.get("test"))
    for split, report in metrics.items():
        save_confusion_png(report["confusion"], labels, out / f"confusion_{split}.png", f"{split}: confusion")
    save_curves_png(out / HISTORY, out / "curves.png")
    (out / "evaluation.json").write_text(json.dumps({"val_variants": variants, "parity_max_abs_diff": parity,
                                                      **metrics}, indent=2))
    card = write_card(
        out / "emotion.json", onnx_path, labels, network.input_shape[1:],
        {"temperature": temperature, "flip_tta": flip_tta}, quantization,
        crop={**asdict(geometry), "derivation": geometry_stats},
        metrics=metrics,
        data={"source": Path(config.data).name, "sizes": dataset.sizes(), "skipped_files": dataset.skipped,
              "train_class_counts": dict(zip(labels, np.bincount(dataset.splits["train"][1]).tolist()))},
        training={"command": _command(config), "config": asdict(config), "epochs_run": state["epoch"],
                  "best_epoch": state.get("best_epoch"),
                  "fit_wall_seconds": round(state["train_seconds"], 1),  # summed over resumed runs
                  "hardware": {"fit": state.get("fitted_on", []), "export": _hardware()},
                  "software": _software(), "parity_max_abs_diff": parity, "cost": cost,
                  **({"backbone": FACERES} if config.backbone == "faceres" else {})},
    )
    add_metrics(card, _pipeline_metrics(config, card))
    print(f"emolens train: wrote {onnx_path} and {card} (parity max |dp| {parity:.1e})")
    print(f"  evaluate: emolens evaluate DIR --crops --model {onnx_path}")
    print(f"  analyze:  emolens analyze VIDEO -o timeline.csv --model {onnx_path}")
    return card


def _pipeline_metrics(config: TrainConfig, card: Path) -> dict:
    """Figures measured by ``emolens evaluate`` with the exported model (FER+ data only).

    ``val_scenes``: FER+ val faces put into camera-like frames and run through the whole app
    pipeline. With ``--report-fer2013``: FER2013 test with its original labels, on its own
    (histogram-equalised) images and on the raw FER+ pixels of the same faces.
    """
    from emolens.evaluation.evaluate import evaluate_folder
    from emolens.options import AnalyzerOptions

    root, metrics = Path(config.data), {}
    options = AnalyzerOptions(model=str(card), device="cpu")
    if (root / "FER2013Valid" / "label.csv").is_file():
        metrics["val_scenes"] = evaluate_folder(root / "FER2013Valid", mode="scenes", options=options)
    if config.report_fer2013:
        metrics["fer2013_test"] = evaluate_folder(config.report_fer2013, mode="crops", options=options)
        if (root / "FER2013Test" / "label.csv").is_file():
            metrics["fer2013_test_raw_pixels"] = evaluate_folder(root / "FER2013Test", options=options,
                                                                 fer2013_labels=Path(config.report_fer2013))
    for report in metrics.values():
        report.pop("model", None)
        print(f"emolens train: {report['mode']} / {report['layout']}: accuracy {report['accuracy']:.4f}", flush=True)
    return metrics


def _check_cost(config: TrainConfig, onnx_path: Path) -> dict:
    """ms per face at batch 1 on one CPU thread, as ``emolens bench`` times the classifier; over
    ``--max-ms-per-face`` the export stops here, before test is read."""
    median, p95, cpu = time_per_face(onnx_path)
    # The shipped model in the same loop: how fast this machine is right now (it varies by day on a VM).
    shipped = time_per_face(ModelCard.load().model_path)[0]
    print(f"emolens train: {onnx_path.name} takes {median:.2f} ms per face (p95 {p95:.2f}, CPU {cpu:.2f}) "
          f"at batch 1 on one CPU thread; the shipped model {shipped:.2f} ms", flush=True)
    if config.max_ms_per_face is not None and median > config.max_ms_per_face:
        raise EmolensError(
            f"{onnx_path} takes {median:.2f} ms per face at batch 1 on one CPU thread, over --max-ms-per-face "
            f"{config.max_ms_per_face:g}: not exported and test not read (its val figures are above; on busy "
            "cores, export again on idle ones with --resume)")
    return {"ms_per_face_median": round(median, 3), "ms_per_face_p95": round(p95, 3), "cpu_ms_median": round(cpu, 3),
            "shipped_model_ms_per_face_median": round(shipped, 3),
            "measured": "batch 1, one CPU thread, 500 calls after 20 to warm up", "on": _hardware()}


def _choose_precision(config: TrainConfig, float_path: Path, calibration_faces: np.ndarray, x_val: np.ndarray,
                      y_val: np.ndarray, labels: tuple[str, ...]) -> tuple[Path, dict]:
    """The model to ship: int8 when that keeps val accuracy within 0.5 points (``auto``), else float."""
    float_accuracy = onnx_metrics(float_path, x_val, y_val, labels)["accuracy"]
    if config.quantize == "off":
        return float_path, {"dtype": "float32", "val_accuracy_float32": float_accuracy}
    int8_path = quantize_int8(float_path, float_path.with_name("emotion_int8.onnx"), calibration_faces,
                              config.calibration)
    int8_accuracy = onnx_metrics(int8_path, x_val, y_val, labels)["accuracy"]
    keep_int8 = config.quantize == "on" or float_accuracy - int8_accuracy <= 0.005
    print(f"emolens train: int8 val accuracy {int8_accuracy:.4f} vs float32 {float_accuracy:.4f}: "
          f"shipping {'int8' if keep_int8 else 'float32'}", flush=True)
    chosen = int8_path if keep_int8 else float_path
    return chosen, {"dtype": "int8" if keep_int8 else "float32",
                    "method": "onnxruntime static quantization of the convolutions (with their ReLU and max-pooling), "
                              "QDQ, per-channel int8 weights, uint8 activations; dense head and softmax in float32, "
                              f"{config.calibration} calibration on {len(calibration_faces)} training faces",
                    "val_accuracy_float32": float_accuracy, "val_accuracy_int8": int8_accuracy}


def onnx_metrics(onnx_path: Path, images: np.ndarray, targets: np.ndarray, labels: tuple[str, ...],
                 distribution: np.ndarray | None = None) -> dict:
    """Metrics of the exported model through ONNX Runtime, exactly as ``emolens evaluate --crops`` runs it."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probs = np.concatenate([session.run(None, {"pixels": images[i:i + 512]})[0] for i in range(0, len(images), 512)])
    return metrics_report(probs, targets, labels, distribution)


def _command(config: TrainConfig) -> str:
    """The ``emolens train`` command line that reproduces ``config``."""
    defaults = TrainConfig(data=config.data)
    changed = [f"--{name.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, (tuple, list)) else value}"
               for name, value in asdict(config).items()
               if name not in ("data", "out", "label_map", "cache_dir", "drop_single_votes")
               and value != getattr(defaults, name)]
    changed += [f"--map-label {name}={target}" for name, target in sorted(config.label_map.items())]
    if not config.drop_single_votes:
        changed.append("--keep-single-votes")
    return " ".join(["emolens train", config.data, "--out", config.out, *changed])


def _hardware() -> str:
    """This machine: processor, cores, Keras backend and the accelerators that backend sees."""
    backend = keras.backend.backend()
    accelerators: list[str] = []
    if backend == "jax":
        import jax

        accelerators = [device.device_kind for device in jax.devices() if device.platform != "cpu"]
    elif backend == "tensorflow":
        import tensorflow as tf

        accelerators = [device.name for device in tf.config.list_physical_devices("GPU")]
    processor = platform.processor() or platform.machine()
    on = f", on {', '.join(accelerators)}" if accelerators else ""
    return f"{processor}, {os.cpu_count()} cores, keras backend {backend}{on}"


def _software() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("keras", "tensorflow", "jax", "tf2onnx", "onnx", "onnxruntime-gpu", "onnxruntime", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return {"python": platform.python_version(), **found}
