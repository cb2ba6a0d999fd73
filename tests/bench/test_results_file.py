"""A benchmark's results file: never written over a file without --overwrite, never left half-written."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emolens.bench.results import check_results_path, write_results
from emolens.errors import EmolensError, SettingError
from emolens.record import partial_path

from ..test_cli import assert_one_line_error, emolens

NOTES = "# my notes\n"


def test_a_results_file_of_the_users_is_refused_before_the_benchmark_runs(tmp_path):
    """Before: ``emolens bench report --quick --out notes.md`` replaced the user's notes with its table."""
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    done = emolens("bench", "report", "--quick", "--out", notes)
    assert_one_line_error(done, f"{notes} already exists; pass --overwrite to replace it")
    assert "report of" not in done.stderr + done.stdout  # refused up front, not after minutes of measuring
    assert notes.read_text() == NOTES


def test_the_committed_figures_are_replaced_only_with_overwrite(tmp_path):
    committed = tmp_path / "benchmarks" / "report.md"
    committed.parent.mkdir()
    committed.write_text(NOTES)
    refused = subprocess.run([sys.executable, "-m", "emolens", "bench", "report"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
    assert_one_line_error(refused, "benchmarks/report.md already exists; pass --overwrite to replace it")
    assert committed.read_text() == NOTES


def test_overwrite_replaces_the_file_whole_and_leaves_no_partial_file(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    done = emolens("bench", "report", "--quick", "--out", notes, "--overwrite")
    assert done.returncode == 0, done.stderr
    text = notes.read_text()
    assert text.startswith("# Report benchmark") and "| met |" in text
    assert "`emolens bench report --quick --out" in text and "--overwrite" not in text  # it changes no figure
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.md"]


def test_a_benchmark_module_run_on_its_own_refuses_in_one_line(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    done = subprocess.run([sys.executable, "-m", "emolens.bench.report", str(notes), "--minutes", "0.1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (f"error: {notes} already exists; pass --overwrite to replace it, "
                                   "or choose another file")
    assert notes.read_text() == NOTES


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_a_path_that_cannot_hold_the_results_is_refused(tmp_path, where):
    (tmp_path / "taken").write_text(NOTES)
    (tmp_path / "folder").mkdir()
    path = tmp_path / "folder" if where == "folder" else tmp_path / "taken" / "results.md"
    with pytest.raises(EmolensError, match="not a regular file|is a file, not a folder"):
        check_results_path(path, overwrite=True)


def test_a_file_that_appears_during_the_run_is_kept_and_so_are_the_figures(tmp_path):
    results = tmp_path / "results.md"
    results.write_text(NOTES)  # made by someone else while the benchmark measured
    with pytest.raises(SettingError, match="appeared while the benchmark ran"):
        write_results(results, "| figures |", overwrite=False)
    assert results.read_text() == NOTES
    assert partial_path(results).read_text() == "| figures |\n"


def test_a_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path, monkeypatch):
    results = tmp_path / "results.md"
    results.write_text(NOTES)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("emolens.bench.results.publish", full_disk)
    with pytest.raises(EmolensError, match="cannot write .*No space left on device"):
        write_results(results, "| figures |", overwrite=True)
    assert results.read_text() == NOTES
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.md"]
