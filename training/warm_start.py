"""Start training from the weights of an exported model (``emolens train --init-from emotion.onnx``).

Only ONNX and the card are shipped, so fine-tuning the shipped model means reading its weights
back out of the graph. tf2onnx folds each batch-norm into the convolution before it (weights
``W`` and a bias ``b``), and the int8 export stores both quantized: they are dequantized here
(``(q - zero_point) * scale``). Our network keeps the batch-norm layers, so each one is set
to reproduce ``conv(x) + b`` exactly while starting from the statistics of real activations:
with per-channel mean ``mu`` and variance ``var`` of ``conv(x)`` on training faces,
``gamma = sqrt(var + eps)``, ``beta = mu + b``, moving mean ``mu`` and variance ``var``
(``expand_batch_norm``, which ``backbones.py`` uses too).
Training-mode batch statistics then start near the folded ones, and the network computes the
exported function from its first step.

The network may also be wider than the exported one (more filters in a stage, the same number of
convolutions): each extra filter starts as a copy of a random existing one, and the layer after it
divides the copied channel's weights among its copies, so the wider network computes the same
function (Net2WiderNet, Chen et al., 2016). Small noise on the copies' weights lets them part ways
in training; without it they would get the same gradients and stay copies for good.

Example::

    network = build_model(7, (48, 48, 1))
    load_onnx_weights(network, Path("models/emotion.onnx"), x_train[:2048])
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from emolens.card import ModelCard
from emolens.training.model import build_model


def trained_widths(card: ModelCard) -> tuple[int, ...] | None:
    """The filters per stage the card's model was trained with (None: the card does not say)."""
    widths = card.info.get("training", {}).get("config", {}).get("widths")
    return tuple(widths) if widths else None


def network_from_card(card: ModelCard, widths: tuple[int, ...], sample: np.ndarray, noise: float = 0.0) -> keras.Model:
    """The card's model in Keras (float): its depth, its weights, at its own ``widths`` or wider ones."""
    config = card.info["training"]["config"]
    network = build_model(len(card.labels), (*card.input_hw, card.channels), widths, tuple(config["convs"]))
    load_onnx_weights(network, card.model_path, sample, noise=noise)
    return network


def load_onnx_weights(network: keras.Model, onnx_path: Path, sample: np.ndarray, seed: int = 0,
                      noise: float = 0.03) -> None:
    """Copy an exported emolens CNN's weights into ``network``: the same architecture, or a wider one.

    ``noise``: the deviation of the noise added to copied filters, relative to their layer's weights.

    Raises:
        ValueError: the graph's convolutions or dense head do not match ``network``.
    """
    convs, dense = _onnx_layers(onnx_path)
    conv_layers = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    if len(convs) != len(conv_layers):
        raise ValueError(f"{onnx_path} has {len(convs)} convolutions, the network {len(conv_layers)}")
    rng = np.random.default_rng(seed)
    sources = None  # for each input channel of the next layer, the exported channel it copies
    for layer, (weight, bias) in zip(conv_layers, convs):
        weight = _share_among_copies(weight, sources, axis=1)
        exported = weight.shape[0]
        sources = _filter_sources(layer.name, exported, layer.filters, rng)
        weight, bias = weight[sources], bias[sources]
        copies = np.arange(len(sources)) >= exported
        weight[copies] += rng.normal(0.0, noise * weight.std(), weight[copies].shape).astype(weight.dtype)
        kernel = weight.transpose(2, 3, 1, 0)  # ONNX (out, in, kh, kw) -> Keras (kh, kw, in, out)
        if kernel.shape != tuple(layer.kernel.shape):
            raise ValueError(f"{layer.name}: {onnx_path} has a {kernel.shape} kernel, the network {layer.kernel.shape}")
        layer.kernel.assign(kernel)
        expand_batch_norm(network, layer, network.get_layer(layer.name.replace("conv", "bn")), sample, bias)
    head = network.get_layer("logits")
    head_weight = _share_among_copies(dense[0].reshape(-1, head.kernel.shape[-1]), sources, axis=0)
    if head_weight.shape != tuple(head.kernel.shape):
        raise ValueError(f"logits: {onnx_path} has a {head_weight.shape} kernel, the network {head.kernel.shape}")
    head.set_weights([head_weight, dense[1]])


def expand_batch_norm(network: keras.Model, layer: keras.layers.Layer, batch_norm: keras.layers.BatchNormalization,
                      sample: np.ndarray, bias: np.ndarray, gain: np.ndarray | float = 1.0) -> None:
    """Set ``batch_norm`` (after ``layer``) to compute ``gain * layer(x) + bias``, the folded layer, exactly.

    Its statistics are those of ``layer``'s real activations on ``sample``, so training-mode batch
    statistics start near them: with per-channel mean ``mu`` and variance ``var``, ``gamma = gain *
    sqrt(var + eps)``, ``beta = gain * mu + bias``, moving mean ``mu`` and moving variance ``var``.
    """
    outputs = keras.Model(network.inputs, layer.output).predict(sample, batch_size=256, verbose=0)
    outputs = outputs.reshape(-1, outputs.shape[-1])
    mean, variance = outputs.mean(axis=0), outputs.var(axis=0)
    batch_norm.set_weights([gain * np.sqrt(variance + batch_norm.epsilon), gain * mean + bias, mean, variance])


def _filter_sources(name: str, exported: int, filters: int, rng: np.random.Generator) -> np.ndarray:
    """The exported filter each of ``filters`` starts from: all of them in order, then random copies."""
    if filters < exported:
        raise ValueError(f"{name}: the network has {filters} filters, fewer than the exported model's {exported}")
    return np.concatenate([np.arange(exported), rng.integers(0, exported, filters - exported)])


def _share_among_copies(weight: np.ndarray, sources: np.ndarray | None, axis: int) -> np.ndarray:
    """Weights on widened inputs: each copied channel's share, so that the copies sum to the original."""
    if sources is None:
        return weight
    copies = np.bincount(sources, minlength=weight.shape[axis])
    shape = [1] * weight.ndim
    shape[axis] = len(sources)
    return np.take(weight, sources, axis=axis) / copies[sources].reshape(shape)


def _onnx_layers(onnx_path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each convolution of the unflipped branch in graph order, and the dense head."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input[:2]):
            q = constants[node.input[0]].astype(np.float32)
            scale = constants[node.input[1]].astype(np.float32)
            zero = constants[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
            shape = (-1,) + (1,) * (q.ndim - 1) if scale.ndim == 1 and q.ndim > 1 else scale.shape
            constants[node.output[0]] = (q - zero.reshape(shape)) * scale.reshape(shape)
    convs = []
    seen: set[str] = set()
    for node in graph.node:  # both branches of flip-TTA share weights: keep each conv weight once
        if node.op_type == "Conv" and node.input[1] not in seen:
            seen.add(node.input[1])
            convs.append((constants[node.input[1]], constants[node.input[2]]))
    gemm = next(node for node in graph.node if node.op_type in ("Gemm", "MatMul"))
    weight = constants[gemm.input[1]]
    bias = constants[gemm.input[2]] if len(gemm.input) > 2 else np.zeros(weight.shape[-1], np.float32)
    return convs, (weight, bias)
