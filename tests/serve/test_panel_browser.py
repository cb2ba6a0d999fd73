"""Remote panels in real headless Chromium against the real server: two participants at once, each with a fake
camera playing frames of a real face, through consent, the camera check and a short stimulus (real clicks
through the DevTools protocol); one reloads the page mid-way and resumes. Then the study report has both.
A participant whose service restarts while the stimulus plays ends the same session from the same page.
Set ``EMOLENS_SCREENSHOTS=1`` to also save ``assets/panel_participant.png`` and ``assets/panel_dashboard.png``.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path

import cv2
import pandas as pd
import pytest

from .test_browser import CHROMIUM, DevTools, chromium
from .test_panels import TOKEN, running, write_webm

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

import httpx  # noqa: E402

from emolens.bench.media import face_tiles, render_frame  # noqa: E402
from emolens.serve.config import ServeConfig  # noqa: E402
from emolens.serve.server import bind_socket  # noqa: E402
from emolens.study.file import create_study  # noqa: E402
from emolens.study.invites import create_invites  # noqa: E402
from emolens.study.sessions import read_sessions  # noqa: E402

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                                           "(Debian: apt-get install chromium)"), pytest.mark.slow]
ASSETS = Path(__file__).resolve().parents[2] / "assets"
STIMULUS_S = 4.0
# A browser whose autoplay policy refuses sound without a gesture (as Chromium's does by default, Safari's often).
BLOCK_SOUND = """(() => { const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    return this.muted || this.id !== 'stimulus' ? play.call(this)
      : Promise.reject(new DOMException('play() with sound needs a gesture', 'NotAllowedError')); }; })()"""


def face_y4m(path: Path, frames: int = 30, fps: int = 15) -> Path:
    """A one-face 640x480 camera (the astronaut, drifting) as YUV4MPEG2, which Chromium's fake camera plays."""
    tiles = face_tiles(1)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(frames):
            image = render_frame(tiles, (640, 480), index / fps)
            out.write(b"FRAME\n" + cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def click(page: DevTools, selector: str) -> None:
    """A real mouse click at the middle of the element (a user gesture: full screen is allowed)."""
    box = page.evaluate(f"(() => {{ const element = document.querySelector('{selector}'); "
                        f"element.scrollIntoView({{block: 'center'}}); const r = element.getBoundingClientRect(); "
                        f"return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
    page.call("Page.bringToFront")
    page.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
    for kind in ("mousePressed", "mouseReleased"):
        page.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


def test_two_participants_watch_in_chromium_one_reloads_and_the_report_has_both(tmp_path):
    study = tmp_path / "adtest"
    create_study(study, [str(write_webm(tmp_path / "ad_a.webm", STIMULUS_S))], baseline_s=1.0, seed=3)
    (_, first), (_, second) = create_invites(study, 2)
    camera = face_y4m(tmp_path / "face.y4m")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with running(ServeConfig(token=TOKEN, studies=(study,))) as url, \
            chromium(f"{url}/panel/adtest#code={first}", tmp_path / "one", camera) as one, \
            chromium(f"{url}/panel/adtest#code={second}", tmp_path / "two", camera) as two:
        # Two browsers, as two people have: Chromium pauses a silent video in a tab that is not in front.
        pages = (one, two)
        for page in pages:
            page.wait_for("window.emolensPanel && window.emolensPanel.phase === 'consent'")
            assert "no video" in page.evaluate("document.getElementById('consent-text').innerText")
            click(page, "#agree")
        for page in pages:
            page.wait_for("window.emolensPanel.checked === true")
        participant_png = one.screenshot()[1]
        for page in pages:
            click(page, "#start")
        two.wait_for("window.emolensPanel.stimulus === 'ad_a' && window.emolensPanel.recorded > 30")
        two.call("Page.reload")  # mid-way through the stimulus: the same session goes on
        two.wait_for("window.emolensPanel && window.emolensPanel.checked === true")
        assert two.evaluate("document.getElementById('agree').offsetParent") is None  # no second consent
        two.evaluate("Element.prototype.requestFullscreen = undefined")  # as a phone's browser: videos only
        two.evaluate(BLOCK_SOUND)
        click(two, "#start")
        with chromium(f"{url}/studies/adtest#token={TOKEN}", tmp_path / "operator", None) as dashboard:
            dashboard.wait_for("window.emolensDashboard.status && window.emolensDashboard.status.connected === 2")
            dashboard_png = dashboard.screenshot()[1]
            for page in pages:
                page.wait_for("window.emolensPanel.phase === 'thanks'", timeout=60)
            dashboard.wait_for("window.emolensDashboard.status.done === 2")
            click(dashboard, "#rebuild")
            dashboard.wait_for("window.emolensDashboard.report !== null", timeout=60)
            assert dashboard.evaluate("document.getElementById('report').hidden") is False
        states = [page.evaluate("JSON.stringify(window.emolensPanel)") for page in pages]
        report = httpx.get(f"{url}/studies/adtest/report/study.html", headers=auth)
    sessions = read_sessions(study)
    assert [(info.participant, info.complete) for info, _ in sessions] == [("P01", True), ("P02", True)], states
    # The second played in the window, muted as its browser refused sound: the first full screen, with sound.
    assert [(json.loads(state)["fullscreen"], json.loads(state)["muted"]) for state in states] == \
        [(True, False), (False, True)]
    for info, timeline in sessions:
        rows = pd.read_csv(timeline)
        shown = rows[rows["stimulus"] == "ad_a"]
        assert shown["stimulus_t_s"].is_monotonic_increasing and shown["time_s"].is_monotonic_increasing
        # Frames cover the stimulus (15 a second asked; a shared machine's Chromium sends fewer) and find the face.
        assert shown["stimulus_t_s"].max() > STIMULUS_S - 1 and len(shown) >= 2 * STIMULUS_S
        assert shown["face_id"].notna().mean() > 0.9
    assert report.status_code == 200 and "P01" in report.text and "P02" in report.text
    assert sorted(pd.read_csv(study / "report" / "sessions.csv")["participant"]) == ["P01", "P02"]
    if os.environ.get("EMOLENS_SCREENSHOTS"):
        (ASSETS / "panel_participant.png").write_bytes(participant_png)
        (ASSETS / "panel_dashboard.png").write_bytes(dashboard_png)



def test_the_page_finishes_its_session_after_the_service_restarts_with_sound_and_full_screen(tmp_path):
    study = tmp_path / "adtest"
    create_study(study, [str(write_webm(tmp_path / "ad_a.webm", STIMULUS_S))], seed=3)
    (_, code), = create_invites(study, 1)
    config = ServeConfig(studies=(study,))
    with bind_socket("127.0.0.1", 0) as free:
        port = free.getsockname()[1]
    with ExitStack() as browser:
        service = ExitStack()
        url = service.enter_context(running(config, port=port))
        page = browser.enter_context(chromium(f"{url}/panel/adtest#code={code}", tmp_path / "one",
                                              face_y4m(tmp_path / "face.y4m")))
        page.wait_for("window.emolensPanel && window.emolensPanel.phase === 'consent'")
        click(page, "#agree")
        page.wait_for("window.emolensPanel.checked === true")
        click(page, "#start")
        page.wait_for("window.emolensPanel.stimulus === 'ad_a' && window.emolensPanel.recorded > 5")
        # The click asked for full screen, and the stimulus plays with its sound on.
        assert page.evaluate("[window.emolensPanel.fullscreen, window.emolensPanel.muted, "
                             "document.fullscreenElement !== null, document.getElementById('stimulus').muted]") \
            == [True, False, True, False]
        service.close()  # the service stops while the stimulus plays; it ends in the page meanwhile
        page.wait_for("document.getElementById('stimulus').ended", timeout=30)
        assert page.evaluate("window.emolensPanel.phase") == "playing"
        with running(config, port=port):  # started again: the page reconnects and says it is done
            page.wait_for("window.emolensPanel.phase === 'thanks'", timeout=60)
        state = json.loads(page.evaluate("JSON.stringify(window.emolensPanel)"))
    (info, timeline), = read_sessions(study)
    assert info.complete and state["reconnects"] >= 1, state
    rows = pd.read_csv(timeline)
    assert rows["frame"].is_unique and rows["stimulus_t_s"].is_monotonic_increasing
    # Every frame the page heard was recorded (and maybe one more, answered as the connection dropped).
    assert state["recorded"] <= len(rows) <= state["recorded"] + 1 and rows["stimulus_t_s"].max() < STIMULUS_S
