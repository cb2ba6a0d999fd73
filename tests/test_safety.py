"""Never destroy a user's file: outputs that are inputs, two runs on one output, full disks, Ctrl+C, odd outputs.

Every case runs the real ``emolens analyze`` on the demo clip of real faces or the astronaut photo.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from emolens import record
from emolens.cli import main
from emolens.native import interrupts_held
from emolens.record import CsvRecorder
from emolens.report.timeline import load_timelines
from emolens.types import Faces, Frame

from .test_cli import assert_one_line_error, emolens

ASSETS = Path(str(resources.files("emolens.assets")))
DEMO, PHOTO = ASSETS / "demo.mp4", ASSETS / "astronaut.jpg"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def one_error_line(capsys, message: str) -> None:
    """The in-process CLI printed exactly one line on stderr, containing ``message``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("emolens: error:") and message in err[0], err


@pytest.fixture
def media(tmp_path) -> dict[str, Path]:
    """A user's files: a video, a photo, a folder of photos, and a CSV they care about."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(PHOTO, folder / name)
    shutil.copy(DEMO, tmp_path / "myvideo.mp4")
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    (tmp_path / "notes.csv").write_text("my,own\nprecious,data\n")
    return {"video": tmp_path / "myvideo.mp4", "photo": tmp_path / "photo.jpg", "folder": folder,
            "notes": tmp_path / "notes.csv"}


def snapshot(paths) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


@pytest.mark.parametrize(("inputs", "output", "message"), [
    (["video"], "video", "is the input"),
    (["photo"], "photo", "is the input"),
    (["folder"], "photos/b.jpg", "is an image in the input folder"),
    (["video", "photo"], "photo", "is the input"),
    (["video"], "link-to-video", "is the input"),  # a symlink resolving to the input
])
@pytest.mark.parametrize("overwrite", [False, True])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(media, tmp_path, capsys, inputs, output,
                                                                   message, overwrite):
    (tmp_path / "link-to-video").symlink_to(media["video"])
    files = [media["video"], media["photo"], *media["folder"].iterdir()]
    before = snapshot(files)
    target = media[output] if output in media else tmp_path / output
    code = main(["analyze", *(str(media[name]) for name in inputs), "-o", str(target),
                 *(["--overwrite"] if overwrite else [])])
    assert code == 1
    one_error_line(capsys, message)
    assert snapshot(files) == before
    assert (tmp_path / "link-to-video").is_symlink()


def test_a_symlinked_output_and_a_bad_input_leave_link_and_target_alone(media, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(PHOTO.read_bytes()[:300])
    link = tmp_path / "link.csv"
    link.symlink_to(media["notes"])
    assert main(["analyze", str(bad), "-o", str(link), "--overwrite"]) == 1
    one_error_line(capsys, "cannot read image")
    assert link.is_symlink() and media["notes"].read_text() == "my,own\nprecious,data\n"


def test_an_existing_output_is_replaced_only_with_overwrite(media, capsys):
    assert main(["analyze", str(media["photo"]), "-o", str(media["notes"])]) == 1
    one_error_line(capsys, "already exists; pass --overwrite")
    assert media["notes"].read_text() == "my,own\nprecious,data\n"
    assert main(["analyze", str(media["photo"]), "-o", str(media["notes"]), "--overwrite"]) == 0
    assert pd.read_csv(media["notes"])["dominant"].tolist() == ["happy"]


def test_an_existing_video_is_replaced_only_with_overwrite(media, tmp_path, capsys):
    """Before: ``--video precious.mp4`` replaced the file without a word."""
    precious, out = tmp_path / "precious.mp4", tmp_path / "t.csv"
    shutil.copy(DEMO, precious)
    assert main(["analyze", str(media["photo"]), "-o", str(out), "--video", str(precious)]) == 1
    one_error_line(capsys, f"{precious} already exists; pass --overwrite")
    assert precious.read_bytes() == DEMO.read_bytes() and not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "same.mp4", "--video", "same.mp4"], "are the same file"),
    (["-o", "same.mp4", "--video", "link.mp4", "--overwrite"], "are the same file"),
    (["-o", "notes.csv", "--markers", "notes.csv", "--overwrite"], "is the markers file"),
    (["-o", "t.csv", "--markers", "notes.csv", "--video", "notes.csv", "--overwrite"], "is the markers file"),
])
def test_outputs_on_one_path_or_on_the_markers_file_are_refused(media, tmp_path, capsys, args, message):
    """Before: the video replaced the timeline, and ``-o`` destroyed the stimulus log it was reading."""
    (tmp_path / "notes.csv").write_text("0,intro\n")
    (tmp_path / "same.mp4").write_bytes(b"yesterday's timeline")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "same.mp4")
    files = [tmp_path / "notes.csv", tmp_path / "same.mp4"]
    before = snapshot(files)
    paths = [arg if arg.startswith("-") else str(tmp_path / arg) for arg in args]
    assert main(["analyze", str(media["photo"]), *paths]) == 1
    one_error_line(capsys, message)
    assert snapshot(files) == before and not (tmp_path / "t.csv").exists()


def test_a_second_run_on_an_output_being_written_is_refused_naming_the_holder(tmp_path):
    """A real second process holds the recording open; our run must not touch it, and say who holds it."""
    out = tmp_path / "session.csv"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from emolens.record import CsvRecorder
        with CsvRecorder({str(out)!r}, {LABELS!r}):
            print("recording", flush=True)
            sys.stdin.readline()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "recording"
        result = emolens("analyze", DEMO, "-o", out, "--overwrite")
        assert_one_line_error(result, f"is being written by another process (pid {holder.pid})")
        assert out.read_text().count("\n") == 1  # the holder's header, not interleaved with our rows
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    result = emolens("analyze", DEMO, "-o", out, "--overwrite")  # the lock went with its holder
    assert result.returncode == 0, result.stderr
    timelines, warnings = load_timelines(out)
    assert len(timelines) == 1 and not warnings and len(timelines[0].faces) == 240


def test_the_lock_is_held_by_the_recorder_in_this_process_too(tmp_path):
    with CsvRecorder(tmp_path / "t.csv", LABELS):
        with pytest.raises(Exception, match=f"pid {os.getpid()}"):
            CsvRecorder(tmp_path / "t.csv", LABELS)


def partial_files(folder: Path) -> list[Path]:
    return list(folder.glob(".*.partial"))


def test_an_overwrite_keeps_the_old_timeline_until_the_new_one_has_rows(media, tmp_path):
    """Before: the old file was truncated at open, so an end before the first row left it empty."""
    previous = tmp_path / "prev.csv"
    assert main(["analyze", str(media["photo"]), "-o", str(previous)]) == 0
    previous.chmod(0o640)
    old = previous.read_bytes()
    recorder = CsvRecorder(previous, LABELS, overwrite=True)
    assert previous.read_bytes() == old and len(partial_files(tmp_path)) == 1
    recorder.discard()  # what a Ctrl+C or a failure before the first row does
    assert previous.read_bytes() == old and not partial_files(tmp_path)
    with CsvRecorder(previous, LABELS, overwrite=True) as recorder:
        recorder.append(Frame(index=0, t_s=0.0, image=None, source="new.mp4"), Faces.empty())
        assert pd.read_csv(previous)["source"].tolist() == ["new.mp4"]  # in place once the first block landed
    assert not partial_files(tmp_path) and previous.stat().st_mode & 0o777 == 0o640


def test_ctrl_c_early_in_an_overwrite_leaves_the_old_timeline(tmp_path):
    """The issue's run: Ctrl+C as soon as the output is touched; the old timeline or a new one with rows, not empty."""
    previous = tmp_path / "prev.csv"
    shutil.copy(PHOTO, tmp_path / "photo.jpg")
    assert main(["analyze", str(tmp_path / "photo.jpg"), "-o", str(previous)]) == 0
    old = previous.read_bytes()
    run = subprocess.Popen([sys.executable, "-m", "emolens", "analyze", *[str(DEMO)] * 20, "-o", str(previous),
                            "--overwrite"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while (previous.read_bytes() == old and not partial_files(tmp_path) and run.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.001)
    run.send_signal(signal.SIGINT)
    stderr = run.communicate(timeout=120)[1]
    assert run.returncode in (130, -signal.SIGINT), stderr
    assert previous.read_bytes() == old or len(pd.read_csv(previous)) > 0
    assert not partial_files(tmp_path)


def test_the_loser_of_two_runs_creating_one_file_removes_nothing(tmp_path, monkeypatch):
    """Before: run A created the file, run B (--overwrite) locked it first, and A's clean-up unlinked
    B's recording while B wrote on into a deleted file. A delay between create and lock shows it."""
    out = tmp_path / "t.csv"
    create, runs = record._open_output, []

    def create_then_let_another_run_in(path, overwrite):
        opened = create(path, overwrite)
        runs.append(path)
        if len(runs) == 1:
            runs.append(CsvRecorder(path, LABELS, overwrite=True))  # B, between A's create and A's lock
        return opened

    monkeypatch.setattr(record, "_open_output", create_then_let_another_run_in)
    with pytest.raises(Exception, match=f"being written by another process \\(pid {os.getpid()}\\)"):
        CsvRecorder(out, LABELS, overwrite=True)  # A
    with runs[-1] as recorder:
        recorder.append(Frame(index=0, t_s=0.0, image=None, source="b.mp4"), Faces.empty())
    assert pd.read_csv(out)["source"].tolist() == ["b.mp4"] and not partial_files(tmp_path)


def run_with_file_size_limit(limit: int, *args) -> subprocess.CompletedProcess:
    """``emolens`` with writes failing past ``limit`` bytes, as on a full disk."""
    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "emolens", *map(str, args)], capture_output=True, text=True,
                          timeout=300, preexec_fn=limit_writes)


def test_a_full_disk_at_start_leaves_no_file(tmp_path):
    out = tmp_path / "t.csv"
    result = run_with_file_size_limit(20, "analyze", DEMO, "-o", out)
    assert_one_line_error(result, "no row was written")
    assert not out.exists()


def test_a_full_disk_mid_run_reports_the_rows_on_disk(tmp_path):
    out = tmp_path / "t.csv"
    result = run_with_file_size_limit(30_000, "analyze", DEMO, "-o", out)
    assert_one_line_error(result, "row(s) written before are kept")
    claimed = int(result.stderr.split("the ")[-1].split(" row(s)")[0])
    assert out.read_text().endswith("\n")
    assert claimed == len(pd.read_csv(out)) > 0


def test_a_full_disk_while_writing_the_video_keeps_the_older_video(tmp_path):
    """Before: exit 0 and "wrote 120 annotated frames", the older video replaced by one with no index."""
    out, video = tmp_path / "t.csv", tmp_path / "precious.mp4"
    shutil.copy(DEMO, video)
    result = run_with_file_size_limit(200_000, "analyze", DEMO, "-o", out, "--video", video, "--overwrite")
    assert_one_line_error(result, f"cannot write the annotated video {video}: the file written does not read back")
    assert "moov atom" not in result.stderr
    assert video.read_bytes() == DEMO.read_bytes() and not partial_files(tmp_path)
    assert len(pd.read_csv(out)) == 240  # the timeline fits and is complete


@pytest.mark.parametrize("output", ["/dev/null", "fifo"])
def test_devices_and_pipes_are_outputs_too(tmp_path, output):
    if output == "fifo":
        output = tmp_path / "fifo"
        os.mkfifo(output)
        reader = subprocess.Popen(["cat", str(output)], stdout=subprocess.PIPE, text=True)
    result = emolens("analyze", DEMO, "-o", output)
    assert result.returncode == 0, result.stderr
    if output != "/dev/null":
        assert reader.communicate(timeout=30)[0].count("\n") == 241 and output.exists()


def loaded(pid: int, library: str) -> bool:
    """Whether process ``pid`` has mapped a shared library whose path contains ``library``."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_a_ctrl_c_during_a_held_start_up_arrives_once_the_start_up_is_done():
    """MediaPipe's task creation runs to its end (its call thread registered for shutdown), then the Ctrl+C lands."""
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            signal.raise_signal(signal.SIGINT)
            finished.append("start-up")
    assert finished == ["start-up"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see what the process is loading")
@pytest.mark.parametrize("moment", ["onnxruntime_pybind11_state", "_pywrap_litert_interpreter", "output appears", 1.5])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line_and_no_header_only_file(tmp_path, moment):
    """Ctrl+C while ONNX Runtime or LiteRT (the detector) loads, just after the output appears, or while frames run."""
    out = tmp_path / "t.csv"
    # Twenty copies of the demo: on a fast machine one is analysed in under 1.5 s
    run = subprocess.Popen([sys.executable, "-m", "emolens", "analyze", *[str(DEMO)] * 20, "-o", str(out)],
                           stderr=subprocess.PIPE, text=True)
    reached = {"output appears": out.exists}.get(moment, lambda: loaded(run.pid, str(moment)))
    if isinstance(moment, float):
        time.sleep(moment)
    else:
        deadline = time.monotonic() + 120
        while not reached() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
    run.send_signal(signal.SIGINT)
    stderr = run.communicate(timeout=120)[1]
    # 130, or killed by the signal itself when it lands while a native library holds it
    assert "Traceback" not in stderr and run.returncode in (130, -signal.SIGINT), stderr
    assert stderr.strip().splitlines()[-1] == "emolens: interrupted"
    assert not out.exists() or len(pd.read_csv(out)) > 0, "a header-only file was left behind"


def test_an_output_named_for_another_format_is_refused(tmp_path, capsys):
    """Before: -o out.xlsx wrote CSV text under a name that promised a spreadsheet."""
    out = tmp_path / "out.xlsx"
    assert main(["analyze", str(PHOTO), "-o", str(out)]) == 1
    one_error_line(capsys, "emolens analyze writes a CSV timeline; name it .csv")
    assert not out.exists()
