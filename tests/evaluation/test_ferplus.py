"""FER+ crowd votes: the paper's target rules on hand-made rows, both file layouts, and evaluation."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.card import ModelCard
from emolens.evaluation.ferplus import VOTE_COLUMNS, crowd_ece, crowd_targets, mean_kl, read_label_csv
from emolens.evaluation.labels import FER2013_LABELS, DataError

from ..conftest import SHARED_FER

LABELS = FER2013_LABELS  # angry, disgust, fear, happy, sad, surprise, neutral
SHARED_FERPLUS = SHARED_FER.parent / "ferplus"


def votes(**counts):
    """A ten-column vote row from keyword counts, e.g. votes(neutral=6, happiness=4)."""
    return np.array([counts.get(column, 0) for column in VOTE_COLUMNS], np.float32)


@pytest.mark.parametrize("row, majority, distribution", [
    # 6 of 10 neutral: majority neutral; the distribution keeps both emotions.
    (votes(neutral=6, happiness=4), "neutral", {"neutral": 0.6, "happy": 0.4}),
    # A single vote is an outlier: dropped before anything else.
    (votes(happiness=8, anger=1, sadness=1), "happy", {"happy": 1.0}),
    # 5 of 10 is not more than half: no majority, but a distribution to learn from.
    (votes(surprise=5, fear=5), None, {"surprise": 0.5, "fear": 0.5}),
    # Contempt and "not a face" majorities are not among our emotions.
    (votes(contempt=7, neutral=3), None, {"neutral": 1.0}),
    (votes(NF=10), None, {}),
    # Unknown votes count towards the total: 4 angry of 9 remaining is no majority.
    (votes(anger=4, unknown=3, disgust=2), None, {"angry": 4 / 6, "disgust": 2 / 6}),
])
def test_crowd_targets_follow_the_papers_rules(row, majority, distribution):
    targets = crowd_targets(row[None], LABELS)
    assert targets.majority[0] == (LABELS.index(majority) if majority else -1)
    expected = np.zeros(len(LABELS), np.float32)
    for label, share in distribution.items():
        expected[LABELS.index(label)] = share
    np.testing.assert_allclose(targets.distribution[0], expected, atol=1e-6)


def test_single_votes_are_kept_when_asked():
    targets = crowd_targets(votes(happiness=8, anger=1, sadness=1)[None], LABELS, drop_outliers=False)
    assert targets.distribution[0, LABELS.index("angry")] == pytest.approx(0.1)


def test_kl_and_calibration_against_the_crowd():
    crowd = np.array([[0.0, 0, 0, 0.75, 0, 0, 0.25]], np.float32)
    assert mean_kl(crowd, crowd) == pytest.approx(0.0, abs=1e-6)
    uniform = np.full((1, 7), 1 / 7, np.float32)
    assert mean_kl(crowd, uniform) == pytest.approx(np.log(7) - (-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))
    assert crowd_ece(crowd, crowd) == pytest.approx(0.0)


def write_ferplus_split(folder, faces, rows):
    """A FER+ split in Microsoft's layout: PNGs and a header-less label.csv."""
    folder.mkdir(parents=True)
    lines = []
    for index, ((_, face), row) in enumerate(zip(faces, rows)):
        name = f"fer{index:07d}.png"
        cv2.imwrite(str(folder / name), face)
        lines.append(",".join([name, '"(0, 0, 48, 48)"', *(str(int(v)) for v in row)]))
    (folder / "label.csv").write_text("\n".join(lines) + "\n")


ROWS = [votes(happiness=9, neutral=1), votes(neutral=7, sadness=3), votes(surprise=5, fear=5),
        votes(anger=6, disgust=4), votes(NF=10), votes(sadness=8, neutral=2)]


def test_label_csv_rows_and_a_bad_row(tmp_path, fer_faces):
    write_ferplus_split(tmp_path / "FER2013Test", fer_faces, ROWS)
    rows = read_label_csv(tmp_path / "FER2013Test" / "label.csv")
    assert [name for name, _ in rows][:2] == ["fer0000000.png", "fer0000001.png"]
    np.testing.assert_array_equal(rows[3][1], ROWS[3])
    (tmp_path / "bad.csv").write_text("fer0.png,\"(0, 0, 48, 48)\",1,2\n")
    with pytest.raises(DataError, match="bad.csv:1"):
        read_label_csv(tmp_path / "bad.csv")


def test_ferplus_folders_load_with_majority_labels_and_distributions(tmp_path, fer_faces):
    from emolens.training.data import load_dataset  # the train extra

    for split in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        write_ferplus_split(tmp_path / split, fer_faces, ROWS)
    data = load_dataset(tmp_path, image_size=48, channels=1)
    # Faces 2 (a 5/5 tie) and 4 (not a face) have no majority among the emotions: left out.
    assert data.sizes() == {"train": 4, "val": 4, "test": 4}
    x, y = data.splits["train"]
    assert [data.labels[i] for i in y] == ["happy", "neutral", "angry", "sad"]
    np.testing.assert_array_equal(x[0, :, :, 0], fer_faces[0][1])
    np.testing.assert_allclose(data.distributions["train"][1][[LABELS.index("neutral"), LABELS.index("sad")]],
                               [0.7, 0.3])


def test_fer2013new_csv_joined_by_row_to_fer2013_csv(tmp_path, fer_faces):
    from emolens.training.data import load_dataset

    usages = ["Training", "Training", "PublicTest", "PrivateTest", "Training", "Training"]
    pixels = ["emotion,pixels,Usage"] + [f"0,{' '.join(map(str, face.reshape(-1)))},{usage}"
                                         for (_, face), usage in zip(fer_faces, usages)]
    (tmp_path / "fer2013.csv").write_text("\n".join(pixels) + "\n")
    header = "Usage,Image name," + ",".join(VOTE_COLUMNS)
    lines = [header] + [f"{usage},{'' if i == 5 else f'fer{i:07d}.png'},{','.join(str(int(v)) for v in row)}"
                        for i, (usage, row) in enumerate(zip(usages, ROWS))]
    (tmp_path / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    data = load_dataset(tmp_path / "fer2013new.csv", image_size=48, channels=1)
    # Row 5 has no image name (Microsoft dropped it); row 4 is not a face; row 2 is a tie (PublicTest).
    assert data.sizes() == {"train": 2, "test": 1}
    assert [data.labels[i] for i in data.splits["train"][1]] == ["happy", "neutral"]
    np.testing.assert_array_equal(data.splits["test"][0][0, :, :, 0], fer_faces[3][1])


def test_votes_without_pixels_beside_them_is_one_clear_error(tmp_path):
    from emolens.training.data import load_dataset

    (tmp_path / "fer2013new.csv").write_text("Usage,Image name," + ",".join(VOTE_COLUMNS) + "\n")
    with pytest.raises(DataError, match="fer2013.csv"):
        load_dataset(tmp_path / "fer2013new.csv")


def test_probability_mode_draws_labels_from_the_votes():
    from emolens.training.batches import TrainingBatches

    targets = np.zeros((2000, 7), np.float32)
    targets[:, 3], targets[:, 6] = 0.7, 0.3
    batches = TrainingBatches(np.zeros((2000, 4, 4, 1), np.uint8), targets, np.ones(2000, np.float32),
                              batch_size=2000, seed=0, draw_labels=True)
    _, drawn, _ = batches[0]
    assert set(np.flatnonzero(drawn.sum(axis=0))) == {3, 6}
    assert drawn[:, 3].mean() == pytest.approx(0.7, abs=0.04)
    first = drawn.copy()
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][1], first), "labels are drawn afresh each epoch"


def emolens(*args):
    return subprocess.run([sys.executable, "-m", "emolens", *map(str, args)], capture_output=True, text=True)


def test_evaluate_on_a_ferplus_folder_reports_the_crowd_metrics_and_predictions(tmp_path, fer_faces):
    write_ferplus_split(tmp_path / "FER2013Test", fer_faces, ROWS)
    out = tmp_path / "pred" / "p.csv"
    result = emolens("evaluate", tmp_path / "FER2013Test", "--json", "--predictions", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 4 and report["dropped_no_majority"] == 2 and report["mode"] == "crops"
    assert 0 <= report["kl_to_crowd"] < 20 and 0 <= report["crowd_ece"] <= 1
    table = pd.read_csv(out)
    assert len(table) == 4 and table["face_found"].all()
    assert list(table["truth"]) == ["happy", "neutral", "angry", "sad"]
    np.testing.assert_allclose(table[list(LABELS)].sum(axis=1), 1.0, atol=1e-4)
    assert (table["prediction"] == table[list(LABELS)].idxmax(axis=1)).all()
    assert (tmp_path / "pred" / "p_worst.png").is_file()


def test_evaluate_a_ferplus_root_asks_for_one_split(tmp_path, fer_faces):
    write_ferplus_split(tmp_path / "FER2013Test", fer_faces, ROWS)
    write_ferplus_split(tmp_path / "FER2013Valid", fer_faces, ROWS)
    result = emolens("evaluate", tmp_path)
    assert result.returncode == 1 and "FER2013Valid" in result.stderr and "Traceback" not in result.stderr


def ferplus_or_skip():
    if not SHARED_FERPLUS.is_dir():
        pytest.skip(f"FER+ is not at {SHARED_FERPLUS} (it sits beside the checkout in CI)")
    return SHARED_FERPLUS


@pytest.mark.parametrize("model", ["fast", "accurate"])
def test_evaluate_reproduces_the_cards_ferplus_test_figures(model):
    result = emolens("evaluate", ferplus_or_skip() / "FER2013Test", "--json", "--device", "cpu", "--model", model)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    card = ModelCard.load(model).info["metrics"]["test"]
    assert measured["n"] == card["n"] == 3122
    assert measured["accuracy"] == pytest.approx(card["accuracy"], abs=1 / 3122)
    assert measured["macro_f1"] == pytest.approx(card["macro_f1"], abs=1e-3)
    assert measured["kl_to_crowd"] == pytest.approx(card["kl_to_crowd"], abs=2e-3)


def test_raw_faces_are_matched_to_their_equalised_jpegs(fer_faces):
    from emolens.evaluation.ferplus import match_equalised

    raw = np.stack([face for _, face in fer_faces])
    order = np.random.default_rng(0).permutation(len(raw))
    jpegs = np.stack([cv2.imdecode(cv2.imencode(".jpg", cv2.equalizeHist(raw[i]), [cv2.IMWRITE_JPEG_QUALITY, 90])[1],
                                   cv2.IMREAD_GRAYSCALE) for i in order])
    raw_index, jpeg_index = match_equalised(raw, jpegs[:-2])  # two faces have no counterpart
    assert len(raw_index) == len(raw) - 2
    assert (order[jpeg_index] == raw_index).all()


def test_evaluate_scores_raw_ferplus_faces_against_fer2013_labels(tmp_path, fer_faces):
    write_ferplus_split(tmp_path / "FER2013Test", fer_faces, [votes(neutral=10)] * len(fer_faces))
    for index, (emotion, face) in enumerate(fer_faces[:30]):
        folder = tmp_path / "fer2013" / emotion
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index}.jpg"), cv2.equalizeHist(face))
    result = emolens("evaluate", tmp_path / "FER2013Test", "--fer2013-labels", tmp_path / "fer2013", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 30 and report["unmatched"] == len(fer_faces) - 30
    # The truth comes from the FER2013 folders, not from the crowd's all-neutral votes.
    assert sum(row[LABELS.index("neutral")] for row in report["confusion"]) < 30
