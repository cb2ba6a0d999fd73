"""The model card: the one place that says what the emotion model expects and returns.

``models/emotion.json`` is written by ``emolens.training.export`` and read only here.
Everything else gets a validated, frozen ``ModelCard``: input size and channels, label
order, crop geometry and the ONNX file it describes (checked by sha256).

Example::

    card = ModelCard.load()            # the shipped model
    card.labels, card.input_hw, card.crop.scale
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from emolens.errors import EmolensError

CARD_FORMAT = "emolens-model-card/1"


def packaged_model_dir() -> Path:
    """The folder of the shipped models (``models/`` in the source tree)."""
    return Path(str(resources.files("emolens.models")))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class CropGeometry:
    """Where the classifier's square crop sits relative to the detector's box.

    With a detector box of width ``w`` centred at ``(cx, cy)``, the crop is a square of side
    ``scale * w`` centred at ``(cx + offset_x * w, cy + offset_y * w)``, in the face's own
    frame: when ``roll`` is true the square is turned by the angle of the line between the
    eyes, so the eyes come out level.
    """

    scale: float
    offset_x: float
    offset_y: float
    roll: bool


@dataclass(frozen=True)
class ModelCard:
    """The validated content of a model card (see ``models/README.md`` for the schema)."""

    card_path: Path
    model_path: Path
    sha256: str
    labels: tuple[str, ...]
    input_name: str
    input_hw: tuple[int, int]
    channels: int
    crop: CropGeometry
    info: dict

    @classmethod
    def load(cls, path: str | Path | None = None, verify: bool = True) -> ModelCard:
        """Read a card (default: the shipped one); ``path`` may name the .json or its .onnx.

        Raises:
            EmolensError: the card or model is missing, malformed, or its sha256 does not match.
        """
        card_path = Path(path) if path else packaged_model_dir() / "emotion.json"
        if card_path.suffix == ".onnx":
            card_path = card_path.with_suffix(".json")
        if not card_path.is_file():
            raise EmolensError(f"model card not found: {card_path} (an .onnx model needs its .json card beside it)")
        try:
            raw = json.loads(card_path.read_text())
            if raw.get("format") != CARD_FORMAT:
                raise KeyError(f"format is {raw.get('format')!r}, expected {CARD_FORMAT!r}")
            model_path = card_path.parent / raw["model"]["file"]
            card = cls(
                card_path=card_path,
                model_path=model_path,
                sha256=raw["model"]["sha256"],
                labels=tuple(raw["labels"]),
                input_name=raw["input"]["name"],
                input_hw=(int(raw["input"]["height"]), int(raw["input"]["width"])),
                channels=int(raw["input"]["channels"]),
                crop=CropGeometry(**{k: raw["crop"][k] for k in ("scale", "offset_x", "offset_y", "roll")}),
                info=raw,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise EmolensError(f"model card {card_path} is malformed ({error}); re-export the model") from None
        if card.channels not in (1, 3):
            raise EmolensError(f"model card {card_path}: channels must be 1 or 3, got {card.channels}")
        if verify:
            card.verify()
        return card

    def verify(self) -> None:
        """Check that the ONNX file exists and matches the card's sha256."""
        if not self.model_path.is_file():
            raise EmolensError(f"emotion model not found: {self.model_path}; reinstall emolens "
                               f"or pass --model with a trained .onnx")
        if sha256_of(self.model_path) != self.sha256:
            raise EmolensError(f"emotion model {self.model_path} does not match its card (sha256 differs): "
                               f"the file is corrupt or belongs to another card; reinstall or re-export it")
