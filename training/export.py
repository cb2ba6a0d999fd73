"""Export a trained network to ONNX and write its model card.

The exported graph takes ``uint8 (batch, H, W, C)`` pixels named ``pixels`` (dynamic batch
axis) and returns ``probs``: softmax of the logits divided by the fitted temperature,
averaged with the mirrored face's when flip test-time augmentation is on. The card beside
it is the contract the app reads (see ``models/README.md``).

Example::

    onnx_path = export_onnx(network, out / "emotion.onnx", temperature=1.3, flip_tta=True)
    check_parity(network, onnx_path, x_val[:256], temperature=1.3, flip_tta=True)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emolens.card import CARD_FORMAT, sha256_of
from emolens.errors import EmolensError
from emolens.training.evaluate import predict_logits, tta_probs

INPUT_NAME = "pixels"
OUTPUT_NAME = "probs"
OPSET = 17
PARITY_TOLERANCE = 1e-4
# The convolutions hold nearly all the work. Quantizing ReLU and max-pooling too lets ONNX Runtime fold each
# ReLU into its convolution's uint8 output and pool in uint8, with no dequantize/quantize pair between layers:
# about 10% less time per face on v2's weights, at the same val accuracy (python scripts/val_checks.py graphs).
QUANTIZED_OPS = ("Conv", "Relu", "MaxPool")
CALIBRATION_BATCH = 32
# emolens train --calibration: onnxruntime's CalibrationMethod of each choice.
CALIBRATIONS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


class ExportError(EmolensError):
    """The exported model does not reproduce the Keras one (one line from the CLI, not a traceback)."""


def export_onnx(network, path: Path, temperature: float, flip_tta: bool) -> Path:
    """Convert ``network`` (logits) to an ONNX graph that outputs calibrated probabilities."""
    import tensorflow as tf
    import tf2onnx

    height, width, channels = network.input_shape[1:]
    spec = tf.TensorSpec([None, height, width, channels], tf.uint8, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(pixels):
        images = tf.cast(pixels, tf.float32)
        if not flip_tta:
            return tf.identity(tf.nn.softmax(network(images, training=False) / temperature), name=OUTPUT_NAME)
        # Faces and mirrors as one batch through one copy of the network: half the nodes of two branches,
        # so less per-node overhead at batch 1.
        count = tf.shape(images)[0]
        both = tf.nn.softmax(network(tf.concat([images, tf.reverse(images, axis=[2])], 0), training=False)
                             / temperature)
        return tf.identity((both[:count] + both[count:]) / 2, name=OUTPUT_NAME)

    path.parent.mkdir(parents=True, exist_ok=True)
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=OPSET)
    rename_io(model_proto)
    path.write_bytes(model_proto.SerializeToString())
    return path


def rename_io(model_proto) -> None:
    """Give the graph's input and output the stable names the card promises."""
    graph = model_proto.graph
    renames = {graph.input[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    graph.input[0].name = INPUT_NAME
    graph.output[0].name = OUTPUT_NAME


def check_parity(network, onnx_path: Path, images: np.ndarray, temperature: float, flip_tta: bool) -> float:
    """Max |Δp| between Keras and ONNX Runtime on real images; raises ``ExportError`` above tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_probs = session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]
    flipped = predict_logits(network, images, flip=True) if flip_tta else None
    keras_probs = tta_probs(predict_logits(network, images), flipped, temperature)
    difference = float(np.abs(onnx_probs - keras_probs).max())
    if difference > PARITY_TOLERANCE:
        raise ExportError(f"ONNX output differs from Keras by {difference:.2e} (> {PARITY_TOLERANCE:.0e}) "
                          f"on {len(images)} images; the export is broken")
    return difference


def calibration_set(faces: np.ndarray, count: int = 512) -> np.ndarray:
    """The first ``count`` faces, or as many whole batches as there are: onnxruntime's histogram calibrations
    (percentile, entropy) stack every batch's activations, so a shorter last batch breaks them."""
    usable = min(count, len(faces) // CALIBRATION_BATCH * CALIBRATION_BATCH) or len(faces)
    return faces[:usable]


def quantize_int8(float_path: Path, out_path: Path, calibration_images: np.ndarray,
                  calibration: str = "minmax", op_types: tuple[str, ...] = QUANTIZED_OPS,
                  float_nodes: tuple[str, ...] = ()) -> Path:
    """Static int8 quantization of ``op_types`` (per-channel weights, QDQ), calibrated on real faces
    by one of onnxruntime's methods (``CALIBRATIONS``): min-max takes each activation's whole range,
    percentile clips its rare extremes, entropy minimises the information lost. ``float_nodes``: nodes
    (by name) left in float32.

    On CPUs with int8 dot-product instructions this makes the classifier several times
    faster; the trainer keeps it only when validation accuracy stays within a tolerance.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([{INPUT_NAME: calibration_images[i:i + CALIBRATION_BATCH]}
                                  for i in range(0, len(calibration_images), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self._batches, None)

    prepared = out_path.with_suffix(".prepared.onnx")
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    # The head (dense, temperature, softmax) stays float so the probabilities keep full resolution and sum to 1.
    quantize_static(str(prepared), str(out_path), _Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types),
                    calibrate_method=CalibrationMethod[CALIBRATIONS[calibration]], nodes_to_exclude=list(float_nodes))
    prepared.unlink()
    return out_path


def write_card(path: Path, onnx_path: Path, labels: tuple[str, ...], input_shape: tuple[int, int, int],
               output: dict, quantization: dict, crop: dict, metrics: dict, data: dict, training: dict,
               name: str = "emolens-emotion-cnn") -> Path:
    """Write the model card for ``onnx_path`` (the only writer of this format); ``output`` says how the
    probabilities are made (a network's temperature and flip-TTA, or an ensemble's members)."""
    height, width, channels = input_shape
    card = {
        "format": CARD_FORMAT,
        "name": name,
        "model": {"file": onnx_path.name, "sha256": sha256_of(onnx_path), "bytes": onnx_path.stat().st_size,
                  "opset": OPSET},
        "labels": list(labels),
        "input": {
            "name": INPUT_NAME, "height": height, "width": width, "channels": channels,
            "color": "gray" if channels == 1 else "bgr", "dtype": "uint8", "layout": "NHWC",
            "normalisation": "none outside the model: the graph divides uint8 pixels by 255",
        },
        "output": {"name": OUTPUT_NAME, "kind": "probabilities", **output},
        "quantization": quantization,
        "crop": crop,
        "metrics": metrics,
        "data": data,
        "training": training,
    }
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def add_metrics(card_path: Path, metrics: dict) -> None:
    """Add figures measured with the written card (e.g. through the app's own pipeline) to its metrics."""
    card = json.loads(card_path.read_text())
    card["metrics"].update(metrics)
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def time_per_face(onnx_path: Path, repeats: int = 500, warmup: int = 20) -> tuple[float, float, float]:
    """Median and p95 wall ms and median CPU ms of one face at batch 1 on one CPU thread (as ``emolens bench``
    times the classifier)."""
    import onnxruntime as ort

    from emolens.bench.timing import time_calls

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    face = np.random.default_rng(0).integers(0, 256, (1, *session.get_inputs()[0].shape[1:]), dtype=np.uint8)
    return time_calls(lambda: session.run(None, {"pixels": face}), repeats, warmup)
