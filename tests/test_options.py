"""The pipeline's options: light to import, checked once, named as each front end names them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from emolens.errors import EmolensError
from emolens.options import AnalyzerOptions, OptionError


def modules_loaded_by(code: str) -> set[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print(" ".join(name for name in ("mediapipe", "onnxruntime", "cv2", "numpy", "PySide6", "fastapi")
                       if name in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.parametrize("command", [[], ["analyze"], ["serve"], ["batch"], ["report"], ["evaluate"]])
def test_help_loads_neither_mediapipe_nor_onnx_runtime(command):
    """Before: ``emolens --help`` imported the pipeline (for its option defaults), so MediaPipe and ONNX Runtime."""
    loaded = modules_loaded_by(f"""
        from emolens.cli import main
        try:
            main({[*command, "--help"]!r})
        except SystemExit:
            pass
    """)
    assert not loaded & {"mediapipe", "onnxruntime", "cv2"}, loaded


def test_importing_the_options_loads_nothing_heavy():
    assert modules_loaded_by("import emolens.options") == set()


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("tiles", 0, "must be between 1 and 8, got 0"),
    ("detect", "every", "must be one of tracked, full, got 'every'"),
    ("tiles", 9, "must be between 1 and 8, got 9"),
    ("min_confidence", float("nan"), "must be between 0 and 1, got nan"),
    ("max_faces", -1, "must be 0 or more, got -1"),
    ("tau_s", float("inf"), "must be a number of seconds, 0 or more, got inf"),
    ("max_gap_s", -0.5, "must be a number of seconds, 0 or more, got -0.5"),
    ("behaviour_hz", -1.0, "must be 0 or more, got -1.0"),
    ("behaviour_budget_hz", float("nan"), "must be 0 or more, got nan"),
    ("device", "tpu", "must be one of auto, cpu, cuda, got 'tpu'"),
    ("detector", "long", "must be one of short, full, got 'long'"),
    ("threads", -2, "must be 0 or more, got -2"),
    ("attention_yaw_deg", 0.0, "must be above 0 and at most 90 degrees, got 0.0"),
])
def test_an_option_out_of_range_is_refused_naming_the_field(field, value, problem):
    with pytest.raises(OptionError) as raised:
        AnalyzerOptions(**{field: value})
    assert (raised.value.field, raised.value.problem) == (field, problem)
    assert str(raised.value) == f"{field} {problem}"
    assert isinstance(raised.value, EmolensError) and isinstance(raised.value, ValueError)


def test_the_defaults_are_valid():
    assert AnalyzerOptions().tiles == 1
