"""``--screenshot`` never loses a file: an input, an existing file without ``--overwrite``, a name that is not an
image format Qt writes, and a failed run are refused in one line with every file left as it was; a screenshot
takes its name only once saved whole. Real Qt, offscreen, on the numbered clip of real faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from PySide6.QtGui import QImage, QPixmap

from emolens.cli import main
from emolens.errors import EmolensError
from emolens.gui.app import save_screenshot
from tests.replay.fixtures import numbered_session  # noqa: F401 -- the fixture


@pytest.fixture
def session(numbered_session, tmp_path) -> Path:  # noqa: F811
    """A copy of the numbered session: ``session.csv`` and ``session-video.mp4`` beside it."""
    shutil.copy(numbered_session.with_name("session-video.mp4"), tmp_path)
    rows = pd.read_csv(numbered_session)
    rows["source"] = "session-video.mp4"
    rows.to_csv(tmp_path / "session.csv", index=False)
    return tmp_path / "session.csv"


def refused(argv: list[str], capfd, untouched: dict[Path, bytes]) -> str:
    """Run ``emolens ARGV``; assert exit 1, one line on stderr and every file in ``untouched`` as it was; the line."""
    assert main(argv) == 1
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emolens: error: "), lines
    for path, content in untouched.items():
        assert path.read_bytes() == content, f"{path} was changed"
    return lines[0]


def contents(*paths: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


def no_partial_files(folder: Path) -> bool:
    return not list(folder.glob(".*partial*"))


def test_replay_refuses_its_own_timeline_and_video_even_with_overwrite(session, capfd):
    video = session.with_name("session-video.mp4")
    kept = contents(session, video)
    line = refused(["replay", str(session), "--screenshot", str(session), "--overwrite"], capfd, kept)
    assert line == (f"emolens: error: the screenshot {session} is the input {session}; saving it would damage "
                    f"the input: choose another --screenshot")
    assert "is the input" in refused(["replay", str(session), "--screenshot", str(video), "--overwrite"], capfd, kept)


def test_replay_refuses_a_name_that_is_not_an_image_format(session, tmp_path, capfd):
    victim, notes = tmp_path / "victim.csv", tmp_path / "notes.txt"
    shutil.copy(session, victim)
    notes.write_text("the client's notes\n")
    kept = contents(session, victim, notes)
    for target in (victim, notes, tmp_path / "shot"):
        line = refused(["replay", str(session), "--screenshot", str(target), "--overwrite"], capfd, kept)
        assert line.startswith(f"emolens: error: --screenshot {target}: name the screenshot .png, or another image "
                               f"format Qt writes (") and ".jpg" in line
    assert not (tmp_path / "shot").exists() and no_partial_files(tmp_path)


def test_replay_replaces_an_existing_screenshot_only_with_overwrite(session, tmp_path, capfd):
    precious = tmp_path / "precious.png"
    assert QImage(16, 16, QImage.Format.Format_RGB32).save(str(precious))
    line = refused(["replay", str(session), "--screenshot", str(precious)], capfd, contents(precious))
    assert line == (f"emolens: error: {precious} already exists; pass --overwrite to replace it, "
                    f"or choose another file")
    assert main(["replay", str(session), "--at", "1", "--screenshot", str(precious), "--overwrite"]) == 0
    assert QImage(str(precious)).width() >= 640
    assert no_partial_files(tmp_path)


def test_replay_of_a_study_refuses_a_screenshot_in_the_study_folder(clip, tmp_path, capfd):
    folder = tmp_path / "adtest"
    assert main(["study", "new", str(folder), "--stimulus", clip]) == 0
    capfd.readouterr()
    kept = contents(*(path for path in folder.rglob("*") if path.is_file()))
    stimulus = next(path for path in kept if path.suffix == ".mp4")
    for target in (stimulus, folder / "sessions.png"):
        line = refused(["replay", str(folder), "--screenshot", str(target), "--overwrite"], capfd, kept)
        assert line.startswith(f"emolens: error: the screenshot {target} is in the input {folder}")
    assert not (folder / "sessions.png").exists()
    assert sorted(path for path in folder.rglob("*") if path.is_file()) == sorted(kept)


def test_the_window_refuses_its_source_and_a_name_that_is_not_an_image(clip, tmp_path, capfd):
    source = Path(shutil.copy(clip, tmp_path / "half.mp4"))
    kept = contents(source)
    line = refused(["--source", str(source), "--screenshot", str(source), "--frames", "3", "--overwrite"], capfd, kept)
    assert line.startswith(f"emolens: error: the screenshot {source} is the input {source}")
    refused(["--source", str(source), "--screenshot", str(tmp_path / "half.avi"), "--frames", "3"], capfd, kept)
    assert not (tmp_path / "half.avi").exists()


def test_a_window_that_fails_saves_what_the_user_saw_but_replaces_nothing(tmp_path, capfd):
    """The no-camera picture is a screenshot of a failed run; an existing file is still refused before it runs."""
    missing, new, old = tmp_path / "missing.mp4", tmp_path / "m.png", tmp_path / "old.png"
    assert QImage(16, 16, QImage.Format.Format_RGB32).save(str(old))
    line = refused(["--source", str(missing), "--screenshot", str(new), "--frames", "3"], capfd, {})
    assert line == f"emolens: error: input not found: {missing}"
    assert QImage(str(new)).width() > 16  # the window, showing the failure
    line = refused(["--source", str(missing), "--screenshot", str(old), "--frames", "3"], capfd, contents(old))
    assert "--overwrite" in line
    assert no_partial_files(tmp_path)


def test_a_failed_save_leaves_the_old_file_and_no_partial_one(tmp_path):
    old = tmp_path / "shot.png"
    old.write_bytes(b"the earlier screenshot")
    with pytest.raises(EmolensError, match=f"cannot write the screenshot {old}"):
        save_screenshot(QPixmap(), old, overwrite=True)  # a null pixmap: Qt's save fails
    assert old.read_bytes() == b"the earlier screenshot" and no_partial_files(tmp_path)


def test_a_file_that_takes_the_name_meanwhile_is_kept(qapp, tmp_path):
    taken = tmp_path / "shot.png"
    taken.write_bytes(b"written by another program while the window rendered")
    shot = QPixmap(8, 8)
    shot.fill()
    with pytest.raises(EmolensError, match="appeared while the window was rendered"):
        save_screenshot(shot, taken, overwrite=False)
    assert taken.read_bytes() == b"written by another program while the window rendered" and no_partial_files(tmp_path)
