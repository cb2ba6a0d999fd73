"""Tracked detection (``--detect tracked``): full searches on schedule, faces carried in between, on real faces."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from emolens.bench.media import DEMO, Walker, astronaut_photo, moving_frame
from emolens.detect import FaceDetector
from emolens.follow import FULL_EVERY_FRAMES, FULL_EVERY_S, FaceFollower
from emolens.options import AnalyzerOptions
from emolens.pipeline import Analyzer, Models
from emolens.record import CsvRecorder
from emolens.sources import open_source
from emolens.track import box_iou, match_boxes
from emolens.types import Frame

FPS = 25.0


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as shared:
        yield shared


@pytest.fixture(scope="module")
def models():
    shared = Models()
    yield shared
    shared.close()


def walking_clip(walkers: list[Walker], frames: int, size_wh=(640, 480)) -> list[Frame]:
    return [Frame(index, index / FPS, moving_frame(walkers, size_wh, index / FPS)[0], "walk")
            for index in range(frames)]


def run_clip(models: Models, frames: list[Frame], detect: str) -> list:
    with Analyzer(AnalyzerOptions(detect=detect), models) as analyzer:
        return [analyzer.process(frame).faces for frame in frames]


def test_a_carried_face_matches_the_full_search_within_a_few_pixels_on_the_demo_clip(models):
    with open_source(DEMO) as source:
        frames = list(source)
    full, tracked = run_clip(models, frames, "full"), run_clip(models, frames, "tracked")
    carried = [(reference, faces) for reference, faces in zip(full, tracked) if not faces.full_search]
    assert len(carried) >= len(frames) // 3  # the shortcut was taken
    errors = []
    for reference, faces in carried:
        assert len(faces) == len(reference) == 2
        pairs = match_boxes(box_iou(reference.xyxy, faces.xyxy), 0.5)
        assert len(pairs) == 2
        errors += [np.abs(reference.xyxy[i] - faces.xyxy[j]).max() for i, j in pairs.items()]
    # The search's own boxes move by 2.5 px (median) from the midpoint of their neighbours' on this clip.
    assert np.median(errors) <= 4.0 and np.percentile(errors, 95) <= 8.0, (np.median(errors), max(errors))


def test_a_face_entering_mid_clip_is_found_within_the_search_interval(models):
    photo = astronaut_photo()
    arrives = 11  # a carried frame: the newcomer waits for the next full search
    walkers = [Walker(photo, 120, (160, 240), (30, 0)), Walker(photo, 120, (460, 240), (0, 0), enter_s=arrives / FPS)]
    tracked = run_clip(models, walking_clip(walkers, 20), "tracked")
    found = next(index for index, faces in enumerate(tracked) if index >= arrives and len(faces) == 2)
    assert found - arrives < FULL_EVERY_FRAMES
    assert [len(faces) for faces in tracked[:arrives]] == [1] * arrives


def test_a_lost_face_is_searched_for_on_the_very_next_frame(models):
    photo = astronaut_photo()
    frames = walking_clip([Walker(photo, 120, (160, 240), (0, 0)), Walker(photo, 120, (460, 240), (0, 0))], 12)
    frames[6:] = walking_clip([Walker(photo, 120, (160, 240), (0, 0))], 12)[6:]  # the second face is gone at 6
    tracked = run_clip(models, frames, "tracked")
    searched = [faces.full_search for faces in tracked]
    lost_at = next(index for index in range(6, 12) if searched[index])  # the first search without it
    assert len(tracked[lost_at]) == 1
    assert searched[lost_at + 1], searched  # looked again at once, not after the interval
    assert all(len(faces) == 1 for faces in tracked[lost_at:])  # and never carried it again


def test_full_searches_run_on_the_first_frame_and_on_schedule(detector, astronaut):
    follower = FaceFollower()
    searched = [follower.detect(detector, Frame(index, index / FPS, astronaut)).full_search for index in range(7)]
    assert searched == [index % FULL_EVERY_FRAMES == 0 for index in range(7)]
    slow = FaceFollower()  # a source slower than the time limit: every frame is searched
    assert all(slow.detect(detector, Frame(index, index * FULL_EVERY_S, astronaut)).full_search for index in range(4))
    follower.reset()
    assert follower.detect(detector, Frame(7, 7 / FPS, astronaut)).full_search


def test_each_image_of_a_folder_is_searched_in_full(models, astronaut):
    with Analyzer(AnalyzerOptions(), models) as analyzer:
        results = [analyzer.process(Frame(index, index / FPS, astronaut), independent=True) for index in range(3)]
    assert all(result.faces.full_search for result in results)


def test_full_mode_searches_every_frame_and_the_csv_says_which_frames_were_searched(tmp_path, models):
    with open_source(DEMO) as source:
        frames = list(source)[:6]
    for detect, expected in (("full", [1] * 6), ("tracked", [1, 0] * 3)):
        path = tmp_path / f"{detect}.csv"
        with Analyzer(replace(AnalyzerOptions(), detect=detect), models) as analyzer, \
                CsvRecorder(path, analyzer.labels) as recorder:
            for frame in frames:
                recorder.append(frame, analyzer.process(frame).faces)
        rows = pd.read_csv(path).groupby("frame")["full_search"].first()
        assert rows.tolist() == expected
