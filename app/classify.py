"""Emotion classification with ONNX Runtime: all faces of a frame in one batched call.

The ONNX graph takes raw ``uint8`` pixels (normalisation is inside it) and returns
probabilities in the card's label order.

Example::

    classifier = Classifier(ModelCard.load(), device="auto")
    print(classifier.describe())          # "emotion model emotion.onnx on CPU (no CUDA GPU found)"
    probs = classifier.predict(crops)     # float32 (n, 7), rows sum to 1
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

from emolens.card import ModelCard
from emolens.errors import EmolensError, SettingError
from emolens.native import captured_native_stderr
from emolens.options import DEVICES

_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
_log = logging.getLogger(__name__)


class Classifier:
    """An ONNX Runtime session over the card's model.

    Args:
        device: ``"cpu"``, ``"cuda"`` (fail if CUDA does not load) or ``"auto"`` (CUDA when it
            really loads, else CPU).
        threads: CPU threads for one call (0 = ONNX Runtime's default, all cores).

    Attributes:
        provider: ``"CPU"`` or ``"CUDA"``, the one that runs.
        fallback_reason: on a CPU fallback from ``auto``, why, in a few plain words
            ("no CUDA GPU found"); the library's own message goes to the ``emolens.classify``
            logger (``emolens --verbose`` shows it).
    """

    def __init__(self, card: ModelCard, device: str = "auto", threads: int = 0):
        if device not in DEVICES:
            raise EmolensError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        self.card = card
        self.fallback_reason = ""
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        if device in ("auto", "cuda"):
            self.session, detail = _try_cuda(card, options)
            if self.session.get_providers()[0] != _CUDA:
                if device == "cuda":
                    raise SettingError(f"{{device}} cuda: CUDA is not usable here ({detail}); use {{device}} auto or cpu")
                self.fallback_reason = _plain_reason(detail)
                _log.info("CUDA unavailable, the emotion model runs on the CPU: %s", detail)
        else:
            self.session = card.open_session(options, (_CPU,))
        self.provider = "CUDA" if self.session.get_providers()[0] == _CUDA else "CPU"

    def describe(self) -> str:
        """One line saying which provider runs and, on a CPU fallback, why."""
        reason = f" ({self.fallback_reason})" if self.fallback_reason else ""
        return f"emotion model {self.card.model_path.name} on {self.provider}{reason}"

    def predict(self, crops: np.ndarray) -> np.ndarray:
        """``float32 (n, K)`` probabilities for ``uint8 (n, H, W, C)`` crops."""
        if len(crops) == 0:
            return np.zeros((0, len(self.card.labels)), np.float32)
        return self.session.run([self.card.output_name], {self.card.input_name: crops})[0]


def _try_cuda(card: ModelCard, options: ort.SessionOptions) -> tuple[ort.InferenceSession, str]:
    """A session asked to run on CUDA, and why it does not where it fell back to the CPU (the library's
    reason); its error log stays quiet. A fallen-back session is a working CPU session: it is kept."""
    if _CUDA not in ort.get_available_providers():
        return card.open_session(options, (_CPU,)), _NO_PROVIDER
    with captured_native_stderr() as log:
        session = card.open_session(options, (_CUDA, _CPU))
    if session.get_providers()[0] == _CUDA:
        return session, ""
    errors = [line for line in log if "rror" in line]
    detail = errors[0].split("with error:")[-1].split("]")[-1].strip(" :") if errors else "its provider did not load"
    return session, detail[:300]


_NO_PROVIDER = "this onnxruntime build has no CUDA provider"


def _plain_reason(detail: str) -> str:
    """Why CUDA is not used, as a user reads it: no GPU is the common case and no error at all."""
    if not _cuda_gpu_present():
        return "no CUDA GPU found"
    if detail == _NO_PROVIDER:
        return "this onnxruntime has no CUDA support; pip install onnxruntime-gpu"
    return "a CUDA GPU is present but CUDA did not load; --verbose says why"


def _cuda_gpu_present() -> bool:
    """Whether an NVIDIA GPU with its driver is installed (the driver's files, or nvidia-smi elsewhere)."""
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia/version").exists() or any(Path("/dev").glob("nvidia[0-9]*"))
    return shutil.which("nvidia-smi") is not None
