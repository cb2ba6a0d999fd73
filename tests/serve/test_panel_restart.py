"""A remote panel's session survives the service restarting: ``emolens serve --study`` as a real process, stopped
(SIGTERM, or killed with SIGKILL) while a participant streams over a real WebSocket, then started again on the
same study. The rows already recorded are on disk, the session is marked incomplete at once, and the
participant's page reconnects with the same key and goes on into the same session.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .test_panels import BASELINE_S, FPS, STIMULUS_S, consent, face_jpeg, join, new_study, ws_url

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from emolens.bench.serve import start_server  # noqa: E402
from emolens.study.invites import create_invites  # noqa: E402
from emolens.study.sessions import read_sessions  # noqa: E402

STOPPED_AT_S = 0.8  # the stimulus time at which the service stops


@pytest.fixture()
def study(tmp_path) -> Path:
    return new_study(tmp_path)


def send(ws, phase: dict, t_s: float) -> dict:
    time.sleep(1 / 25)  # under the 30 frames a second a participant may send
    ws.send(json.dumps(phase))
    ws.send(face_jpeg(t_s))
    return json.loads(ws.recv(timeout=30))


def stimulus_frames(ws, from_s: float, to_s: float) -> list[float]:
    """The page playing the stimulus from ``from_s`` to ``to_s``: the currentTimes the server recorded."""
    recorded = []
    for index in range(int(STIMULUS_S * FPS)):
        t_s = index / FPS + 0.013  # a player's currentTime is not on the frame grid
        if from_s <= t_s < to_s:
            answer = send(ws, {"phase": "stimulus", "stimulus": "ad_a", "t_s": t_s}, BASELINE_S + t_s)
            if answer["recorded"]:
                recorded.append(t_s)
    return recorded


def stop(process, how: signal.Signals) -> None:
    process.send_signal(how)
    process.wait(timeout=30)
    process.stdout.close()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_participant_resumes_the_same_session_after_the_service_restarts(study, how):
    (_, code), = create_invites(study, 1)
    process, url = start_server("--study", str(study))
    try:
        key = consent(url, "adtest", join(url, "adtest", code=code)["key"])["key"]
        with connect(ws_url(url, "adtest"), subprotocols=["emolens", f"panel.{key}"]) as ws:
            assert all(send(ws, {"phase": "baseline", "t_s": i / FPS}, i / FPS)["recorded"]
                       for i in range(int(BASELINE_S * FPS)))
            first = stimulus_frames(ws, 0.0, STOPPED_AT_S)
            stop(process, how)  # while the page is connected
            with pytest.raises(ConnectionClosed):
                send(ws, {"phase": "stimulus", "stimulus": "ad_a", "t_s": STOPPED_AT_S}, STOPPED_AT_S)
        assert list((study / "sessions").glob(".P01.recording.csv")), "the recording in progress is on disk"

        process, url = start_server("--study", str(study))  # the same study, a new port: the page's host
        (left, timeline), = read_sessions(study)  # written at the start, before the participant is back
        assert (left.participant, left.complete) == ("P01", False)
        np.testing.assert_allclose(pd.read_csv(timeline)["stimulus_t_s"].dropna(), first, atol=1e-3)

        # The page reconnects with the key it holds, its player having gone on meanwhile; a frame from
        # before where the recording stopped is not recorded twice.
        with connect(ws_url(url, "adtest"), subprotocols=["emolens", f"panel.{key}"]) as ws:
            assert send(ws, {"phase": "stimulus", "stimulus": "ad_a", "t_s": first[-1]}, 1.0)["recorded"] is False
            rest = stimulus_frames(ws, STOPPED_AT_S + 0.2, STIMULUS_S)
            ws.send(json.dumps({"phase": "done"}))
            assert json.loads(ws.recv(timeout=30))["done"] is True
        assert join(url, "adtest", code=code)["state"] == "done"
    finally:
        process.terminate()
        process.wait(timeout=30)
    (info, timeline), = read_sessions(study)
    assert (info.participant, info.number, info.complete) == ("P01", 1, True)
    rows = pd.read_csv(timeline)
    assert rows["frame"].is_unique and rows["time_s"].is_monotonic_increasing
    assert len(rows) == BASELINE_S * FPS + len(first) + len(rest)
    np.testing.assert_allclose(rows["stimulus_t_s"].dropna(), first + rest, atol=1e-3)
    assert rest and rest[0] > first[-1] and (rows["dominant"] == "happy").mean() > 0.9
    assert not list((study / "sessions").glob(".*"))  # the recordings of both runs joined the session, then went
