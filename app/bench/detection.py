"""``emolens bench detection``: how many faces each detector setting finds, how many it invents, how fast.

Real faces, never drawn ones: the astronaut photo, the cameraman of scikit-image's
``camera()``, the FER2013 crops in ``tests/fixtures/fer`` and, when it is present, 300 FER+
test faces from ``../shared/datasets/ferplus`` (48-pixel crops, upscaled). Each scene lays
some of them out at a given size (``emolens.bench.media.compose_scene``: a grid of
cells, or scattered) on grey or on a photo without faces; every frame draws other faces.
Frames with no face are photos without faces (a cat, coffee, a rocket, coins, text, ...),
whole or zoomed in.

A face is found when a detected box's centre lies in its box (one detection per face);
recall is found / faces; precision is found / all detections, over all frames, the empty
ones included. A face joins the pool only if both the short- and the full-range model find
it shown alone at 200 pixels: many 48-pixel FER crops are cut at the chin, covered by a
hand, turned away or blurred, and one model already fails on them alone, which measures
the model, not the settings compared here. A second table gives the recall of two settings
on the wider pool of faces either model finds alone. Detection time is the median and
p95 of the CPU time ``FaceDetector.detect`` takes per frame (all threads of the process):
unlike wall time, it does not grow when other work shares the cores. Then the detector is compared with
MediaPipe's own FaceDetector on the same frames (``emolens.bench.detector_parity``). A last section compares
``--detect tracked`` with the full search on every frame (``emolens.bench.tracked``): the scores on
real clips (the quality guard) and faces that walk, turn and leave the frame (recall, ID switches).
"""

from __future__ import annotations

import csv
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

from emolens.bench import detector_parity, tracked
from emolens.bench.media import FacePhoto, assign, astronaut_photo, compose_scene
from emolens.bench.pipeline import median_p95
from emolens.bench.registry import BenchRun
from emolens.card import ModelCard
from emolens.detect import FaceDetector
from emolens.options import AnalyzerOptions

# Benchmarks run from a checkout (they write benchmarks/*.md there): its fixtures and the data beside it.
FER_FIXTURES = Path("tests") / "fixtures" / "fer"
FERPLUS = Path("..") / "shared" / "datasets" / "ferplus"
# The cameraman's face in skimage's 512x512 camera(), as the full-range model boxes it.
_CAMERAMAN_BOX = (190.0, 122.0, 272.0, 204.0)
_NO_FACE_PHOTOS = ("brick", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
                   "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell")


@dataclass(frozen=True)
class Scene:
    """Frames of ``faces`` real faces ``face_px`` (low, high) wide, laid out by ``layout``."""

    size_wh: tuple[int, int]
    faces: int
    face_px: tuple[int, int]
    layout: str = "grid"
    goal: float | None = None  # the recall the default settings must reach here

    @property
    def title(self) -> str:
        if not self.faces:
            return f"{self.size_wh[0]}x{self.size_wh[1]}, no face"
        return (f"{self.size_wh[0]}x{self.size_wh[1]}, {self.faces} face(s) {self.face_px[0]}-{self.face_px[1]} px, "
                f"{self.layout}")


_DEFAULTS = AnalyzerOptions()


@dataclass(frozen=True)
class Setting:
    """Detector options to measure, named as on the command line (flags that differ from the defaults)."""

    detector: str = _DEFAULTS.detector
    min_confidence: float = _DEFAULTS.min_confidence
    tiles: int = _DEFAULTS.tiles
    squares: bool | None = _DEFAULTS.squares  # None: the detector's default (auto)
    second_look: bool = _DEFAULTS.second_look

    @property
    def title(self) -> str:
        parts = [f"--detector {self.detector}"]
        if self.min_confidence != _DEFAULTS.min_confidence:
            parts.append(f"--min-confidence {self.min_confidence:g}")
        if self.tiles > 1:
            parts.append(f"--tiles {self.tiles}")
        if self.squares is not None:
            parts.append(f"--squares {'always' if self.squares else 'never'}")
        if self.second_look != _DEFAULTS.second_look:
            parts.append(f"--second-look {'on' if self.second_look else 'off'}")
        return " ".join(parts)

    def is_default(self) -> bool:
        return self == Setting()


SCENES = (
    Scene((640, 480), 1, (150, 250)),
    Scene((640, 480), 4, (130, 170)),
    Scene((640, 480), 8, (100, 130)),
    Scene((1280, 720), 1, (250, 400)),
    Scene((1280, 720), 4, (270, 330), goal=0.98),  # the scene of issue 12: four faces of about 300 px
    Scene((1280, 720), 8, (220, 280), goal=0.97),
    Scene((1280, 720), 5, (100, 250), layout="scatter"),
    Scene((1280, 720), 8, (60, 100), layout="scatter"),
    Scene((1920, 1080), 4, (400, 500)),
    Scene((1920, 1080), 8, (330, 420)),
    Scene((640, 480), 0, (120, 200)),
    Scene((1280, 720), 0, (200, 330)),
)
# A goal scene gets three times the frames: at 40 frames one face of eight is 0.3 points of recall and one
# draw's standard error about one point, so draws of 40 put the same detector above and below a 97% goal
# (2026-12-06, three seeds: 96.6%, 97.8%, 98.1%).
GOAL_FRAMES_FACTOR = 3
OLD_DEFAULT = Setting(min_confidence=0.5, squares=False, second_look=False)  # the default before this benchmark
ONE_LOOK = Setting(min_confidence=0.5, second_look=False)  # the default before the second look
SETTINGS = (
    OLD_DEFAULT,
    Setting(min_confidence=0.3, squares=False, second_look=False),
    Setting("full", min_confidence=0.5, second_look=False),
    Setting("full", min_confidence=0.5, tiles=2, second_look=False),
    ONE_LOOK,
    Setting(min_confidence=0.4, second_look=False),
    Setting(),
    Setting(min_confidence=0.5),
    Setting(squares=True),
    Setting("full"),
    Setting(tiles=2),
)


@dataclass
class Tally:
    """Counts and times of one setting on one scene."""

    faces: int = 0
    found: int = 0
    false: int = 0
    times_ms: list[float] = field(default_factory=list)  # CPU time of the process per frame (all its threads)

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else float("nan")

    @property
    def precision(self) -> float:
        detections = self.found + self.false
        return self.found / detections if detections else 1.0


def fer_photo(gray: np.ndarray, card: ModelCard, name: str) -> FacePhoto:
    """A FER-style crop as a photo, its face box placed by the card's crop geometry (box = side / scale)."""
    side = gray.shape[1]
    width = side / card.crop.scale
    cx, cy = side / 2 - card.crop.offset_x * width, side / 2 - card.crop.offset_y * width
    return FacePhoto(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), (cx - width / 2, cy - width / 2, cx + width / 2,
                                                             cy + width / 2), name)


def face_pool(fer_folder: Path = FER_FIXTURES, ferplus: Path | None = FERPLUS, ferplus_faces: int = 300,
              log: Callable[[str], None] = print) -> list[FacePhoto]:
    """Every real face the benchmark uses: photos, FER fixtures, and FER+ test faces when present.

    FER+ faces are those no tagger called "not a face" and at most one called "unknown", the
    first ``ferplus_faces`` by name.
    """
    from skimage import data

    if not fer_folder.is_dir():
        log(f"FER fixtures skipped: {fer_folder} is absent (run from a checkout)")
    card = ModelCard.load()
    pool = [astronaut_photo(), FacePhoto(cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR), _CAMERAMAN_BOX,
                                         "camera")]
    pool += [fer_photo(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), card, f"fixture {p.name}")
             for p in sorted(fer_folder.glob("*/*.jpg"))]
    labels = ferplus / "FER2013Test" / "label.csv" if ferplus else None
    if labels is not None and labels.is_file():
        with labels.open(newline="") as file:
            # Columns: name, box, then votes ... contempt, unknown, NF (see the dataset's README).
            names = [row[0] for row in csv.reader(file) if int(row[-1]) == 0 and int(row[-2]) <= 1]
        pool += [fer_photo(cv2.imread(str(labels.parent / n), cv2.IMREAD_GRAYSCALE), card, f"FER+ {n}")
                 for n in sorted(names)[:ferplus_faces]]
    elif ferplus is not None:
        log(f"FER+ faces skipped: {ferplus} is absent")
    return pool


def findable(pool: list[FacePhoto], both: bool = True) -> list[FacePhoto]:
    """The faces that both models (``both=False``: either) find when shown alone at 200 pixels."""
    kept = []
    # One plain look at 0.5, as when the pool was first drawn: the pool must not move with the defaults measured.
    with FaceDetector("short", 0.5, second_look=False) as short, FaceDetector("full", 0.5, second_look=False) as full:
        for photo in pool:
            canvas = np.full((400, 400, 3), 96, np.uint8)
            canvas[50:350, 50:350] = photo.tile(200, 300)
            found = (len(short.detect(canvas)) == 1, len(full.detect(canvas)) == 1)
            if all(found) if both else any(found):
                kept.append(photo)
    return kept


def no_face_photos() -> list[np.ndarray]:
    """BGR photos from scikit-image with no face in them."""
    from skimage import data

    from emolens.images import to_bgr8

    return [to_bgr8(getattr(data, name)()) for name in _NO_FACE_PHOTOS]


def scene_frames(scene: Scene, pool: list[FacePhoto], empty: list[np.ndarray], frames: int,
                 seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``frames`` (BGR frame, ground-truth boxes) of a scene, the same for every setting (seeded)."""
    for index in range(frames):
        rng = np.random.default_rng([seed, index, scene.faces, *scene.size_wh])
        if scene.faces:
            photos = [pool[i] for i in rng.choice(len(pool), scene.faces, replace=scene.faces > len(pool))]
            background = empty[index % len(empty)] if index % 2 else None
            yield compose_scene(photos, scene.size_wh, scene.layout, scene.face_px, rng, background)
        else:
            yield _zoomed(empty[index % len(empty)], scene.size_wh, rng), np.zeros((0, 4), np.float32)


def _zoomed(photo: np.ndarray, size_wh: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random part of ``photo`` (40-100% of its side, the frame's aspect) resized to the frame."""
    height, width = photo.shape[:2]
    aspect = size_wh[0] / size_wh[1]
    crop_w = min(width, height * aspect) * rng.uniform(0.4, 1.0)
    crop_h = crop_w / aspect
    x0, y0 = rng.uniform(0, width - crop_w), rng.uniform(0, height - crop_h)
    part = photo[int(y0):int(y0 + crop_h), int(x0):int(x0 + crop_w)]
    return cv2.resize(part, size_wh, interpolation=cv2.INTER_AREA if crop_w > size_wh[0] else cv2.INTER_CUBIC)


def match(detected: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(faces found, false detections), as ``assign`` pairs them."""
    found = int((assign(detected, truth) >= 0).sum())
    return found, len(detected) - found


def measure(setting: Setting, scenes: tuple[Scene, ...], frames: dict[Scene, list]) -> dict[Scene, Tally]:
    """Run one setting's detector over every scene's frames."""
    tallies = {scene: Tally() for scene in scenes}
    with FaceDetector(setting.detector, setting.min_confidence, tiles=setting.tiles, squares=setting.squares,
                      second_look=setting.second_look) as detector:
        for scene in scenes:
            tally = tallies[scene]
            for image, truth in frames[scene]:
                started = time.process_time()
                faces = detector.detect(image)
                tally.times_ms.append((time.process_time() - started) * 1000)
                found, false = match(faces.xyxy, truth)
                tally.faces += len(truth)
                tally.found += found
                tally.false += false
    return tallies


def run(bench: BenchRun) -> int:
    """Measure every setting on every scene; write the Markdown table to ``bench.out``. 1 if a goal is missed."""
    quick, log = bench.quick, bench.log
    frames_per_scene = 4 if quick else 40
    pool = face_pool(log=log)
    kept, wider = findable(pool), findable(pool, both=False)
    empty = no_face_photos()
    frames = {scene: list(scene_frames(scene, kept, empty,
                                       frames_per_scene * (GOAL_FRAMES_FACTOR if scene.goal else 1)))
              for scene in SCENES}
    log(f"{len(kept)} of {len(pool)} faces in the pool ({len(wider)} in the wider one); "
        f"{frames_per_scene} frames per scene, {frames_per_scene * GOAL_FRAMES_FACTOR} per goal scene")
    results = {}
    for setting in SETTINGS:
        results[setting] = measure(setting, SCENES, frames)
        log(f"{setting.title}: " + ", ".join(f"{t.recall:.0%}" for t in results[setting].values() if t.faces))
    face_scenes = tuple(scene for scene in SCENES if scene.faces)
    wider_frames = {scene: list(scene_frames(scene, wider, empty, frames_per_scene)) for scene in face_scenes}
    wider_results = {setting: measure(setting, face_scenes, wider_frames)
                     for setting in (OLD_DEFAULT, ONE_LOOK, Setting())}
    lines = _report(results, kept, pool, frames_per_scene, quick)
    lines += ["", f"## Recall on the wider pool ({len(wider)} faces either model finds alone)", "",
              "| setting | " + " | ".join(s.title for s in face_scenes) + " |", "|---" * (len(face_scenes) + 1) + "|"]
    lines += [f"| {_name(setting)} | " + " | ".join(f"{tallies[s].recall:.1%}" for s in face_scenes) + " |"
              for setting, tallies in wider_results.items()]
    lines += detector_parity.report(frames, log)
    tracked_lines, quality_met = tracked.report(kept, quick, log)
    bench.write("\n".join(lines + tracked_lines))
    default = Setting()
    missed = [scene for scene in SCENES if scene.goal and results[default][scene].recall < scene.goal]
    for scene in missed:
        log(f"goal missed: {scene.title}: {results[default][scene].recall:.1%} < {scene.goal:.0%}")
    if not quality_met:
        log("goal missed: --detect tracked's scores differ from the full search's on a real clip")
    return 1 if (missed or not quality_met) and not quick else 0


def _report(results: dict[Setting, dict[Scene, Tally]], kept: list, pool: list, frames: int, quick: bool) -> list[str]:
    face_scenes = [scene for scene in SCENES if scene.faces]
    ferplus = sum(p.name.startswith("FER+") for p in kept)
    lines = [
        "# Detection benchmark",
        "",
        f"Command: `emolens bench detection{' --quick' if quick else ''}`. "
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, ai-edge-litert {version('ai-edge-litert')}, mediapipe "
        f"{version('mediapipe')} (the reference); "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end "
        f"{os.getloadavg()[0]:.1f} (times are inflated when other work shares the cores; recall and "
        "precision are not).",
        "",
        f"{frames} frames per scene, {frames * GOAL_FRAMES_FACTOR} per scene with a goal; {len(kept)} real faces "
        f"({ferplus} FER+ test faces, the rest the astronaut, "
        f"the cameraman and FER2013 fixtures; {len(pool) - len(kept)} crops that one model or both miss "
        "when shown alone left out). "
        "Recall: share of the faces found. Precision: found / all detections, frames with no face included. "
        "Detect: CPU milliseconds per frame (all threads of the process), median / p95; fps: frames per CPU "
        "second. "
        "**Bold**: the default settings; a goal in brackets.",
        "",
        "## Recall per scene",
        "",
        "| setting | " + " | ".join(s.title + (f" [{s.goal:.0%}]" if s.goal else "") for s in face_scenes) + " |",
        "|---" * (len(face_scenes) + 1) + "|",
    ]
    for setting, tallies in results.items():
        lines.append(f"| {_name(setting)} | " + " | ".join(f"{tallies[s].recall:.1%}" for s in face_scenes) + " |")
    lines += ["", "## Precision and speed", "",
              "| setting | precision | false faces per empty frame | detect ms 640x480 | detect ms 1280x720 "
              "| detect ms 1920x1080 | fps 640x480 | fps 1280x720 |",
              "|---|---|---|---|---|---|---|---|"]
    for setting, tallies in results.items():
        total = Tally()
        for tally in tallies.values():
            total.found += tally.found
            total.false += tally.false
        empty = [t for s, t in tallies.items() if not s.faces]
        false_per_empty = sum(t.false for t in empty) / max(sum(len(t.times_ms) for t in empty), 1)
        speed = {}
        for width in (640, 1280, 1920):
            samples = [ms for s, t in tallies.items() if s.size_wh[0] == width for ms in t.times_ms]
            speed[width] = median_p95(samples)
        lines.append(f"| {_name(setting)} | {total.precision:.2%} | {false_per_empty:.2f} | "
                     + " | ".join(f"{m:.1f} / {p:.1f}" for m, p in speed.values())
                     + f" | {1000 / speed[640][0]:.0f} | {1000 / speed[1280][0]:.0f} |")
    return lines


def _name(setting: Setting) -> str:
    return f"**{setting.title} (default)**" if setting.is_default() else setting.title
