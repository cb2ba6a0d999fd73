"""Reproduce the face-detector model files from the PyPI wheel ``mediapipe==0.10.21``.

mediapipe 1.x ships no model files, but its 0.10.21 wheel holds the BlazeFace models
(Apache-2.0). This script downloads that wheel with pip, extracts the models next to
this file and checks them against the sha256 recorded in ``face_detector.json``::

    python models/fetch_detector.py
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    provenance = json.loads((HERE / "face_detector.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                        f"mediapipe=={provenance['wheel_version']}", "-d", folder], check=True)
        wheel = next(Path(folder).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for model in provenance["models"]:
                data = archive.read(model["wheel_path"])
                digest = hashlib.sha256(data).hexdigest()
                if digest != model["sha256"]:
                    print(f"{model['file']}: sha256 {digest} differs from the recorded {model['sha256']}")
                    return 1
                (HERE / model["file"]).write_bytes(data)
                print(f"wrote {HERE / model['file']} ({len(data):,} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
