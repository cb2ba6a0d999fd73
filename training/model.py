"""The emotion CNN and its training-time augmentation, in backend-agnostic Keras 3.

The network takes raw ``uint8`` pixels; rescaling to [0, 1] is its first layer, so the
exported ONNX graph owns the normalisation and the app feeds pixels as they are.

Example::

    model = build_model(num_classes=7, input_shape=(48, 48, 1))
    logits = model(np.zeros((1, 48, 48, 1), np.uint8))
"""

from __future__ import annotations

import keras
from keras import layers


def build_model(num_classes: int, input_shape: tuple[int, int, int],
                widths: tuple[int, ...] = (32, 64, 128, 256), convs: tuple[int, ...] = (1, 2, 2, 2),
                dropout: float = 0.4) -> keras.Model:
    """A VGG-style CNN: stages of 3x3 conv + batch-norm + ReLU, each ending in 2x2 max-pooling.

    ``widths[i]`` filters and ``convs[i]`` convolutions in stage ``i``; global average
    pooling, dropout and one dense layer produce logits. Plain 3x3 convolutions train
    faster on CPU (oneDNN) than separable ones of the same cost. The defaults use one
    convolution at full resolution, where it is most expensive, and two at each lower
    one: about 1.2M parameters and 0.1 GMAC per 48x48 face.
    """
    if len(widths) != len(convs):
        raise ValueError(f"widths and convs must have the same length, got {len(widths)} and {len(convs)}")
    inputs = keras.Input(shape=input_shape, dtype="uint8", name="pixels")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for stage, (filters, count) in enumerate(zip(widths, convs), start=1):
        for index in range(1, count + 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"stage{stage}_conv{index}")(x)
            x = layers.BatchNormalization(name=f"stage{stage}_bn{index}")(x)
            x = layers.Activation("relu", name=f"stage{stage}_relu{index}")(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name="emolens_cnn")


def build_augmenter(seed: int) -> keras.Sequential:
    """Face-safe augmentation applied to uint8 batches during training only.

    Horizontal flips, small shifts, rotations and zooms (faces stay upright and centred),
    brightness and contrast jitter, and random erasing of one patch (occlusion by hands,
    glasses, hair). Output stays in the 0..255 range as float32.
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed + 1),
            layers.RandomRotation(0.05, fill_mode="nearest", seed=seed + 2),
            layers.RandomZoom((-0.15, 0.15), fill_mode="nearest", seed=seed + 3),
            layers.RandomBrightness(0.25, value_range=(0, 255), seed=seed + 4),
            layers.RandomContrast(0.3, value_range=(0, 255), seed=seed + 5),
            RandomErasing(probability=0.5, max_fraction=0.25, seed=seed + 6),
        ],
        name="augment",
    )


@keras.saving.register_keras_serializable(package="emolens")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``peak / 10`` to ``peak``, then cosine decay to ``alpha * peak``.

    Defined by step counts only, so a resumed run can re-plan its length (``total_steps``)
    and continue from the optimizer's own step counter.
    """

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, alpha: float = 0.01):
        self.peak, self.warmup_steps, self.total_steps, self.alpha = peak, warmup_steps, total_steps, alpha

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        rising = self.peak * (0.1 + 0.9 * step / warmup)
        progress = ops.clip((step - self.warmup_steps) / float(max(self.total_steps - self.warmup_steps, 1)), 0.0, 1.0)
        falling = self.peak * (self.alpha + (1 - self.alpha) * 0.5 * (1 + ops.cos(3.141592653589793 * progress)))
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps,
                "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="emolens")
class RandomErasing(layers.Layer):
    """Replace one random rectangle per image with mid-grey, with the given probability."""

    def __init__(self, probability: float, max_fraction: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.probability = probability
        self.max_fraction = max_fraction
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        ops = keras.ops
        shape = ops.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        uniform = keras.random.uniform((batch, 5), seed=self.seed_generator)
        side_h = ops.cast(uniform[:, 0] * self.max_fraction * ops.cast(height, "float32") + 4.0, "float32")
        side_w = ops.cast(uniform[:, 1] * self.max_fraction * ops.cast(width, "float32") + 4.0, "float32")
        top = uniform[:, 2] * (ops.cast(height, "float32") - side_h)
        left = uniform[:, 3] * (ops.cast(width, "float32") - side_w)
        rows = ops.cast(ops.arange(height), "float32")[None, :, None]
        cols = ops.cast(ops.arange(width), "float32")[None, None, :]
        inside = ((rows >= top[:, None, None]) & (rows < (top + side_h)[:, None, None])
                  & (cols >= left[:, None, None]) & (cols < (left + side_w)[:, None, None]))
        apply = (uniform[:, 4] < self.probability)[:, None, None]
        mask = ops.expand_dims(ops.cast(inside & apply, images.dtype), -1)
        return images * (1 - mask) + 127.0 * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "probability": self.probability,
                "max_fraction": self.max_fraction, "seed": self.seed}
