"""One-off checks on FER+ val behind rows of the README's "what we tried" table (never touches test).

    python scripts/val_checks.py views                      # more test-time views for the shipped model
    python scripts/val_checks.py int8 runs/v2-mixup         # int8 calibrations of a run's float model
    python scripts/val_checks.py timing runs/v2-mixup/emotion.onnx models/emotion.onnx   # ms per face
    python scripts/val_checks.py widths 32,64,160,320 40,80,160,320   # ms per face of untrained int8 models
    python scripts/val_checks.py grown 40,80,160,320                  # the shipped model grown wider, untrained
    python scripts/val_checks.py teacher runs/v4-wide/emotion.onnx    # a teacher's scores against the votes
    python scripts/val_checks.py ensemble models/emotion.onnx runs/faceres80/emotion.onnx   # models averaged
    python scripts/val_checks.py offsets                    # per-class score offsets, fitted on half of val
    python scripts/val_checks.py graphs                     # the shipped weights in other export graphs

Run from the checkout with ``../shared`` beside it and the ``train`` extra installed.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import cv2
import numpy as np

FERPLUS = "../shared/datasets/ferplus"


def ferplus():
    """FER+ as ``emolens train`` reads it (the same cache); only its train and val splits are used here."""
    from emolens.training.data import load_dataset

    return load_dataset(FERPLUS, 48, 1, cache_dir=str(Path("~/.cache/emolens/datasets").expanduser()))


def zoomed(face: np.ndarray, scale: float) -> np.ndarray:
    """The face zoomed in (scale < 1: a centre crop) or out (scale > 1: padded by edge replication)."""
    side = face.shape[0]
    if scale < 1:
        crop = int(round(side * scale))
        start = (side - crop) // 2
        return cv2.resize(face[start:start + crop, start:start + crop], (side, side), interpolation=cv2.INTER_LINEAR)
    pad = (int(round(side * scale)) - side) // 2
    padded = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.resize(padded, (side, side), interpolation=cv2.INTER_AREA)


def shifted(face: np.ndarray, dx: int, dy: int) -> np.ndarray:
    move = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(face, move, face.shape[::-1], borderMode=cv2.BORDER_REPLICATE)


def views() -> None:
    """v2's two views (face, mirror) against four: each extra view with its mirror added."""
    from emolens.card import ModelCard
    from emolens.training.evaluate import softmax
    from emolens.training.warm_start import network_from_card, trained_widths

    dataset = ferplus()
    (x_val, y_val), x_train = dataset.splits["val"], dataset.splits["train"][0]
    card = ModelCard.load()
    network = network_from_card(card, trained_widths(card),
                              x_train[np.random.default_rng(0).permutation(len(x_train))[:2048]])
    transforms = {"face": lambda face: face, "zoom in 10%": lambda face: zoomed(face, 0.9),
                  "zoom out 12%": lambda face: zoomed(face, 1.12), "2 px right": lambda face: shifted(face, 2, 0),
                  "2 px left": lambda face: shifted(face, -2, 0), "2 px up": lambda face: shifted(face, 0, -2)}
    temperature = card.info["output"]["temperature"]
    probs = {}
    for name, transform in transforms.items():
        faces = np.stack([transform(face[..., 0]) for face in x_val])[..., None]
        for mirrored in (False, True):
            pixels = (faces[:, :, ::-1] if mirrored else faces).astype("float32")
            probs[name, mirrored] = softmax(np.asarray(network.predict(pixels, batch_size=512, verbose=0)), temperature)

    def accuracy(names: list[str]) -> float:
        return float((sum(probs[key] for key in itertools.product(names, (False, True))).argmax(1) == y_val).mean())

    print(f"face + mirror: {accuracy(['face']):.4f}")
    for name in list(transforms)[1:]:
        print(f"face + mirror + {name} + its mirror: {accuracy(['face', name]):.4f}")


def int8(run: Path) -> None:
    """Val accuracy of the run's float model and of int8 copies calibrated three ways."""
    from emolens.training.export import quantize_int8
    from emolens.training.train import onnx_metrics

    dataset = ferplus()
    (x_val, y_val), x_train = dataset.splits["val"], dataset.splits["train"][0]
    sample = x_train[np.random.default_rng(1337).permutation(len(x_train))]
    float_model = run / "emotion_fp32.onnx"
    print(f"float32: {onnx_metrics(float_model, x_val, y_val, dataset.labels)['accuracy']:.4f}")
    with tempfile.TemporaryDirectory() as folder:
        for count, calibration in ((2048, "minmax"), (512, "percentile"), (512, "entropy")):
            quantized = quantize_int8(float_model, Path(folder) / f"{calibration}.onnx", sample[:count], calibration)
            accuracy = onnx_metrics(quantized, x_val, y_val, dataset.labels)["accuracy"]
            print(f"int8, {calibration} on {count} training faces: {accuracy:.4f}")


def timing(models: list[Path]) -> None:
    """Median and p95 ms per face at batch 1 on one thread, 500 runs after 50 to warm up."""
    from emolens.training.export import time_per_face

    for model in models:
        median, p95, _ = time_per_face(model, repeats=500, warmup=50)
        print(f"{model}: median {median:.2f} ms, p95 {p95:.2f} ms")


def widths(specs: list[str]) -> None:
    """ms per face of untrained networks of other widths, exported as the trainer ships them (int8, flip-TTA)."""
    from emolens.training.export import export_onnx, quantize_int8
    from emolens.training.model import build_model

    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48, 1), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        models = []
        for spec in specs:
            network = build_model(7, (48, 48, 1), tuple(int(width) for width in spec.split(",")))
            float_model = export_onnx(network, Path(folder) / f"{spec}_fp32.onnx", temperature=1.0, flip_tta=True)
            models.append(quantize_int8(float_model, Path(folder) / f"{spec}.onnx", faces, "percentile"))
        timing([Path("models/emotion.onnx"), *models])


def grown(spec: str) -> None:
    """Val accuracy (flip-TTA, float) of the shipped model grown to other widths, before any training."""
    from emolens.card import ModelCard
    from emolens.training.evaluate import softmax
    from emolens.training.warm_start import network_from_card, trained_widths

    dataset = ferplus()
    (x_val, y_val), x_train = dataset.splits["val"], dataset.splits["train"][0]
    card = ModelCard.load()
    sample = x_train[np.random.default_rng(0).permutation(len(x_train))[:2048]]
    wider = tuple(int(width) for width in spec.split(","))
    for widths, noise in ((trained_widths(card), 0.0), (wider, 0.0), (wider, 0.03)):
        network = network_from_card(card, widths, sample, noise)
        probs = sum(softmax(np.asarray(network.predict(pixels.astype("float32"), batch_size=512, verbose=0)),
                            card.info["output"]["temperature"]) for pixels in (x_val, x_val[:, :, ::-1]))
        print(f"widths {widths}, noise {noise}: {(probs.argmax(1) == y_val).mean():.4f}")


def teacher(model: Path) -> None:
    """How sure a ``--teacher`` is, against the crowd, on the training faces it scores and on val."""
    from emolens.evaluation.ferplus import mean_kl
    from emolens.training.distill import teacher_probabilities

    dataset = ferplus()
    for split in ("train", "val"):
        (faces, majority), votes = dataset.splits[split], dataset.distributions[split]
        probs = teacher_probabilities(model, faces, dataset.labels)
        print(f"{split}: mean top score {probs.max(1).mean():.3f} (the crowd's top share {votes.max(1).mean():.3f}), "
              f"accuracy {(probs.argmax(1) == majority).mean():.4f}, KL to the votes {mean_kl(votes, probs):.3f}")


def ensemble(models: list[Path]) -> None:
    """Each model alone and their mean scores on val, each reading the faces at its own input size."""
    from emolens.card import ModelCard
    from emolens.evaluation.ferplus import mean_kl
    from emolens.training.data import model_pixels
    from emolens.training.distill import teacher_probabilities

    dataset = ferplus()
    (faces, majority), votes = dataset.splits["val"], dataset.distributions["val"]
    scores = []
    for model in models:
        card = ModelCard.load(model)
        sized = model_pixels(faces, card.input_hw[0], card.channels)
        scores.append(teacher_probabilities(model, sized, dataset.labels))
    for name, probs in [*zip(map(str, models), scores), ("mean", np.mean(scores, axis=0))]:
        print(f"{name}: val accuracy {(probs.argmax(1) == majority).mean():.4f}, KL to the votes "
              f"{mean_kl(votes, probs):.3f}")
    wrong = np.array([probs.argmax(1) != majority for probs in scores])
    print(f"all wrong on {wrong.all(0).mean():.1%} of val, at least one right on {1 - wrong.all(0).mean():.1%}")


def offsets() -> None:
    """Per-class offsets to the shipped model's log scores, fitted on one random half of val by coordinate search,
    scored on the other half: three halvings, each both ways."""
    from emolens.card import ModelCard
    from emolens.training.distill import teacher_probabilities

    dataset = ferplus()
    x_val, y_val = dataset.splits["val"]
    log_scores = np.log(teacher_probabilities(ModelCard.load().model_path, x_val, dataset.labels) + 1e-9)

    def accuracy(rows: np.ndarray, shift: np.ndarray) -> float:
        return float(((log_scores[rows] + shift).argmax(1) == y_val[rows]).mean())

    def fitted(rows: np.ndarray) -> np.ndarray:
        shift = np.zeros(len(dataset.labels))
        for _ in range(3):
            for label in range(len(shift)):
                trials = [np.where(np.arange(len(shift)) == label, value, shift) for value in np.linspace(-1, 1, 41)]
                shift = max(trials, key=lambda trial: accuracy(rows, trial))
        return shift

    rng = np.random.default_rng(0)
    for _ in range(3):
        order = rng.permutation(len(y_val))
        for fit_on, score_on in ((order[::2], order[1::2]), (order[1::2], order[::2])):
            shift = fitted(fit_on)
            print(f"held-out half: {accuracy(score_on, np.zeros_like(shift)):.4f} -> {accuracy(score_on, shift):.4f} "
                  f"(offsets {np.round(shift, 2).tolist()})")


def graphs() -> None:
    """The shipped weights in the graph v2 shipped (face and mirror in two branches) and in the trainer's (both views
    as one batch of two), each with int8 convolutions only or with their ReLU and max-pooling too: val and ms."""
    import tensorflow as tf
    import tf2onnx

    from emolens.card import ModelCard
    from emolens.training import export
    from emolens.training.train import onnx_metrics
    from emolens.training.warm_start import network_from_card, trained_widths

    dataset = ferplus()
    (x_val, y_val), x_train = dataset.splits["val"], dataset.splits["train"][0]
    card = ModelCard.load()
    network = network_from_card(card, trained_widths(card),
                                x_train[np.random.default_rng(0).permutation(len(x_train))[:2048]])
    temperature = card.info["output"]["temperature"]
    spec = tf.TensorSpec([None, 48, 48, 1], tf.uint8, name=export.INPUT_NAME)

    @tf.function(input_signature=[spec])
    def two_branches(pixels):
        images = tf.cast(pixels, tf.float32)
        probs = [tf.nn.softmax(network(view, training=False) / temperature)
                 for view in (images, tf.reverse(images, axis=[2]))]
        return tf.identity((probs[0] + probs[1]) / 2, name=export.OUTPUT_NAME)

    calibration = x_train[np.random.default_rng(1337).permutation(len(x_train))[:512]]
    with tempfile.TemporaryDirectory() as folder:
        proto, _ = tf2onnx.convert.from_function(two_branches, input_signature=[spec], opset=export.OPSET)
        export.rename_io(proto)
        branched = Path(folder) / "two.onnx"
        branched.write_bytes(proto.SerializeToString())
        batched = export.export_onnx(network, Path(folder) / "batched.onnx", temperature, flip_tta=True)
        print(f"shipped: val {onnx_metrics(card.model_path, x_val, y_val, dataset.labels)['accuracy']:.4f}, "
              f"{export.time_per_face(card.model_path)[0]:.2f} ms")
        for graph, float_model in (("two branches", branched), ("one batch of two", batched)):
            for ops in (("Conv",), export.QUANTIZED_OPS):
                quantized = export.quantize_int8(float_model, Path(folder) / f"{float_model.stem}-{len(ops)}.onnx",
                                                 calibration, "percentile", ops)
                print(f"{graph}, int8 {'+'.join(ops)}: val "
                      f"{onnx_metrics(quantized, x_val, y_val, dataset.labels)['accuracy']:.4f}, "
                      f"{export.time_per_face(quantized)[0]:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="check", required=True)
    commands.add_parser("views")
    commands.add_parser("int8").add_argument("run", type=Path)
    commands.add_parser("timing").add_argument("models", type=Path, nargs="+")
    commands.add_parser("widths").add_argument("specs", nargs="+", help="comma-separated widths per stage")
    commands.add_parser("grown").add_argument("spec", help="comma-separated widths per stage")
    commands.add_parser("teacher").add_argument("model", type=Path)
    commands.add_parser("ensemble").add_argument("models", type=Path, nargs="+")
    commands.add_parser("offsets")
    commands.add_parser("graphs")
    args = parser.parse_args()
    if args.check == "views":
        views()
    elif args.check == "int8":
        int8(args.run)
    elif args.check == "widths":
        widths(args.specs)
    elif args.check == "grown":
        grown(args.spec)
    elif args.check == "teacher":
        teacher(args.model)
    elif args.check == "ensemble":
        ensemble(args.models)
    elif args.check == "offsets":
        offsets()
    elif args.check == "graphs":
        graphs()
    else:
        timing(args.models)


if __name__ == "__main__":
    main()
