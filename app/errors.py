"""The one exception type that the CLI and the GUI turn into one readable line, and its kind that names a setting."""

from __future__ import annotations

import re
from collections.abc import Callable


class EmolensError(Exception):
    """A problem the user can fix (bad input, missing model, unwritable output).

    The message is a complete sentence that says what is wrong and, where possible, what to
    do; the CLI prints it on one line and exits non-zero, the GUI shows it in the window.
    """


class SettingError(EmolensError, ValueError):
    """A setting the caller chose is wrong or conflicts with a file. The message names settings as
    ``{name}`` (their Python names: ``{every}``, ``{overwrite}``, ``{output}``): a notebook reads
    ``every must be 1 or more``, the command line ``--every must be 1 or more`` (``cli`` names the flags).

    Only the names in ``SETTINGS`` are replaced, so a path holding braces is shown as it is.
    """

    def __init__(self, template: str):
        self.template = template
        super().__init__(self.naming(lambda name: name))

    def naming(self, name_of: Callable[[str], str]) -> str:
        """The message with each setting named by ``name_of`` (a flag, say)."""
        return _SETTING.sub(lambda match: name_of(match[1]) if match[1] in SETTINGS else match[0], self.template)


SETTINGS = frozenset({
    # AnalyzerOptions' fields (emolens.options)
    "model", "device", "detector", "tiles", "squares", "min_confidence", "second_look", "max_faces", "detect", "max_gap_s",
    "tau_s", "threads", "behaviour", "behaviour_hz", "behaviour_budget_hz", "attention_yaw_deg",
    "attention_pitch_deg",
    # what analyze, report, evaluate and batch take besides
    "output", "overwrite", "video", "markers", "landmarks", "every", "fer2013_labels", "out", "engine", "workers",
    "address",
    # emolens serve
    "token_file", "port", "jobs_dir", "allow_host", "allow_origin", "job_ttl", "queue", "max_image_mb", "max_video_mb",
    "max_megapixels", "max_video_s", "max_disk_mb", "read_timeout", "stream_idle",
    # emolens study
    "stimulus", "baseline", "participant", "stimulus_at", "stimulus_at_marker", "order", "sync", "count",
})
_SETTING = re.compile(r"\{(\w+)\}")


def error_line(error: BaseException) -> str:
    """One line for the user: an ``EmolensError``'s own message; for any other error its type and
    first line, so that an OpenCV or ONNX Runtime error still says what failed (``cv2.error: ...``)."""
    if isinstance(error, EmolensError):
        return str(error)
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    kind = type(error)
    package = kind.__module__.split(".")[0]
    name = kind.__name__ if package == "builtins" else f"{package}.{kind.__name__}"  # cv2.error, not error
    return f"unexpected error ({name})" + (f": {text}" if text else "")
