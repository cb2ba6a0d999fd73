"""Emolens's side of fer.sh: write the clips, measure Emolens on them, and print the table with the ratios.

    python emolens_side.py clips DIR SECONDS    # the pipeline benchmark's clips of real faces
    python emolens_side.py measure DIR          # one JSON line per clip (default options, like `emolens analyze`)
    python emolens_side.py table RESULTS        # Markdown: median fps per tool and clip, Emolens / each peer
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import cv2

from emolens.bench.media import write_video
from emolens.pipeline import Analyzer
from emolens.sources import FrameSource
from emolens.types import Frame

CLIPS = {"640x480_1face": ((640, 480), 1), "1280x720_4faces": ((1280, 720), 4)}
FPS = 25.0


class DecodedClip(FrameSource):
    """A clip's frames decoded before timing, as fer_side.py reads them."""

    def __init__(self, path: Path):
        self.name = str(path)
        capture = cv2.VideoCapture(self.name)
        self.frames = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            self.frames.append(image)

    def __iter__(self) -> Iterator[Frame]:
        for index, image in enumerate(self.frames):
            yield Frame(index, index / FPS, image, self.name)


def write_clips(folder: Path, seconds: float) -> None:
    for name, (size_wh, faces) in CLIPS.items():
        write_video(folder / f"{name}.mp4", size_wh, faces, seconds, fps=FPS)


def measure(folder: Path) -> None:
    with Analyzer() as analyzer:
        for path in sorted(folder.glob("*.mp4")):
            clip = DecodedClip(path)
            analyzer.analyze(clip.frames[0])  # warm-up
            analyzer.reset()
            wall, cpu = time.perf_counter(), time.process_time()
            faces = sum(len(result.faces) for result in analyzer.run(clip))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            frames = len(clip.frames)
            print(json.dumps({"tool": "Emolens", "clip": path.stem, "fps": frames / wall, "cpu_fps": frames / cpu,
                              "faces": faces / frames}), flush=True)


def table(results: Path) -> None:
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in results.read_text().splitlines():
        row = json.loads(line)
        runs[row["tool"], row["clip"]].append(row)
    tools = sorted({tool for tool, _ in runs}, key=lambda tool: (tool != "Emolens", tool))
    clips = sorted({clip for _, clip in runs})
    rounds = max(len(rows) for rows in runs.values())
    print(f"# Emolens against fer\n\nCommand: `bash benchmarks/peers/fer.sh`. {platform.machine()}, {os.cpu_count()} "
          f"cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end "
          f"{os.getloadavg()[0]:.1f}. Median of {rounds} alternating rounds; frames decoded before timing; "
          "fps / fps per CPU second; faces: mean faces found per frame.\n")
    print("| tool | " + " | ".join(clips) + " |")
    print("|---" * (len(clips) + 1) + "|")
    for tool in tools:
        cells = []
        for clip in clips:
            rows = runs.get((tool, clip), [])
            if not rows:
                cells.append("-")
                continue
            cells.append(f"{statistics.median(r['fps'] for r in rows):.1f} / "
                         f"{statistics.median(r['cpu_fps'] for r in rows):.1f} "
                         f"({statistics.median(r['faces'] for r in rows):.1f} faces)")
        print(f"| {tool} | " + " | ".join(cells) + " |")
    print()
    for tool in tools[1:]:
        ratios = [statistics.median(r["fps"] for r in runs["Emolens", clip])
                  / statistics.median(r["fps"] for r in runs[tool, clip])
                  for clip in clips if (tool, clip) in runs and ("Emolens", clip) in runs]
        print(f"- Emolens / {tool}: " + ", ".join(f"{clip} {ratio:.1f}x" for clip, ratio in zip(clips, ratios)))


if __name__ == "__main__":
    command, argument = sys.argv[1], Path(sys.argv[2])
    if command == "clips":
        write_clips(argument, float(sys.argv[3]))
    elif command == "measure":
        measure(argument)
    else:
        table(argument)
