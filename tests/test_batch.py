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
from pathlib import Path

import pandas as pd
import pytest

from emolens.bench.media import write_video
from emolens.card import ModelCard

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


def face_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[FACE_COLUMNS].sort_values(["frame", "face_id"]).reset_index(drop=True)


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
            assert len(want) == len(got) > 0
            pd.testing.assert_frame_equal(got, want, check_exact=False, atol=1e-5, check_dtype=False)
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
