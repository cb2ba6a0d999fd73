"""``emolens batch`` end to end: real clips of faces, real worker processes, a real local Ray cluster.

The Ray cluster is started by this module (``ray.init(num_cpus=2)``, bound to 127.0.0.1) and
joined by the ``emolens batch --engine ray --address ...`` commands under test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from emolens.bench.media import write_video
from emolens.card import ModelCard

pa = pytest.importorskip("pyarrow", reason="emolens batch needs the 'batch' extra (pyarrow)")
pq = pytest.importorskip("pyarrow.parquet", reason="emolens batch needs the 'batch' extra (pyarrow)")

pytestmark = pytest.mark.slow
LABELS = ModelCard.load().labels
FACE_COLUMNS = ["frame", "face_id", "x", "y", "w", "h", "det_score", *LABELS, "dominant"]


def emolens(*args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emolens", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("emolens: error:")]


def timelines(out: Path) -> list[Path]:
    return sorted(p for p in (out / "timelines").glob("*.parquet") if not p.name.startswith("."))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Two short clips of real faces (two faces, then one) in one folder."""
    folder = tmp_path_factory.mktemp("clips")
    return [write_video(folder / "two.mp4", (320, 240), faces=2, seconds=2.0, fps=10),
            write_video(folder / "one.mp4", (320, 240), faces=1, seconds=1.5, fps=10)]


@pytest.fixture(scope="module")
def ray_address() -> str:
    """A real single-machine Ray cluster with 2 CPUs, on 127.0.0.1 only; its GCS address."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only: nothing leaves this machine
    os.environ["RAY_worker_niceness"] = "0"  # Ray's default +15 starves its workers beside other work
    ray = pytest.importorskip("ray", reason="the Ray engine needs the 'batch' extra (ray)")
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    except Exception as error:  # noqa: BLE001 - any failure to start is a reason to skip, stated
        pytest.skip(f"a local Ray cluster cannot start here: {type(error).__name__}: {error}")
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def local_out(clips, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("local") / "out"
    result = emolens("batch", clips[0].parent, "--out", out, "--engine", "local", "--workers", "2", "--csv")
    return out, result


# The CSV writes each number to these decimals; the Parquet timeline keeps the value itself (no text between).
CSV_DECIMALS = {"time_s": 3, "stimulus_t_s": 3, "x": 1, "y": 1, "w": 1, "h": 1, "det_score": 4,
                **dict.fromkeys(LABELS, 5), "yaw": 1, "pitch": 1, "attentive": 0, "AU12": 3, "expressiveness": 3}


def face_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[FACE_COLUMNS].sort_values(["frame", "face_id"]).reset_index(drop=True)


def assert_csv_is_parquet_rounded(parquet: pd.DataFrame, csv: pd.DataFrame) -> None:
    """Same rows; each CSV number is the Parquet value rounded to the CSV's decimals, and the rest is equal."""
    assert len(parquet) == len(csv) > 0
    for column in csv.columns:
        got, want = parquet[column].reset_index(drop=True), csv[column].reset_index(drop=True)
        if column in CSV_DECIMALS:
            error = (got.astype(float) - want).abs()
            assert (error.isna() == want.isna()).all() and not (error > 0.5 * 10 ** -CSV_DECIMALS[column] + 1e-9).any()
        else:
            assert got.astype(object).where(got.notna(), None).tolist() == want.astype(object).where(
                want.notna(), None).tolist(), column


def test_analyze_local_and_ray_give_the_same_rows(clips, local_out, ray_address, tmp_path):
    analyzed = tmp_path / "analyze.csv"
    result = emolens("analyze", *clips, "-o", analyzed)
    assert result.returncode == 0, result.stderr
    expected = pd.read_csv(analyzed)
    out, local = local_out
    assert local.returncode == 0, local.stderr
    ray_out = tmp_path / "ray"
    remote = emolens("batch", *clips, "--out", f"file://{ray_out}", "--engine", "ray", "--address", ray_address)
    assert remote.returncode == 0, remote.stderr
    for folder in (out, ray_out):
        dataset = pd.read_parquet(folder / "timelines")
        assert set(dataset["input"]) == {str(clip) for clip in clips}
        for clip in clips:
            want = face_rows(expected[expected["source"] == str(clip)])
            got = face_rows(dataset[dataset["input"] == str(clip)])
            assert_csv_is_parquet_rounded(got, want)
            assert (got["det_score"].round(4) != got["det_score"]).any()  # not read back from 4-decimal text
    assert sorted(expected["face_id"].unique()) == [1, 2]


def test_the_dataset_reads_as_one_table(clips, local_out):
    out, result = local_out
    assert result.returncode == 0, result.stderr
    assert "batch: 2 input(s): 2 analysed now, 0 already done, 0 failed" in result.stderr
    files = timelines(out)
    assert len(files) == 2
    table = pq.read_table(out / "timelines")  # pyarrow: the folder is the dataset
    frame = pd.read_parquet(out / "timelines")  # pandas: the same
    assert table.num_rows == len(frame) == 20 * 2 + 15 * 1
    columns = ["input_id", "input", *pd.read_csv(next((out / "csv").glob("*.csv"))).columns]
    assert table.column_names == columns  # analyze's columns, plus the input's id and path
    assert table.schema.remove_metadata() == pq.read_schema(out / "timelines" / "_common_metadata")
    assert str(table.schema.field("face_id").type) == "int64" and frame[list(LABELS)].sum(axis=1).round(3).eq(1).all()
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["status"].tolist() == ["done", "done"]
    assert sorted(manifest["frames"]) == [15, 20] and sorted(manifest["faces"]) == [15, 40]
    assert set(manifest["output"]) == {f"timelines/{p.name}" for p in files}
    duckdb = pytest.importorskip("duckdb")
    counts = duckdb.sql(f"SELECT input_id, count(*) FROM read_parquet('{out}/timelines/*.parquet') "
                        f"GROUP BY input_id ORDER BY 2").fetchall()
    assert [count for _, count in counts] == [15, 40]


def test_the_csv_and_the_parquet_of_an_input_hold_the_same_rows(local_out):
    """Both are written from one ``TimelineRows`` (before: the Parquet file was parsed back from the CSV text):
    the same timestamps and rows, the Parquet numbers unrounded."""
    out, result = local_out
    assert result.returncode == 0, result.stderr
    for path in (out / "csv").glob("*.csv"):
        csv = pd.read_csv(path)
        parquet = pd.read_parquet(out / "timelines" / f"{path.stem}.parquet")
        assert (pd.to_datetime(csv["timestamp"]) == parquet["timestamp"]).all()
        assert_csv_is_parquet_rounded(parquet[csv.columns.drop("timestamp")], csv.drop(columns="timestamp"))


def test_a_second_run_does_nothing_and_says_so(clips, local_out):
    out, first = local_out
    assert first.returncode == 0, first.stderr
    before = {p: p.stat().st_mtime_ns for p in timelines(out)}
    again = emolens("batch", clips[0].parent, "--out", out, "--csv")
    assert again.returncode == 0, again.stderr
    assert "nothing to do: all 2 input(s) already done" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in timelines(out)} == before
    changed = emolens("batch", clips[0].parent, "--out", out, "--every", "2")  # other options: all pending
    assert changed.returncode == 0, changed.stderr
    assert "2 analysed now" in changed.stderr
    shutil.rmtree(out / "csv")
    with_csv = emolens("batch", clips[0].parent, "--out", out, "--every", "2", "--csv")  # CSVs asked, absent
    assert with_csv.returncode == 0 and "2 analysed now" in with_csv.stderr, with_csv.stderr
    assert len(list((out / "csv").glob("*.csv"))) == 2


def test_a_killed_run_resumes_and_nothing_half_written_counts(tmp_path):
    from emolens.batch.inputs import input_id

    folder = tmp_path / "clips"
    folder.mkdir()
    clips = [write_video(folder / f"clip{i}.mp4", (320, 240), faces=1, seconds=6.0, fps=10) for i in range(4)]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "emolens", "batch", str(folder), "--out", str(out), "--workers", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not timelines(out) and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.1)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the driver and its worker process, mid-batch
        run.wait()
    done = timelines(out)
    assert 1 <= len(done) < 4, "the run must be killed mid-batch"
    # What a crash of a writer that is not atomic would leave: a temporary file, and half a file
    # under the final name of an input that never finished.
    whole = done[0].read_bytes()
    stale = out / "timelines" / f".{done[0].name}.tmp-killed"
    stale.write_bytes(whole[: len(whole) // 2])
    victim = next(out / "timelines" / f"{input_id(str(clip))}.parquet" for clip in clips
                  if out / "timelines" / f"{input_id(str(clip))}.parquet" not in done)
    victim.write_bytes(whole[: len(whole) // 2])

    rerun = emolens("batch", folder, "--out", out, "--workers", "1")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{4 - len(done)} analysed now, {len(done)} already done, 0 failed" in rerun.stderr
    assert "unfinished temporary file(s) of an earlier run" in rerun.stderr
    assert not [p for p in (out / "timelines").iterdir() if ".tmp-" in p.name]
    files = timelines(out)
    assert len(files) == 4 and victim in files
    assert [pq.read_metadata(p).num_rows for p in files] == [60] * 4
    assert pd.read_parquet(out / "manifest.parquet")["status"].eq("done").all()


def _ray_workers_running() -> list[int]:
    """PIDs of the Ray actor processes that are analysing an input now (Ray titles them ray::Class.method)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ray::BatchWorker.run" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_a_ray_worker_killed_mid_input_is_retried(ray_address, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for index in range(3):
        write_video(folder / f"clip{index}.mp4", (320, 240), faces=1, seconds=6.0, fps=10)
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "emolens", "batch", str(folder), "--out", str(out),
                            "--engine", "ray", "--address", ray_address, "--workers", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (busy := _ray_workers_running()) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    assert busy, "no Ray worker was seen analysing an input"
    os.kill(busy[0], signal.SIGKILL)
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert "3 analysed now, 0 already done, 0 failed" in stderr
    assert [pq.read_metadata(p).num_rows for p in timelines(out)] == [60] * 3
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["status"].eq("done").all()
    assert manifest["worker"].str.endswith(f":{busy[0]}").sum() < 3  # a fresh worker took over


def test_retry_failed_reruns_only_the_failures(clips, tmp_path):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(b"\x00\x01" * 3000)
    out = tmp_path / "out"
    first = emolens("batch", clips[1], noise, "--out", out)
    assert first.returncode == 1 and len(error_lines(first)) == 1
    assert f"failed: {noise}: cannot read video" in first.stderr
    finished = pd.read_parquet(out / "manifest.parquet").set_index("input")["finished_at"]
    second = emolens("batch", clips[1], noise, "--out", out)
    assert second.returncode == 1 and "1 input(s) failed before and were not retried" in second.stderr
    assert pd.read_parquet(out / "manifest.parquet").set_index("input")["finished_at"].equals(finished)
    retried = emolens("batch", clips[1], noise, "--out", out, "--retry-failed")
    assert retried.returncode == 1 and "0 analysed now, 1 already done, 1 failed" in retried.stderr
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("input")
    assert manifest.loc[str(noise), "finished_at"] > finished[str(noise)]
    assert manifest.loc[str(clips[1]), "finished_at"] == finished[str(clips[1])]
    shutil.copy(clips[1], noise)  # the file is fixed (size and mtime change): it runs without the flag
    fixed = emolens("batch", clips[1], noise, "--out", out)
    assert fixed.returncode == 0 and "1 analysed now, 1 already done, 0 failed" in fixed.stderr, fixed.stderr


def test_bad_inputs_are_recorded_and_never_fail_the_batch(clips, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    data = clips[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "no_media"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a recording")
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# a list of inputs\n{clips[1]}\nnowhere.mp4\n")
    out = tmp_path / "out"
    result = emolens("batch", listing, truncated, empty, tmp_path / "missing.mp4", "--out", out)
    assert result.returncode == 1
    (error,) = error_lines(result)
    assert "4 of 5 input(s) failed" in error
    assert f"failed: {tmp_path / 'nowhere.mp4'}: input not found" in result.stderr
    assert f"failed: {truncated}: cannot read video" in result.stderr
    assert f"failed: {empty}: no video or image files in folder" in result.stderr
    assert f"failed: {tmp_path / 'missing.mp4'}: input not found" in result.stderr
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("input")
    assert manifest.loc[str(clips[1]), "status"] == "done" and manifest["status"].eq("failed").sum() == 4
    assert manifest["error"].dropna().map(lambda text: "\n" not in text).all()
    assert [p.name for p in timelines(out)] == [manifest.loc[str(clips[1]), "output"].split("/")[1]]


def test_an_unwritable_out_is_one_line(clips, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = emolens("batch", clips[1], "--out", tmp_path / "file" / "out")
    assert result.returncode == 1
    (error,) = error_lines(result)
    assert "cannot write to --out" in error


def test_a_ray_address_that_does_not_answer_is_one_line(clips, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = emolens("batch", clips[1], "--out", tmp_path / "out", "--engine", "ray", "--address",
                     f"127.0.0.1:{port}", timeout=120)
    assert result.returncode == 1 and time.monotonic() - started < 120
    (error,) = error_lines(result)
    assert f"the Ray cluster at 127.0.0.1:{port} does not answer" in error


def test_expand_inputs_globs_folders_and_lists(clips, tmp_path):
    from emolens.batch.inputs import expand_inputs, input_id

    copy = tmp_path / "sub" / "two.mp4"
    copy.parent.mkdir()
    shutil.copy(clips[0], copy)
    listing = tmp_path / "inputs.csv"
    listing.write_text(f"input,label\n{clips[1]},a\nsub/two.mp4,b\n")
    items = expand_inputs([str(clips[0].parent / "*.mp4"), str(listing), str(tmp_path / "sub")])
    assert [item.path for item in items] == sorted(str(clip) for clip in clips) + [str(copy)]
    assert all(item.error is None for item in items)
    assert len({item.input_id for item in items}) == 3 and input_id(str(copy)).startswith("two-")


# Issue 26: what a user's own archive and terminal do to a batch (real media: assets/demo.mp4, astronaut.jpg).

ASSETS = Path(str(resources.files("emolens.assets")))
DEMO, PHOTO = ASSETS / "demo.mp4", ASSETS / "astronaut.jpg"


def _no_face_photo(path: Path) -> Path:
    """A real photo with no face in it: the astronaut's top-left corner, background only."""
    import cv2

    cv2.imwrite(str(path), cv2.imread(str(PHOTO))[:60, :60])
    return path


def _copies(folder: Path, source: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(source, folder / f"{index:02d}{source.suffix}")) for index in range(count)]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the local engine's pool workers and its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.append(pid)
        except OSError:
            continue
    return alive


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_face_id_reads_back_as_an_integer_even_on_frames_without_a_face(tmp_path):
    """Before: a frame with no face leaves face_id empty, and pandas read the column as float64."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "astronaut.jpg")
    _no_face_photo(folder / "wall.jpg")
    out = tmp_path / "out"
    result = emolens("batch", folder, "--out", out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(out / "timelines").set_index("input")
    assert str(frame["face_id"].dtype) == "Int64" and str(frame["frame"].dtype) == "Int64"
    assert frame.loc[str(folder / "astronaut.jpg"), "face_id"] == 1
    assert pd.isna(frame.loc[str(folder / "wall.jpg"), "face_id"])


def test_a_manifest_that_is_not_a_batch_manifest_is_refused_and_kept(tmp_path):
    """Before: a manifest.parquet without input_id stopped the batch with a KeyError traceback."""
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.table({"name": ["mine"], "value": [1]}), out / "manifest.parquet")
    before = (out / "manifest.parquet").read_bytes()
    result = emolens("batch", PHOTO, "--out", out)
    assert result.returncode == 1
    (error,) = error_lines(result)
    assert "is not the manifest of an emolens batch (it has no input_id column)" in error
    assert (out / "manifest.parquet").read_bytes() == before


def test_a_manifest_name_holding_another_file_is_refused_and_kept(tmp_path):
    """Before: a manifest.parquet that was not Parquet at all counted as damaged and was replaced."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.parquet").write_text("my data\n")
    result = emolens("batch", PHOTO, "--out", out)
    assert result.returncode == 1
    (error,) = error_lines(result)
    assert "is not the manifest of an emolens batch (not a Parquet file)" in error
    assert (out / "manifest.parquet").read_text() == "my data\n"


def test_a_csv_or_timeline_that_no_batch_wrote_is_refused_and_kept(tmp_path):
    """Before: files of the user's under the input's output names were replaced without a word."""
    first = emolens("batch", PHOTO, "--out", tmp_path / "first", "--csv")
    assert first.returncode == 0, first.stderr
    (timeline,) = timelines(tmp_path / "first")
    for folder, name in (("csv", f"{timeline.stem}.csv"), ("timelines", timeline.name)):
        out = tmp_path / folder
        (out / folder).mkdir(parents=True)
        (out / folder / name).write_text("mine\n")
        result = emolens("batch", PHOTO, "--out", out, "--csv")
        assert result.returncode == 1
        (error,) = error_lines(result)
        assert f"{name} exists and no emolens batch wrote it" in error
        assert (out / folder / name).read_text() == "mine\n"
        assert not (out / "manifest.parquet").exists()
    again = emolens("batch", PHOTO, "--out", tmp_path / "first", "--csv")  # its own files: nothing to refuse
    assert again.returncode == 0 and "already done" in again.stderr, again.stderr


def test_a_recording_replaced_by_another_of_the_same_size_and_mtime_runs_again(tmp_path):
    """Before: size and mtime alone made the fingerprint, so the replaced file was skipped as done."""
    folder = tmp_path / "archive"
    folder.mkdir()
    recording = Path(shutil.copy(PHOTO, folder / "session.jpg"))
    out = tmp_path / "out"
    first = emolens("batch", folder, "--out", out)
    assert first.returncode == 0, first.stderr
    assert pd.read_parquet(out / "timelines")["face_id"].tolist() == [1]
    stat = recording.stat()
    replacement = _no_face_photo(tmp_path / "wall.jpg").read_bytes()  # a JPEG ignores bytes after its end
    recording.write_bytes(replacement + b"\0" * (stat.st_size - len(replacement)))
    os.utime(recording, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (recording.stat().st_size, recording.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    second = emolens("batch", folder, "--out", out)
    assert second.returncode == 0, second.stderr
    assert "1 analysed now, 0 already done" in second.stderr
    assert pd.read_parquet(out / "timelines")["face_id"].isna().all()  # the new content's rows


def test_a_second_batch_on_one_out_is_refused_and_a_killed_driver_takes_its_workers_along(tmp_path):
    """Before: a second batch ran beside the first, and after kill -9 of the driver its pool workers went
    on analysing and writing into --out."""
    folder = tmp_path / "archive"
    _copies(folder, DEMO, 40)
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "emolens", "batch", str(folder), "--out", str(out),
                              "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        assert _wait_for(lambda: timelines(out) or first.poll() is not None, 240) and first.poll() is None
        second = emolens("batch", folder, "--out", out)
        assert second.returncode == 1
        (error,) = error_lines(second)
        assert f"another emolens batch (pid {first.pid}) is writing to --out" in error
        workers = _children(first.pid)
        assert workers, "the driver's pool workers were not found"
        os.kill(first.pid, signal.SIGKILL)  # the driver only, as `kill -9 PID` does
        first.wait()
        assert _wait_for(lambda: not _alive(workers), 15), f"workers {_alive(workers)} outlived their driver"
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # whatever is left of the group, should this test fail
    settled = sorted(p.name for p in timelines(out))
    time.sleep(1.0)
    assert sorted(p.name for p in timelines(out)) == settled
    resumed = emolens("batch", folder, "--out", out, "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{40 - len(settled)} analysed now, {len(settled)} already done, 0 failed" in resumed.stderr


def test_ctrl_c_stops_the_local_engine_keeps_what_finished_and_exits_130(tmp_path):
    """Before: after Ctrl+C the pool analysed almost every queued input for 20-30 s, a second Ctrl+C did
    nothing, and the manifest said 1 done while 28 timelines were on disk."""
    folder = tmp_path / "archive"
    _copies(folder, DEMO, 30)
    out = tmp_path / "out"
    # A new session as a terminal's job: SIGINT goes to the whole group, driver and workers alike.
    run = subprocess.Popen([sys.executable, "-m", "emolens", "batch", str(folder), "--out", str(out),
                            "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        assert _wait_for(lambda: timelines(out) or run.poll() is not None, 240) and run.poll() is None
        workers = _children(run.pid)
        os.killpg(run.pid, signal.SIGINT)
        _, stderr = run.communicate(timeout=20)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 130, stderr
    assert stderr.rstrip().endswith("emolens: interrupted") and "Traceback" not in stderr, stderr
    # The pool's workers are ended by the driver; its resource tracker (a child too, under spawn) ends on its
    # own once the driver's pipe closes, a moment after the driver exits.
    assert _wait_for(lambda: not _alive(workers), 5), _alive(workers)
    on_disk = {p.name for p in timelines(out)}
    assert 1 <= len(on_disk) < 30, "the run must be stopped mid-batch"
    # Before: the stopped workers' temporary files stayed in timelines/ until the next run.
    assert not [p.name for p in (out / "timelines").iterdir() if ".tmp-" in p.name]
    time.sleep(1.0)
    assert {p.name for p in timelines(out)} == on_disk  # nothing is written after the exit
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert set(manifest.loc[manifest["status"] == "done", "output"]) == {f"timelines/{name}" for name in on_disk}
    assert manifest["status"].isin(["done", "pending"]).all() and len(manifest) == 30
    resumed = emolens("batch", folder, "--out", out, "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{30 - len(on_disk)} analysed now, {len(on_disk)} already done, 0 failed" in resumed.stderr


def test_a_file_name_that_is_not_utf8_does_not_stop_the_batch(tmp_path):
    """Before: hashing such a name for its input id raised UnicodeEncodeError, a traceback before any input ran."""
    folder = tmp_path / "archive"
    folder.mkdir()
    shutil.copy(PHOTO, folder / "good.jpg")
    bad = os.fsdecode(bytes(folder) + b"/bad\xff\xfename.jpg")
    shutil.copy(PHOTO, bad)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "emolens", "batch", str(folder), "--out", str(out)],
                            capture_output=True, timeout=300)
    stderr = result.stderr.decode("utf-8", "backslashreplace")
    assert "Traceback" not in stderr and "batch: 2 input(s)" in stderr, stderr
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("input")
    shown = f"{folder}/bad\\xff\\xfename.jpg"  # the bytes that are not UTF-8, as a reader can see them
    assert set(manifest.index) == {str(folder / "good.jpg"), shown}
    assert manifest.loc[str(folder / "good.jpg"), "status"] == "done"
    if manifest.loc[shown, "status"] == "done":  # once the recorder writes such names (app/record.py)
        dataset = pd.read_parquet(out / "timelines")
        assert shown in set(dataset["input"])
    else:
        assert shown in stderr  # its failure is listed under the name a user can read


def test_behaviour_in_batch_as_in_analyze_and_report_reads_the_parquet(clips, tmp_path):
    """Before: batch had no --behaviour (action units, head pose, attention were the CLI's alone) and
    ``emolens report`` could not read the Parquet timelines batch writes."""
    out = tmp_path / "out"
    result = emolens("batch", clips[1], "--out", out, "--engine", "local", "--workers", "1", "--behaviour")
    assert result.returncode == 0, result.stderr
    analyzed = tmp_path / "one.csv"
    assert emolens("analyze", clips[1], "-o", analyzed, "--behaviour").returncode == 0
    [parquet] = timelines(out)
    table, expected = pd.read_parquet(parquet), pd.read_csv(analyzed)
    behaviour = ["yaw", "pitch", "attentive", "AU12", "expressiveness"]
    assert_csv_is_parquet_rounded(table[behaviour], expected[behaviour])
    report = emolens("report", parquet, "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert "attention" in html.lower() and len(pd.read_csv(tmp_path / "report" / "segments.csv")) > 0


def test_another_detect_mode_makes_every_input_pending_again():
    """``--detect`` changes the rows (and a dataset from before it lacks their full_search column): a batch
    resumed with another mode must not mix its timelines with the earlier ones."""
    from emolens.batch.tasks import BatchSettings
    from emolens.options import AnalyzerOptions

    tracked, full = (BatchSettings(AnalyzerOptions(detect=mode)).fingerprint_options() for mode in ("tracked", "full"))
    assert tracked != full and tracked["detect"] == "tracked"
