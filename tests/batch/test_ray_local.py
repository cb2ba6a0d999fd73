"""``emolens batch --engine ray`` with no --address: the command starts its own local Ray cluster (127.0.0.1
only) and shuts it down. Apart from test_batch.py, whose module-wide cluster must not be running meanwhile."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from emolens.bench.media import write_video

pytest.importorskip("ray", reason="the Ray engine needs the 'batch' extra (ray)")
pytestmark = pytest.mark.slow


def test_the_ray_engine_starts_a_local_cluster_of_its_own(tmp_path):
    clip = write_video(tmp_path / "one.mp4", (320, 240), faces=1, seconds=1.0, fps=10)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "emolens", "batch", str(clip), "--out", str(out),
                             "--engine", "ray", "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 analysed now, 0 already done, 0 failed" in result.stderr
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["status"].tolist() == ["done"] and manifest["frames"].tolist() == [10]
