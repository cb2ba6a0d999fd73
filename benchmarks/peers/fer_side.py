"""fer's whole pipeline (face detection, then its emotion model) over each clip of a folder, in fer's own
virtualenv (see fer.sh): one JSON line per clip with frames per second and per CPU second."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
from fer import FER


def frames_of(path: Path) -> list:
    """Every frame of a clip, decoded before timing (Emolens is timed on the same decoded frames)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def main(detector: str, folder: Path) -> None:
    fer = FER(mtcnn=detector == "mtcnn")
    for path in sorted(folder.glob("*.mp4")):
        frames = frames_of(path)
        fer.detect_emotions(frames[0])  # the first call builds the models' graphs
        faces = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for frame in frames:
            faces += len(fer.detect_emotions(frame))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(json.dumps({"tool": f"fer ({detector.upper() if detector == 'mtcnn' else 'Haar'})", "clip": path.stem,
                          "fps": len(frames) / wall, "cpu_fps": len(frames) / cpu, "faces": faces / len(frames)}),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
