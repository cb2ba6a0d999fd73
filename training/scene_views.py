"""Pipeline views of the training faces: each face as the app would crop it from a camera frame.

``emolens.evaluation.scenes.pipeline_crops`` renders every face into a camera-like frame and cuts it out
again with the app's own detector and crop code (the card's geometry, edge replication where
the face leaves the frame). The trainer shows a face's view instead of its clean crop with a
given probability, so the network learns what the app will feed it. Views cost a detector
pass per face, so they are computed once and cached.

Example::

    views, found = scene_views(x_train, card, seed=1337, cache_dir="~/.cache/emolens/scenes")
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from emolens.card import ModelCard
from emolens.detect import FaceDetector
from emolens.evaluation.scenes import pipeline_crops

_VERSION = "1"


def scene_views(faces: np.ndarray, card: ModelCard, seed: int, cache_dir: str | os.PathLike | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(views uint8 (n, H, W, C), found bool (n,))`` for ``uint8 (n, S, S, C)`` faces; cached by content."""
    key = hashlib.sha256(faces.tobytes())
    key.update(repr((_VERSION, seed, card.input_hw, card.channels, card.crop)).encode())
    cache = Path(os.path.expanduser(cache_dir)) / f"views-{key.hexdigest()[:16]}.npz" if cache_dir else None
    if cache and cache.exists():
        with np.load(cache) as archive:
            return archive["views"], archive["found"]
    with FaceDetector(model="short", min_confidence=0.5, max_faces=1) as detector:
        views, found = pipeline_crops(faces, card, detector, seed)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp.npz")
        np.savez(temporary, views=views, found=found)
        temporary.replace(cache)
    return views, found
