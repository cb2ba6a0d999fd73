from argparse import Namespace
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from emolens.gui.settings import (
    MARKER_PRESETS,
    Settings,
    default_recording_folder,
    load_settings,
    overrides_from_args,
    save_settings,
)
from emolens.options import AnalyzerOptions


def test_defaults_are_the_pipelines():
    options = Settings().analyzer_options()
    assert options == AnalyzerOptions()


def test_round_trip(store):
    changed = Settings(camera=2, resolution="1280x720", model="accurate", device="cpu", detector="full",
                       min_confidence=0.35,
                       max_faces=6, tau_s=0.0, mirror=False, recording_folder="/data/sessions",
                       marker_presets=tuple(f"p{i}" for i in range(9)))
    save_settings(store, changed)
    assert load_settings(store) == changed


@pytest.mark.parametrize(("key", "stored", "expected"), [
    ("tau_s", "1", 1.0),  # an integer is a fine float
    ("resolution", '"640x480"', "640x480"),
    ("min_confidence", '"high"', Settings.min_confidence),
    ("min_confidence", "2.5", Settings.min_confidence),
    ("mirror", "1", Settings.mirror),  # not a bool
    ("camera", "true", Settings.camera),  # a bool is not an index
    ("camera", "-1", Settings.camera),
    ("device", '"tpu"', Settings.device),
    ("resolution", '"12x"', Settings.resolution),
    ("marker_presets", '["only one"]', MARKER_PRESETS),
    ("max_faces", "{not json", Settings.max_faces),
    ("model", '""', Settings.model),
])
def test_a_bad_entry_keeps_its_default(store, key, stored, expected):
    store.setValue(key, stored)
    assert getattr(load_settings(store), key) == expected


@pytest.mark.parametrize(("given", "expected"), [
    ({}, {}),
    ({"device": None, "tau_s": None}, {}),
    ({"device": "cpu", "tau_s": 0.0, "max_faces": 3, "source": "0"}, {"device": "cpu", "tau_s": 0.0, "max_faces": 3}),
    ({"model": "accurate", "tiles": 2}, {"model": "accurate"}),
])
def test_overrides_are_the_options_given(given, expected):
    assert overrides_from_args(Namespace(**given)) == expected


def test_recording_path_is_timestamped_in_the_folder():
    moment = datetime(2026, 11, 22, 23, 59, 1)
    assert Settings().recording_path(moment) == default_recording_folder() / "emolens-2026-11-22_23-59-01.csv"
    assert Settings(recording_folder="/x").recording_path(moment) == Path("/x/emolens-2026-11-22_23-59-01.csv")
    assert default_recording_folder().name == "Emolens"


def test_resolution_wh():
    assert Settings(resolution="1280x720").resolution_wh == (1280, 720)
    assert Settings().resolution_wh is None
    with pytest.raises(ValueError, match="resolution"):
        replace(Settings(), resolution="big")
