"""The shape of every answer, as pydantic models (they are the OpenAPI schemas at ``/docs``).

Probabilities are objects keyed by label in the model card's order (JSON keeps that order),
so a client reads ``face["probs"]["happy"]`` and never needs a separate label list.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from emolens.types import Faces


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: one line saying what is wrong and, where possible, what to do."""

    error: str = Field(examples=["upload too large: the limit is 20971520 bytes (20 MiB)"])


class Box(BaseModel):
    """A face box in the image's pixels: left, top, width, height."""

    x: float
    y: float
    w: float
    h: float


class Face(BaseModel):
    """One face of an image."""

    face_id: int = Field(description="1..n in an image; a stable track ID in a stream")
    box: Box
    det_score: float = Field(description="detector confidence, 0..1")
    keypoints: list[tuple[float, float]] = Field(
        description="pixels: right eye, left eye, nose tip, mouth, right ear, left ear (the person's right)")
    probs: dict[str, float] = Field(description="the model's probabilities by label, in the card's order; sum 1")
    dominant: str = Field(description="the most probable label")
    behaviour: Behaviour | None = Field(None, description="with emolens serve --behaviour")


class Behaviour(BaseModel):
    """With ``emolens serve --behaviour``: what the landmarker read of a face (null where it could not)."""

    yaw: float | None = Field(description="head pose in degrees (signs as in the CSV timeline)")
    pitch: float | None
    roll: float | None
    eye_open_r: float | None = Field(description="openness 0..1 of the person's right eye")
    eye_open_l: float | None
    blink: float | None = Field(description="1 where a blink ends at this frame, else 0")
    attentive: float | None = Field(description="1 when the head points at the camera, else 0")
    expressiveness: float | None = Field(description="0..1, how far the face is from rest")
    aus: dict[str, float | None] = Field(description="action-unit intensities 0..1 by code (AU01 ...)")


class StreamFace(Face):
    """One face of a streamed frame: ``probs`` are smoothed over time (as in the window), ``raw`` are not."""

    raw: dict[str, float]


class Timings(BaseModel):
    decode_ms: float
    inference_ms: float = Field(description="detect, crop and classify")


class ImageResult(BaseModel):
    """``POST /v1/images``: every face found in the image."""

    width: int
    height: int
    faces: list[Face]
    timings: Timings


class StreamMessage(BaseModel):
    """``WS /v1/stream``: one per processed frame; frames that arrived while one was processed are
    dropped except the newest (latest wins)."""

    frame: int = Field(description="0-based index of the frame among those this connection sent")
    t_s: float = Field(description="seconds since the connection opened, when the frame arrived")
    faces: list[StreamFace]
    dropped: int = Field(description="frames dropped so far on this connection")
    latency_ms: float = Field(description="from the frame's arrival to this message")


class StreamError(BaseModel):
    """``WS /v1/stream``: a frame that could not be used; the stream goes on."""

    frame: int
    error: str


JobState = Literal["queued", "running", "done", "failed"]


class JobStatus(BaseModel):
    """``GET /v1/jobs/{id}``: where a video job stands."""

    id: str
    state: JobState
    progress: float = Field(description="0..1, by frames (1 once done)")
    frames_done: int
    frames_total: int = Field(description="from the video's header; 0 when it does not say")
    faces: int = Field(description="face rows written so far")
    error: str | None = None
    created: datetime
    finished: datetime | None = None
    expires: datetime | None = Field(None, description="when the job's folder will be deleted")
    timeline: str | None = Field(None, description="URL of the CSV timeline, once done")
    report: str | None = Field(None, description="URL of the HTML report, once done")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    ready: bool
    provider: str | None = Field(None, description="CPU or CUDA: the ONNX Runtime provider that runs")
    device: str | None = Field(None, description="the one line naming the model and where it runs")
    workers: int
    detail: str | None = None


class ModelInfo(BaseModel):
    """``GET /v1/model``: the model card's contract and figures."""

    name: str
    version: str = Field(description="the emolens package version serving it")
    labels: list[str]
    sha256: str
    input: dict
    metrics: dict
    quantization: dict | None = None
    provider: str


def face_dicts(faces: Faces, labels: tuple[str, ...], stream: bool = False) -> list[dict]:
    """``faces`` as ``Face`` (or, with ``stream``, ``StreamFace``) dictionaries."""
    out = []
    shown = faces.smoothed if stream else faces.probs
    for index in range(len(faces)):
        x, y, w, h = (round(float(v), 1) for v in faces.xywh[index])
        probs = {label: round(float(p), 5) for label, p in zip(labels, shown[index])}
        face = {"face_id": int(faces.face_id[index]), "box": {"x": x, "y": y, "w": w, "h": h},
                "det_score": round(float(faces.det_score[index]), 4),
                "keypoints": [(round(float(px), 1), round(float(py), 1)) for px, py in faces.keypoints[index]],
                "probs": probs, "dominant": labels[int(shown[index].argmax())]}
        if stream:
            face["raw"] = {label: round(float(p), 5) for label, p in zip(labels, faces.probs[index])}
        if faces.head_pose is not None:
            face["behaviour"] = _behaviour(faces, index)
        out.append(face)
    return out


def _behaviour(faces: Faces, index: int) -> dict:
    """Face ``index``'s behaviour fields as ``Behaviour``'s dictionary (NaN, where unread, as null)."""
    from emolens.behaviour.signals import AU_NAMES

    def number(value) -> float | None:
        value = float(value)
        return None if math.isnan(value) else round(value, 4)

    (yaw, pitch, roll), (right, left) = faces.head_pose[index], faces.eye_open[index]
    return {"yaw": number(yaw), "pitch": number(pitch), "roll": number(roll), "eye_open_r": number(right),
            "eye_open_l": number(left), "blink": number(faces.blink[index]),
            "attentive": number(faces.attentive[index]), "expressiveness": number(faces.expressiveness[index]),
            "aus": {name: number(value) for name, value in zip(AU_NAMES, faces.aus[index])}}
