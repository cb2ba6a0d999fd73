"""``emolens bench panels``: its simulated participant speaks the panel protocol the real service answers, and its
figures (frames kept, stimulus time) agree with the session the service wrote."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

from emolens.bench.media import write_video  # noqa: E402
from emolens.bench.panels import FPS, check_timeline, demo_frames, met, summarise, take_part  # noqa: E402
from emolens.bench.serve import start_server  # noqa: E402
from emolens.study.file import create_study  # noqa: E402
from emolens.study.invites import create_invites  # noqa: E402
from emolens.study.sessions import read_sessions  # noqa: E402

STIMULUS_S = 2.0


@pytest.mark.slow
def test_one_simulated_participant_is_recorded_whole_at_the_times_it_sent(tmp_path):
    study = tmp_path / "study"  # the bench's participants join the study served as "study"
    create_study(study, [str(write_video(tmp_path / "ad.mp4", (160, 120), faces=1, seconds=STIMULUS_S, fps=5.0))])
    (_, code), = create_invites(study, 1)
    process, url = start_server("--study", str(study), token="bench-token")
    try:
        participant = asyncio.run(take_part(url, code, demo_frames(), STIMULUS_S))
    finally:
        process.terminate()
        process.wait(timeout=30)
    check_timeline(study, participant)
    row = summarise(1, [participant], STIMULUS_S)
    assert abs(len(participant.sent_t_s) - STIMULUS_S * FPS) <= 2 and all(participant.recorded)
    assert len(participant.latencies_s) == len(participant.sent_t_s) == len(participant.sync_ms)
    assert participant.share == 1.0 and row["sync_p95"] < 1.0 and row["refused"] == {}
    assert met(row) == (row["latency_p95"] <= 100.0)
    (info, _), = read_sessions(study)
    assert info.complete and info.participant == participant.id
