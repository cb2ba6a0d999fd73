"""Reproduce the face-detector model files from the PyPI wheel ``mediapipe==0.10.21``.

mediapipe 1.x ships no model files, but its 0.10.21 wheel holds the BlazeFace models
(Apache-2.0). This script downloads that wheel with pip, extracts the models next to
this file and checks them against the sha256 recorded in ``face_detector.json``::

    python models/fetch_detector.py
"""

from __future__ import annotations

import json
import sys

from wheel_models import HERE, extract_models

if __name__ == "__main__":
    version = json.loads((HERE / "face_detector.json").read_text())["wheel_version"]
    sys.exit(extract_models("face_detector.json", f"mediapipe=={version}",
                            ("--python-version", "3.11", "--platform", "manylinux_2_28_x86_64")))
