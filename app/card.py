"""The model card: the one place that says what the emotion model expects and returns.

``models/emotion.json`` is written by ``emolens.training.export`` and read only here.
Everything else gets a validated, frozen ``ModelCard``: input size and channels, label
order, crop geometry and the ONNX file it describes. ``load`` checks the whole card
against its schema (``CardSchema``: every field's type and range, labels unique) and,
unless ``verify=False``, against the model file's sha256. ``open_session`` opens the model in
ONNX Runtime and checks its graph against the card (input name, shape and dtype, output name and
width): a card that does not fit its model is refused with one line naming the field, before
any frame is read.

Example::

    card = ModelCard.load()            # the shipped default model ("fast")
    ModelCard.load("accurate")         # the shipped accurate one (--model accurate)
    card.labels, card.input_hw, card.crop.scale
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from emolens.errors import EmolensError

if TYPE_CHECKING:
    import onnxruntime as ort

CARD_FORMAT = "emolens-model-card/1"
MODEL_NAMES = {"fast": "emotion.json", "accurate": "emotion-accurate.json"}
"""The shipped models' cards by name (``--model fast|accurate``); ``fast`` is the default."""


def packaged_model_dir() -> Path:
    """The folder of the shipped models (``models/`` in the source tree)."""
    return Path(str(resources.files("emolens.models")))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_Name = Annotated[StrictStr, Field(min_length=1)]
_Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Section(BaseModel):
    # Strict: "1.2" is not a number and 48.0 is not a size; unknown keys (metrics, provenance) are kept.
    model_config = ConfigDict(extra="allow", strict=True)


class _ModelSection(_Section):
    file: _Name
    sha256: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]


class _InputSection(_Section):
    name: _Name
    height: Annotated[StrictInt, Field(gt=0)]
    width: Annotated[StrictInt, Field(gt=0)]
    channels: Literal[1, 3]
    dtype: Literal["uint8"]  # the app feeds raw pixels; normalisation is inside the graph
    layout: Literal["NHWC"] = "NHWC"


class _OutputSection(_Section):
    name: _Name


class _CropSection(_Section):
    scale: Annotated[_Finite, Field(gt=0)]
    offset_x: _Finite
    offset_y: _Finite
    roll: StrictBool


class CardSchema(_Section):
    """The fields of ``emolens-model-card/1`` that the app relies on (see ``models/README.md``)."""

    format: Literal["emolens-model-card/1"]
    model: _ModelSection
    labels: Annotated[list[_Name], Field(min_length=1)]
    input: _InputSection
    output: _OutputSection
    crop: _CropSection

    @field_validator("labels")
    @classmethod
    def _unique(cls, labels: list[str]) -> list[str]:
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"labels must be unique; repeated: {', '.join(repeated)}")
        return labels


def _first_problem(error: ValidationError) -> str:
    """``field.path: what is wrong`` for the first schema violation."""
    problem = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in problem["loc"]) or "the card"
    message = problem["msg"].removeprefix("Value error, ")
    value = problem.get("input")
    shown = "" if isinstance(value, (dict, list)) or problem["type"] == "missing" else f" (got {value!r})"
    return f"{field}: {message}{shown}"


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
    output_name: str
    crop: CropGeometry
    info: dict

    @classmethod
    def load(cls, path: str | Path | None = None, verify: bool = True) -> ModelCard:
        """Read a card; ``path`` may name a shipped model (``MODEL_NAMES``; default ``fast``), a .json or its .onnx.

        Raises:
            EmolensError: the card or model is missing, the card breaks its schema, or (with
                ``verify``) the model file is not the one it describes; one line naming the field.
        """
        name = str(path) if path else "fast"
        card_path = packaged_model_dir() / MODEL_NAMES[name] if name in MODEL_NAMES else Path(path)
        if card_path.suffix == ".onnx":
            card_path = card_path.with_suffix(".json")
        if not card_path.is_file():
            raise EmolensError(f"model card not found: {card_path} (a model is {' or '.join(MODEL_NAMES)}, or a "
                               f"card .json, or an .onnx with its .json card beside it)")
        try:
            raw = json.loads(card_path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:
            raise EmolensError(f"model card {card_path} is malformed (not JSON: {error}); "
                               f"re-export the model") from None
        if not isinstance(raw, dict):
            raise EmolensError(f"model card {card_path} is malformed: it must be a JSON object, "
                               f"not a {type(raw).__name__}; re-export the model")
        try:
            schema = CardSchema.model_validate(raw)
        except ValidationError as error:
            raise EmolensError(f"model card {card_path} is malformed: {_first_problem(error)}; "
                               f"re-export the model") from None
        crop = schema.crop
        card = cls(card_path=card_path, model_path=card_path.parent / schema.model.file, sha256=schema.model.sha256,
                   labels=tuple(schema.labels), input_name=schema.input.name,
                   input_hw=(schema.input.height, schema.input.width), channels=schema.input.channels,
                   output_name=schema.output.name,
                   crop=CropGeometry(scale=crop.scale, offset_x=crop.offset_x, offset_y=crop.offset_y, roll=crop.roll),
                   info=raw)
        if verify:
            card.verify()
        return card

    def verify(self) -> None:
        """Check that the ONNX file exists and matches the card's sha256 (the graph is checked when a session
        opens it: ``open_session``)."""
        if not self.model_path.is_file():
            raise EmolensError(f"emotion model not found: {self.model_path}; reinstall emolens "
                               f"or pass --model with a trained .onnx")
        if sha256_of(self.model_path) != self.sha256:
            raise EmolensError(f"emotion model {self.model_path} does not match its card (sha256 differs): "
                               f"the file is corrupt or belongs to another card; reinstall or re-export it")

    def open_session(self, options: ort.SessionOptions | None = None,
                     providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> ort.InferenceSession:
        """An ONNX Runtime session on the model, its graph checked against the card: the one place a
        session is made, so the model is read once per classifier.

        Raises:
            EmolensError: ONNX Runtime cannot load the file, or its input or output does not fit the card.
        """
        import onnxruntime as ort  # only here: the card itself is light to import

        if options is None:
            options = ort.SessionOptions()
            options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.model_path), options, providers=list(providers))
        except Exception as error:  # ONNX Runtime raises several private exception types
            raise EmolensError(f"cannot load emotion model {self.model_path}: {str(error).splitlines()[0]}") from None
        self._check_graph(session)
        return session

    def _check_graph(self, session: ort.InferenceSession) -> None:
        """The graph's input (name, NHWC shape, dtype) and output (name, one score per label) against the card."""
        where = f"model card {self.card_path} does not fit {self.model_path.name}"
        inputs = {node.name: node for node in session.get_inputs()}
        outputs = {node.name: node for node in session.get_outputs()}
        if self.input_name not in inputs:
            raise EmolensError(f"{where}: input.name is {self.input_name!r}, the graph's input is "
                               f"{', '.join(map(repr, inputs))}")
        if self.output_name not in outputs:
            raise EmolensError(f"{where}: output.name is {self.output_name!r}, the graph's output is "
                               f"{', '.join(map(repr, outputs))}")
        pixels, probs = inputs[self.input_name], outputs[self.output_name]
        dtype = self.info["input"]["dtype"]
        if pixels.type != f"tensor({dtype})":
            raise EmolensError(f"{where}: input.dtype is {dtype!r}, the graph takes {pixels.type}")
        expected = (*self.input_hw, self.channels)
        if len(pixels.shape) != 4 or any(isinstance(got, int) and got != want
                                         for got, want in zip(pixels.shape[1:], expected)):
            raise EmolensError(f"{where}: input.height, width, channels are {expected}, the graph takes "
                               f"{list(pixels.shape)} (batch, height, width, channels)")
        if probs.type != "tensor(float)" or len(probs.shape) != 2:
            raise EmolensError(f"{where}: the graph's output {self.output_name!r} is {probs.type} {list(probs.shape)}, "
                               f"not float scores (batch, labels)")
        if isinstance(probs.shape[1], int) and probs.shape[1] != len(self.labels):
            raise EmolensError(f"{where}: labels has {len(self.labels)} names, the graph returns {probs.shape[1]} "
                               f"scores per face")
