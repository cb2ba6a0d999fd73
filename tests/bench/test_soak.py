"""The soak benchmark: memory stays flat over passes of real faces, and the benchmark fails when it does not."""

from __future__ import annotations

import pytest

from emolens.bench.soak import LIMIT_PCT, SoakResult

from ..test_cli import emolens


@pytest.mark.parametrize(("rss_mib", "growth"), [
    ([200, 190, 200, 200, 201, 199, 200, 200, 200, 200], 0.0),  # warm-up, then flat: a swing is not growth
    ([200, 100, 100, 100, 110, 110, 110], 10.0),  # early median 100, late 110
    ([300, 100, 100, 100, 90, 90, 90], -10.0),
])
def test_growth_compares_the_medians_of_the_early_and_late_passes(rss_mib, growth):
    result = SoakResult(minutes=1, passes=len(rss_mib), frames=0, warmup_passes=1, rss=[m << 20 for m in rss_mib],
                        frame_ms=[])
    assert result.growth_pct == pytest.approx(growth)


@pytest.mark.slow
def test_a_short_soak_on_real_faces_stays_under_the_limit(tmp_path):
    """CI's short version of ``emolens bench soak`` (the README's figure comes from a long run)."""
    out = tmp_path / "soak.md"
    result = emolens("bench", "soak", "--minutes", "0.5", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"limit {LIMIT_PCT:g}%): pass" in result.stderr
    table = out.read_text()
    assert "| minutes | passes (inputs) |" in table and "pass |" in table
