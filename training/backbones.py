"""Pretrained backbones for ``emolens train --backbone``: fetched from a registry package, checked, converted once.

``faceres`` is A. Savchenko's MobileNet (v1, alpha 1.0) trained for face identification on VGGFace2
(project HSE_FaceRec_tf), as the npm package ``@vladmandic/human`` ships it: a TF.js graph
(``models/faceres.json``) with float16 weights (``models/faceres.bin``) and every batch-norm folded
into the layer before it. Its layers keep their Keras names (``conv1``, ``conv_dw_N``, ``conv_pw_N``),
so each one's weights go to the layer of that name in ``mobilenet_v1``.

The package's tarball is downloaded once from the npm registry into the user's cache, its sha256 and
that of each file checked; the weights are then converted to ``faceres.npz`` (per layer: kernel, the
per-channel factor of the batch-norm, its offset) and nothing is fetched again.

Folded weights do not fine-tune: each layer's scale sits in its kernel (the first one's sized for
0-255 pixels), so one learning rate fits no layer. The network therefore gets its batch-norm layers
back: each kernel is brought to a He-initialisation scale per output channel, and the batch-norm after it
reproduces the folded layer exactly, from the statistics of real activations (``warm_start.expand_batch_norm``).

Example::

    network = build_faceres_network(7, (112, 112, 1), faces[:256])
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import keras
import numpy as np
from keras import layers

from emolens.errors import EmolensError
from emolens.training.warm_start import expand_batch_norm

BACKBONES = ("cnn", "faceres")
DEFAULT_CACHE = "~/.cache/emolens/backbones"

# Where the faceres weights come from, as the model card records it.
FACERES = {
    "name": "faceres",
    "architecture": "MobileNet v1, alpha 1.0 (Keras layer names), global average pooling, 1024 features",
    "trained_for": "face identification on VGGFace2 (with age and gender heads, not used here)",
    "author": "A. V. Savchenko, project HSE_FaceRec_tf (https://github.com/av-savchenko/HSE_FaceRec_tf)",
    "package": "@vladmandic/human",
    "version": "3.3.6",
    "tarball": "https://registry.npmjs.org/@vladmandic/human/-/human-3.3.6.tgz",
    "tarball_sha256": "425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7",
    "files": {"package/models/faceres.json": "5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df",
              "package/models/faceres.bin": "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"},
    "licences": {"package": "MIT (@vladmandic/human)",
                 "upstream": "av-savchenko/HSE_FaceRec_tf has no licence file that we found",
                 "training_data": "VGGFace2 has its own terms of use"},
}
_BYTES_PER_DTYPE = {"float16": 2, "float32": 4, "int32": 4}


def faceres_files(cache_dir: str | os.PathLike = DEFAULT_CACHE) -> tuple[Path, Path]:
    """``faceres.json`` and ``faceres.bin`` in ``cache_dir``, fetched from the npm registry if absent, both checked.

    Raises:
        EmolensError: the registry cannot be reached, or a file's sha256 is not the recorded one.
    """
    folder = Path(os.path.expanduser(cache_dir))
    paths = {member: folder / Path(member).name for member in FACERES["files"]}
    if not all(path.is_file() for path in paths.values()):
        _fetch_faceres(folder, paths)
    for member, path in paths.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != FACERES["files"][member]:
            raise EmolensError(f"{path} is not {FACERES['package']}@{FACERES['version']}'s {member} (sha256 {digest}, "
                               f"expected {FACERES['files'][member]}): delete it and run again to fetch it afresh")
    return paths["package/models/faceres.json"], paths["package/models/faceres.bin"]


def _fetch_faceres(folder: Path, paths: dict[str, Path]) -> None:
    """Download the package's tarball, check it, and write the two model files into ``folder``."""
    package = f"{FACERES['package']}@{FACERES['version']}"
    try:
        with urllib.request.urlopen(FACERES["tarball"], timeout=60) as response:
            tarball = response.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise EmolensError(f"cannot fetch the faceres backbone from the npm registry ({FACERES['tarball']}: {reason}); "
                           f"where the registry is reachable, run `npm pack {package}` and place "
                           f"package/models/faceres.json and faceres.bin in {folder}") from None
    digest = hashlib.sha256(tarball).hexdigest()
    if digest != FACERES["tarball_sha256"]:
        raise EmolensError(f"{FACERES['tarball']} has sha256 {digest}, not the recorded {FACERES['tarball_sha256']}: "
                           "the registry served another file; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member, path in paths.items():
            temporary = path.with_suffix(path.suffix + ".tmp")
            temporary.write_bytes(archive.extractfile(member).read())
            temporary.replace(path)


def faceres_weights(cache_dir: str | os.PathLike = DEFAULT_CACHE) -> dict[str, np.ndarray]:
    """Per layer name: ``{name}/kernel`` (Keras layout), ``{name}/scale`` and ``{name}/offset`` of the folded
    batch-norm, so that the layer computes ``scale * conv(x, kernel) + offset``; converted once, then read."""
    folder = Path(os.path.expanduser(cache_dir))
    converted = folder / "faceres.npz"
    if not converted.is_file():
        graph_path, weights_path = faceres_files(folder)
        arrays = _convert(read_tfjs_weights(graph_path, weights_path))
        temporary = converted.with_suffix(".tmp.npz")
        np.savez(temporary, **arrays)
        temporary.replace(converted)
    with np.load(converted) as archive:
        return dict(archive)


def read_tfjs_weights(graph_path: Path, weights_path: Path) -> dict[str, np.ndarray]:
    """Every constant of a TF.js graph model with a single weights file, as float32 (or int32) arrays."""
    manifest = json.loads(graph_path.read_text())["weightsManifest"]
    data = weights_path.read_bytes()
    arrays, offset = {}, 0
    for entry in (weight for group in manifest for weight in group["weights"]):
        stored = entry.get("quantization", {}).get("dtype", entry["dtype"])
        count = int(np.prod(entry["shape"], dtype=np.int64))
        size = count * _BYTES_PER_DTYPE[stored]
        values = np.frombuffer(data, dtype=stored, count=count, offset=offset).reshape(entry["shape"])
        arrays[entry["name"]] = values.astype(entry["dtype"])
        offset += size
    if offset != len(data):
        raise EmolensError(f"{weights_path} holds {len(data)} bytes, its manifest {offset}: not the expected file")
    return arrays


def _convert(constants: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The graph's constants, named after the Keras layers they belong to."""
    layers_ = {"conv1": constants["conv1/convolution/merged_input"]}
    layers_ |= {f"conv_pw_{i}": constants[f"conv_pw_{i}/convolution/merged_input"] for i in range(1, 14)}
    out = {}
    for name, kernel in layers_.items():  # batch-norm folded into the kernel; only its offset is left
        out |= {f"{name}/kernel": kernel, f"{name}/scale": np.ones(kernel.shape[-1], np.float32),
                f"{name}/offset": constants[f"{name}_bn/batchnorm_1/sub"]}
    for i in range(1, 14):  # depthwise: the batch-norm's factor and offset are separate constants
        name = f"conv_dw_{i}"
        out |= {f"{name}/kernel": constants[f"{name}/depthwise_kernel"],
                f"{name}/scale": constants[f"{name}_bn/batchnorm_1/mul"],
                f"{name}/offset": constants[f"{name}_bn/batchnorm_1/sub"]}
    return out


def build_faceres_network(num_classes: int, input_shape: tuple[int, int, int], sample: np.ndarray,
                          dropout: float = 0.25, weights: dict[str, np.ndarray] | None = None) -> keras.Model:
    """The faceres MobileNet on raw gray (or BGR) ``uint8`` pixels, with a new dense head of ``num_classes`` logits.

    The graph rescales pixels to [0, 1] (the first kernel is multiplied by 255 to match, exact because padding is
    zero either way) and replicates a gray channel to three. ``sample``: training faces whose activations set the
    batch-norm statistics (a few hundred suffice). ``weights``: ``faceres_weights()``'s arrays, read from the user's
    cache when not given (a machine without the registry, such as a sweep's GPU machine, is handed them).
    """
    height, width, channels = input_shape
    inputs = keras.Input(shape=input_shape, dtype="uint8", name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    if channels == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    features = layers.GlobalAveragePooling2D(name="pool")(mobilenet_v1(x))
    features = layers.Dropout(dropout, name="dropout")(features)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(features)
    network = keras.Model(inputs, logits, name="emolens_cnn")
    load_faceres_weights(network, sample, faceres_weights() if weights is None else weights)
    return network


# MobileNet v1's depthwise-separable blocks: (filters of the pointwise convolution, stride of the depthwise one).
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1))


def mobilenet_v1(x):
    """MobileNet v1 (alpha 1.0) with Keras's layer names and TensorFlow's "same" padding at every stride.

    ``keras.applications.MobileNet`` pads stride-2 layers by one row and column after, which equals "same"
    only on even sizes: at 112 px the last stride-2 layer sees 7x7 and would return 3x3 where the graph has 4x4.
    """
    def conv_bn_relu(x, layer, name):
        x = layer(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x)

    x = conv_bn_relu(x, layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="conv1"), "conv1")
    for block, (filters, stride) in enumerate(MOBILENET_BLOCKS, start=1):
        x = conv_bn_relu(x, layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                                   name=f"conv_dw_{block}"), f"conv_dw_{block}")
        x = conv_bn_relu(x, layers.Conv2D(filters, 1, use_bias=False, name=f"conv_pw_{block}"), f"conv_pw_{block}")
    return x


def load_faceres_weights(network: keras.Model, sample: np.ndarray, weights: dict[str, np.ndarray]) -> None:
    """Set every MobileNet layer of ``network`` from the faceres ``weights``, batch-norm re-expanded on ``sample``."""
    for layer in network.layers:
        if f"{layer.name}/kernel" not in weights:
            continue
        kernel, scale = weights[f"{layer.name}/kernel"], weights[f"{layer.name}/scale"]
        if layer.name == "conv1":
            kernel = kernel * 255.0  # the network sees pixels / 255; the graph was trained on 0-255
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel = kernel * scale[None, None, :, None]  # fold the factor in: every kernel then holds its scale
        else:
            kernel = kernel * scale
        gain = _he_gain(kernel, depthwise=isinstance(layer, layers.DepthwiseConv2D))
        shape = (1, 1, -1, 1) if isinstance(layer, layers.DepthwiseConv2D) else (1, 1, 1, -1)
        layer.kernel.assign(kernel / gain.reshape(shape))
        expand_batch_norm(network, layer, network.get_layer(f"{layer.name}_bn"), sample,
                          bias=weights[f"{layer.name}/offset"], gain=gain)


def _he_gain(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """Per output channel: the kernel's deviation over that of He initialisation, ``sqrt(2 / fan_in)``."""
    if depthwise:  # (kh, kw, channels, 1): one 3x3 filter per channel
        per_channel = kernel[..., 0].reshape(-1, kernel.shape[2])
    else:  # (kh, kw, in, out)
        per_channel = kernel.reshape(-1, kernel.shape[-1])
    he = np.sqrt(2.0 / per_channel.shape[0])
    return (np.sqrt((per_channel ** 2).mean(axis=0)) / he + 1e-12).astype(np.float32)
