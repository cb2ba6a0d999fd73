"""Remote panels (``emolens serve --study DIR``) over real HTTP and WebSocket: a real server, the real model,
frames of a real face (the astronaut, drifting), participants as real clients (httpx, websockets).

The browser itself (consent, camera check and playback in headless Chromium) is tested in
``test_panel_browser.py``; here the protocol, the files written and the refusals are checked directly.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from .test_serve import TOKEN, assert_error, running

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

import httpx  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from emolens.bench.media import face_tiles, render_frame  # noqa: E402
from emolens.cli import main  # noqa: E402
from emolens.serve.config import ServeConfig  # noqa: E402
from emolens.serve.panel import (  # noqa: E402
    MAX_FPS,
    NO_FACE,
    QUEUE_FRAMES,
    WaitingFrames,
    camera_problems,
)
from emolens.study.file import create_study  # noqa: E402
from emolens.study.invites import create_invites, load_invites  # noqa: E402
from emolens.study.sessions import read_sessions  # noqa: E402

FPS = 10
STIMULUS_S = 2.0
BASELINE_S = 1.0


def face_jpeg(t_s: float, size_wh=(640, 480)) -> bytes:
    ok, data = cv2.imencode(".jpg", render_frame(face_tiles(1), size_wh, t_s))
    assert ok
    return data.tobytes()


def write_webm(path: Path, seconds: float, fps: int = FPS) -> Path:
    """A stimulus browsers play (VP8 WebM) of a real face."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (320, 240))
    for index in range(int(seconds * fps)):
        writer.write(render_frame(face_tiles(1), (320, 240), index / fps))
    writer.release()
    return path


def new_study(tmp_path: Path) -> Path:
    """The study ``adtest``: a baseline, then one stimulus of a real face."""
    folder = tmp_path / "adtest"
    create_study(folder, [str(write_webm(tmp_path / "ad_a.webm", STIMULUS_S))], baseline_s=BASELINE_S, seed=3)
    return folder


@pytest.fixture()
def study(tmp_path) -> Path:
    return new_study(tmp_path)


def ws_url(url: str, study: str) -> str:
    return url.replace("http://", "ws://") + f"/panel/{study}/ws"


def join(url: str, study: str, **body) -> dict:
    response = httpx.post(f"{url}/panel/{study}/join", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def consent(url: str, study: str, key: str) -> dict:
    response = httpx.post(f"{url}/panel/{study}/consent", json={"key": key, "agreed": True})
    assert response.status_code == 200, response.text
    return response.json()


def stream(ws, phase: dict, t_s: float) -> dict:
    time.sleep(1 / 25)  # under the 30 frames a second a participant may send
    ws.send(json.dumps(phase))
    ws.send(face_jpeg(t_s))
    return json.loads(ws.recv(timeout=30))


def watch(url: str, study: str, key: str, until_s: float | None = None, done: bool = True,
          resumed_at: float | None = None) -> list[float]:
    """A participant's page: the camera check, then the baseline and the stimulus at FPS; returns the stimulus
    times recorded. Stops at ``until_s`` of the stimulus (a participant who leaves) unless ``done``. A page
    that starts over after the session stopped at ``resumed_at`` of the stimulus gets nothing before it recorded."""
    recorded = []
    with connect(ws_url(url, study), subprotocols=["emolens", f"panel.{key}"]) as ws:
        answers = [stream(ws, {"phase": "check"}, index / FPS) for index in range(6)]
        assert answers[-1]["check"] == {"passed": True, "problems": []}, answers
        for index in range(int(BASELINE_S * FPS)):
            answer = stream(ws, {"phase": "baseline", "t_s": index / FPS}, index / FPS)
            assert answer["recorded"] is (resumed_at is None), answer
        for index in range(int(STIMULUS_S * FPS)):
            t_s = index / FPS + 0.013  # a player's currentTime is not on the frame grid
            if until_s is not None and t_s > until_s:
                return recorded
            answer = stream(ws, {"phase": "stimulus", "stimulus": "ad_a", "t_s": t_s}, BASELINE_S + t_s)
            assert answer["recorded"] is (resumed_at is None or t_s > resumed_at), answer
            if answer["recorded"]:
                assert answer["faces"] == 1, answer
                recorded.append(t_s)
        if done:
            ws.send(json.dumps({"phase": "done"}))
            assert json.loads(ws.recv(timeout=30))["done"] is True
    return recorded


def wait_until_everyone_left(url: str, study: str, headers: dict | None = None) -> dict:
    """The dashboard's status once no participant is connected (their sessions are written by then)."""
    deadline = time.monotonic() + 30
    while (status := httpx.get(f"{url}/studies/{study}/status", headers=headers).json())["connected"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    return status


def test_two_participants_are_recorded_in_stimulus_time_and_both_are_in_the_report(study):
    invites = create_invites(study, 2)
    with running(ServeConfig(token=TOKEN, studies=(study,))) as url:
        keys = [join(url, "adtest", code=code)["key"] for _, code in invites]
        joined = [consent(url, "adtest", key) for key in keys]
        assert [j["participant"] for j in joined] == ["P01", "P02"] and joined[0]["state"] == "watching"
        assert joined[0]["stimuli"] == [{"name": "ad_a", "kind": "video", "duration_s": STIMULUS_S,
                                         "url": "/panel/adtest/stimuli/ad_a"}]
        sent: dict[str, list[float]] = {}
        threads = [threading.Thread(target=lambda k=key: sent.setdefault(k, watch(url, "adtest", k))) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        status = wait_until_everyone_left(url, "adtest", auth)
        report = httpx.post(f"{url}/studies/adtest/report", headers=auth)
        assert report.status_code == 200, report.text
        page = httpx.get(f"{url}{report.json()['report']}", headers=auth)
    assert status["done"] == 2 and status["connected"] == 0
    assert [(p["participant"], p["progress"], p["face_found"]) for p in status["participants"]] == \
        [("P01", 1.0, 1.0), ("P02", 1.0, 1.0)]
    assert "scores" in status["consent"] and "no video" in status["retention"]
    sessions = read_sessions(study)
    assert [(info.participant, info.complete, info.order) for info, _ in sessions] == \
        [("P01", True, ["ad_a"]), ("P02", True, ["ad_a"])]
    for info, timeline in sessions:
        rows = pd.read_csv(timeline)
        shown = rows[rows["stimulus"] == "ad_a"]
        # Every frame sent is recorded, at the stimulus time the page gave (to the millisecond).
        np.testing.assert_allclose(shown["stimulus_t_s"], sent[keys[info.number - 1]], atol=1e-3)
        assert rows["stimulus"].isna().sum() == BASELINE_S * FPS  # the baseline's rows
        assert shown["face_id"].notna().all() and (shown["dominant"] == "happy").mean() > 0.9
        assert "ad_a starts" in rows["marker"].dropna().tolist()[0]
    assert not list((study / "sessions").glob(".*"))  # the recordings in progress are gone; no frame was kept
    assert page.status_code == 200 and "P01" in page.text and "P02" in page.text
    quality = pd.read_csv(study / "report" / "sessions.csv")
    assert sorted(quality["participant"]) == ["P01", "P02"]
    consented = pd.read_csv(study / "consent.csv")
    assert consented[["participant", "answer"]].values.tolist() == [["P01", "yes"], ["P02", "yes"]]


def test_a_participant_who_drops_resumes_the_same_session_and_one_who_leaves_is_incomplete(study):
    (_, code), = create_invites(study, 1)
    with running(ServeConfig(studies=(study,))) as url:
        key = consent(url, "adtest", join(url, "adtest", code=code)["key"])["key"]
        first = watch(url, "adtest", key, until_s=0.8, done=False)  # the connection drops
        wait_until_everyone_left(url, "adtest")
        left = read_sessions(study)
        again = join(url, "adtest", code=code)  # the link opened again: the same session, where it stopped
        assert again["participant"] == "P01" and again["state"] == "watching"
        assert again["resume"]["stimulus"] == 0 and again["resume"]["t_s"] == pytest.approx(first[-1], abs=1e-3)
        rest = watch(url, "adtest", key, resumed_at=first[-1])
        room = consent(url, "adtest", join(url, "adtest")["key"])  # on localhost without a token: a room session
        watch(url, "adtest", room["key"], until_s=0.5, done=False)
        wait_until_everyone_left(url, "adtest")
    assert [(info.participant, info.complete) for info, _ in left] == [("P01", False)]
    sessions = {info.participant: (info, timeline) for info, timeline in read_sessions(study)}
    assert sessions["P01"][0].complete and not sessions[room["participant"]][0].complete
    shown = pd.read_csv(sessions["P01"][1]).dropna(subset=["stimulus"])
    # The frames sent again before where it stopped are not recorded twice: time only goes forward.
    np.testing.assert_allclose(shown["stimulus_t_s"], first + rest, atol=1e-3)
    assert sessions["P01"][0].number == 1 and sessions[room["participant"]][0].number == 2


def test_a_flood_of_frames_is_refused_explicitly_counted_and_never_queued_without_bound(study):
    (_, code), = create_invites(study, 1)
    flood = 400
    frame = face_jpeg(0.0)
    with running(ServeConfig(studies=(study,))) as url:
        key = consent(url, "adtest", join(url, "adtest", code=code)["key"])["key"]
        with connect(ws_url(url, "adtest"), subprotocols=["emolens", f"panel.{key}"]) as ws:
            for index in range(flood):  # as fast as the socket takes them, answers unread
                ws.send(json.dumps({"phase": "stimulus", "stimulus": "ad_a", "t_s": index / 1000}))
                ws.send(frame)
            answers, answered = [], 0
            while answered < flood:
                answers.append(json.loads(ws.recv(timeout=60)))
                answered += answers[-1].get("frames", 1)
        status = wait_until_everyone_left(url, "adtest")
    recorded = sum(answer["recorded"] for answer in answers)
    refused = [answer for answer in answers if "dropped" in answer]
    assert answered == flood and recorded + sum(answer["frames"] for answer in refused) == flood
    assert {answer["dropped"] for answer in refused} <= {f"over {QUEUE_FRAMES} frames wait",
                                                         f"over {MAX_FPS} frames in a second"}
    assert max(answer["frames"] for answer in refused) > 1  # refusals in a row: one answer that counts them
    assert 0 < recorded < flood
    assert status["participants"][0]["dropped"] == flood - recorded
    rows = pd.read_csv(read_sessions(study)[0][1])
    assert rows["frame"].nunique() == recorded


def test_what_waits_for_a_participant_stays_bounded_however_many_frames_are_refused():
    waiting = WaitingFrames()
    for index in range(QUEUE_FRAMES):
        waiting.put(({"phase": "stimulus", "stimulus": "ad_a", "t_s": index / 15}, b"jpeg", 0.0))
    for _ in range(10_000):
        waiting.refuse(f"over {QUEUE_FRAMES} frames wait")
    assert waiting.frames == QUEUE_FRAMES and len(waiting.items) == QUEUE_FRAMES + 1
    assert waiting.items[-1] == {"dropped": f"over {QUEUE_FRAMES} frames wait", "frames": 10_000}


def test_panels_refuse_other_origins_wrong_codes_used_codes_and_a_dashboard_without_the_token(study):
    (_, code), = create_invites(study, 1)
    assert code not in (study / "invites.json").read_text()  # only its hash is kept
    with running(ServeConfig(token=TOKEN, studies=(study,))) as url:
        assert httpx.get(f"{url}/panel/adtest").status_code == 200  # the page holds no data
        assert_error(httpx.post(f"{url}/panel/adtest/join", json={"code": code},
                                headers={"Origin": "https://attacker.example"}), 403, "cross-origin")
        # no token: no room
        assert_error(httpx.post(f"{url}/panel/adtest/join", json={}), 403, "link of your invitation")
        assert_error(httpx.post(f"{url}/panel/adtest/join", json={"code": "guess"}), 403, "not one of")
        assert_error(httpx.get(f"{url}/studies/adtest/status"), 401, "token")
        assert_error(httpx.get(f"{url}/panel/other"), 404, "no study 'other'")
        key = join(url, "adtest", code=code)["key"]
        assert_error(httpx.get(f"{url}/panel/adtest/stimuli/ad_a"), 403, "no session has this key")
        assert httpx.get(f"{url}/panel/adtest/stimuli/ad_a", headers={"X-Emolens-Key": key}).status_code == 200
        with pytest.raises(InvalidStatus):  # the WebSocket handshake from another site's page
            with connect(ws_url(url, "adtest"), subprotocols=[f"panel.{key}"], origin="https://attacker.example"):
                pass
        consent(url, "adtest", key)
        watch(url, "adtest", key)
        assert join(url, "adtest", code=code)["state"] == "done"  # the link again: the thank-you, no new session
        with pytest.raises(InvalidStatus):
            with connect(ws_url(url, "adtest"), subprotocols=[f"panel.{key}"]):
                pass
        for _ in range(10):
            httpx.post(f"{url}/panel/adtest/join", json={"code": "guess"})
        assert_error(httpx.post(f"{url}/panel/adtest/join", json={"code": code}), 429, "too many wrong codes")


def test_camera_check_says_why_a_picture_is_not_good_enough(analyzer):
    tiles = face_tiles(1)
    good = render_frame(tiles, (640, 480), 0.0)
    assert camera_problems(good, analyzer.analyze(good)) == []
    faces = analyzer.analyze(good)
    x0, y0, x1, y1 = faces.xyxy[0]  # the same face, as a box a third as high (the detector misses faces that small)
    small = faces.with_fields(xyxy=np.float32([[x0, y0, x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3]]))
    assert camera_problems(good, small) == ["your face is small in the picture: come closer to the camera"]
    dark = (good * 0.15).astype(np.uint8)
    assert "your face is too dark: light it from the front" in camera_problems(dark, analyzer.analyze(dark))
    empty = np.full_like(good, 96)
    assert camera_problems(empty, analyzer.analyze(empty)) == [NO_FACE]


def test_study_invite_prints_one_link_per_participant_and_keeps_only_hashes(study, capsys):
    assert main(["study", "invite", str(study), "--count", "3", "--url", "http://panel.lan:8000/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["P01", "P02", "P03"]
    assert all(line.split("\t")[1].startswith("http://panel.lan:8000/panel/adtest#code=") for line in lines)
    assert main(["study", "invite", str(study), "--count", "1"]) == 0
    assert capsys.readouterr().out.startswith("P04\t")
    assert sorted(load_invites(study)) == ["P01", "P02", "P03", "P04"]
    assert main(["study", "invite", str(study), "--count", "0"]) == 1
