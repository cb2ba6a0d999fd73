"""Errors name settings as the caller knows them: Python names in the library, flags on the command line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from emolens.analyze import analyze_inputs
from emolens.cli import main
from emolens.errors import SettingError
from emolens.sources import open_source

DEMO = Path(str(resources.files("emolens.assets") / "demo.mp4"))


def test_a_setting_error_names_python_names_and_leaves_other_braces_alone():
    error = SettingError("{every} must be 1 or more in {folder}/{overwrite}")
    assert str(error) == "every must be 1 or more in {folder}/overwrite"
    assert error.naming(lambda name: "--" + name) == "--every must be 1 or more in {folder}/--overwrite"


@pytest.mark.parametrize(("call", "library", "command", "cli"), [
    (lambda tmp: open_source(DEMO, every=0), "every must be 1 or more, got 0",
     ["analyze", DEMO, "-o", "t.csv", "--every", "0"], "--every must be 1 or more, got 0"),
    (lambda tmp: analyze_inputs([str(DEMO)], tmp / "t.csv", landmarks=True, log=lambda _: None),
     "landmarks needs behaviour", ["analyze", DEMO, "-o", "t.csv", "--landmarks"], "--landmarks needs --behaviour"),
    (lambda tmp: analyze_inputs([str(DEMO)], tmp / "exists.csv", log=lambda _: None),
     "exists.csv already exists; pass overwrite to replace it", ["analyze", DEMO, "-o", "exists.csv"],
     "exists.csv already exists; pass --overwrite to replace it"),
    (lambda tmp: analyze_inputs([str(DEMO)], tmp / "t.csv", video=tmp / "t.csv", log=lambda _: None),
     "output", ["analyze", DEMO, "-o", "t.csv", "--video", "t.csv"], "-o "),
])
def test_the_library_names_parameters_and_the_cli_names_flags(tmp_path, monkeypatch, capsys, call, library, command,
                                                             cli):
    """Before: the library's errors named flags ("--every", "pass --overwrite"), which a notebook user never typed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists.csv").write_text("mine\n")
    with pytest.raises(SettingError) as raised:
        call(tmp_path)
    assert library in str(raised.value) and "--" not in str(raised.value)
    assert main([str(arg) for arg in command]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and cli in err[0], err
    assert (tmp_path / "exists.csv").read_text() == "mine\n"
