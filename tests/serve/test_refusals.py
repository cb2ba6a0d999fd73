"""What ``emolens serve`` refuses, and how: a wrong option is one line before anything is created (the real
command), a wrong request one JSON line with nothing on the server's stderr (a real server over real HTTP);
and the answer docs/service.md shows is the one a real server gives.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from .test_serve import DEMO, PHOTO, assert_error, running, wait_for_job

pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra: pip install '.[serve]'")

import httpx  # noqa: E402

from emolens.cli import main  # noqa: E402
from emolens.serve.config import ServeConfig  # noqa: E402
from emolens.study.file import create_study  # noqa: E402

SERVICE_DOC = Path(__file__).parents[2] / "docs" / "service.md"


def still_study(folder: Path) -> Path:
    """A study of one still image shown for a second (no video to encode)."""
    create_study(folder, [f"{PHOTO}=1"])
    return folder


@pytest.mark.parametrize("args, message", [
    (["--jobs-dir", "{tmp}/hello.txt"], "--jobs-dir {tmp}/hello.txt is a file, not a folder"),
    (["--port", "99999"], "--port must be 0-65535 (0: any free port), got 99999"),
    (["--port", "-1"], "--port must be 0-65535 (0: any free port), got -1"),
    (["--study", "{tmp}/nonexistent"], "{tmp}/nonexistent is not a study"),
    (["--study", "{tmp}/adtest", "--study", "{tmp}/other/adtest"], "two studies are named 'adtest'"),
    (["--max-image-mb", "-1"], "--max-image-mb must be a positive number, got -1"),
    (["--job-ttl", "-5"], "--job-ttl must be a positive number, got -5"),
    (["--max-video-s", "nan"], "--max-video-s must be a positive number, got nan"),
    (["--max-video-mb", "inf"], "--max-video-mb must be a positive number, got inf"),
    (["--queue", "0"], "--queue must be a positive number, got 0"),
    (["--allow-origin", "notaurl"], "--allow-origin 'notaurl' is not a web origin: give scheme://host[:port]"),
    (["--allow-origin", "https://app.example/page"], "--allow-origin 'https://app.example/page' is not a web origin"),
    (["--allow-host", "a b"], "--allow-host 'a b' is not a host name"),
    (["--allow-host", "app.example:8000"], "--allow-host 'app.example:8000' is not a host name"),
])
def test_a_wrong_option_is_one_line_and_creates_nothing(tmp_path, monkeypatch, capsys, args, message):
    """No traceback, no port bound to a wrapped-around number, no jobs folder left for the next start to warn about."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (tmp_path / "hello.txt").write_text("hello\n")
    still_study(tmp_path / "adtest")
    still_study(tmp_path / "other" / "adtest")
    before = sorted(tmp_path.rglob("*"))
    assert main(["serve", "--port", "0", *[arg.format(tmp=tmp_path) for arg in args]]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("emolens: error: ") and message.format(tmp=tmp_path) in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_origins_and_hosts_as_browsers_and_dns_name_them_are_accepted():
    config = ServeConfig(allowed_origins=("https://app.example", "http://[::1]:8000/", "HTTP://App.Example:80"),
                         allowed_hosts=("app.example", "fe80::1", "10.0.0.7"))
    assert {"app.example", "fe80::1", "10.0.0.7"} <= config.accepted_hosts()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The service with one study, ``adtest``; its URL and its jobs folder."""
    root = tmp_path_factory.mktemp("refusals")
    jobs = root / "jobs"
    with running(ServeConfig(jobs_dir=jobs, studies=(still_study(root / "adtest"),))) as url:
        yield url, jobs


class _Records(logging.Handler):
    """The warnings and errors that reach the root logger while it is installed there."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def test_malformed_bodies_are_a_plain_422_and_nothing_on_stderr(served, capfd):
    url, _ = served
    records = _Records()
    logging.getLogger().addHandler(records)
    try:
        response = httpx.post(f"{url}/panel/adtest/join", content=b'{"code":',
                              headers={"Content-Type": "application/json"})
        assert_error(response, 422, "the request body is not valid JSON")
        assert response.json()["error"] == "the request body is not valid JSON"
        for path in ("/v1/images", "/v1/videos"):
            response = httpx.post(f"{url}{path}", content=b"garbage, no boundary in sight",
                                  headers={"Content-Type": "multipart/form-data; boundary=xyz"})
            assert_error(response, 422, "malformed multipart form: Expected boundary character")
        response = httpx.post(f"{url}/v1/images", content=b"garbage",
                              headers={"Content-Type": f"multipart/form-data; boundary={'b' * 300}"})
        assert_error(response, 422, "malformed multipart form: Boundary length 300 exceeds maximum of 256")
    finally:
        logging.getLogger().removeHandler(records)
    assert records.lines == []
    assert "boundary" not in capfd.readouterr().err.lower()


def test_an_uploaded_names_control_characters_never_reach_the_csv(served):
    url, _ = served
    response = httpx.post(f"{url}/v1/videos?every=10&filename=%00x%0A%E2%80%AE.mp4", content=DEMO.read_bytes(),
                          headers={"Content-Type": "video/mp4"})
    assert response.status_code == 202, response.text
    assert wait_for_job(url, response.json()["id"])["state"] == "done"
    timeline = httpx.get(f"{url}/v1/jobs/{response.json()['id']}/timeline.csv")
    assert "\x00" not in timeline.text and "\u202e" not in timeline.text
    assert set(pd.read_csv(io.StringIO(timeline.text))["source"]) == {"x.mp4"}
    assert timeline.headers["content-disposition"].endswith('filename="x.csv"')


@pytest.mark.parametrize("declared", ["video/mp4", "application/octet-stream", None])
def test_an_image_sent_as_a_video_is_415_and_leaves_no_job(served, declared):
    url, jobs = served
    before = set(jobs.iterdir())
    if declared is None:  # a form whose part says it is a video
        response = httpx.post(f"{url}/v1/videos", files={"file": ("clip.mp4", PHOTO.read_bytes(), "video/mp4")})
    else:
        response = httpx.post(f"{url}/v1/videos", content=PHOTO.read_bytes(), headers={"Content-Type": declared})
    assert_error(response, 415, "the upload is a JPEG image, not a video: send images to POST /v1/images")
    assert set(jobs.iterdir()) == before


def test_the_documented_answer_is_the_servers(served):
    """docs/service.md's answer for assets/astronaut.jpg, timings elided, is what a real request gets."""
    url, _ = served
    sample = re.search(r"The answer for `assets/astronaut\.jpg`.*?```json\n(.*?)```", SERVICE_DOC.read_text(),
                       re.DOTALL)[1]
    documented = json.loads(sample.replace("...", "0"))
    answer = httpx.post(f"{url}/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"}).json()
    assert (answer["width"], answer["height"], len(answer["faces"])) == (documented["width"], documented["height"], 1)
    face, shown = answer["faces"][0], documented["faces"][0]
    assert (face["face_id"], face["box"], face["dominant"]) == (shown["face_id"], shown["box"], shown["dominant"])
    assert face["det_score"] == pytest.approx(shown["det_score"], abs=2e-3)
    assert sum(face["keypoints"], []) == pytest.approx(sum(shown["keypoints"], []), abs=0.2)
    assert list(face["probs"]) == list(shown["probs"])
    assert face["probs"] == pytest.approx(shown["probs"], abs=2e-3)
    assert list(answer["timings"]) == list(documented["timings"])
