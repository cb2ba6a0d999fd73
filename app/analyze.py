"""Headless analysis: inputs (videos, images, folders, cameras) -> one CSV timeline + a summary.

Example::

    summary = analyze_inputs(["clip.mp4"], Path("timeline.csv"))
    print(summary.format())
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emolens.errors import EmolensError
from emolens.pipeline import Analyzer, AnalyzerOptions
from emolens.record import CsvRecorder
from emolens.sources import FrameSource, open_source


@dataclass
class AnalyzeSummary:
    """What an analysis processed: counts, speed and the share of each dominant emotion."""

    output: Path
    frames: int = 0
    face_rows: int = 0
    rows: int = 0
    skipped_images: int = 0
    seconds: float = 0.0
    dominant: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def format(self) -> str:
        fps = self.frames / self.seconds if self.seconds else 0.0
        total = sum(self.dominant.values())
        shares = ", ".join(f"{label} {count / total:.1%}" for label, count in self.dominant.most_common()) or "-"
        lines = [*(f"warning: {w}" for w in self.warnings),
                 f"wrote {self.rows} rows to {self.output}",
                 f"frames {self.frames}, faces {self.face_rows}, wall time {self.seconds:.1f} s, {fps:.1f} fps",
                 f"dominant emotion: {shares}"]
        if self.skipped_images:
            lines.insert(0, f"skipped {self.skipped_images} unreadable image(s)")
        return "\n".join(lines)


def analyze_inputs(inputs: list[str], output: Path, options: AnalyzerOptions | None = None, every: int = 1,
                   keypoints: bool = False, log: Callable[[str], None] = print,
                   progress: Callable[[int, int], None] | None = None) -> AnalyzeSummary:
    """Analyze every input in turn into one CSV (the ``source`` column tells them apart).

    A missing input fails before anything is written; any failure before the first row
    removes the (header-only) output, so a failed run leaves no file behind.

    Raises:
        EmolensError: a missing or unreadable input, an unwritable output, a full disk.
    """
    for spec in inputs:
        if not spec.isdigit() and not Path(spec).exists():
            raise EmolensError(f"input not found: {spec}")
    summary = AnalyzeSummary(output=output)
    started = time.perf_counter()
    with Analyzer(options) as analyzer:
        log(f"emolens: {analyzer.classifier.describe()}")
        recorder = CsvRecorder(output, analyzer.labels, keypoints=keypoints)
        try:
            with recorder:
                for spec in inputs:
                    with open_source(spec, every=every) as source:
                        analyze_source(analyzer, source, recorder, summary, progress)
        except EmolensError:
            if recorder.rows == 0:
                output.unlink(missing_ok=True)
            raise
        summary.rows = recorder.rows
    summary.seconds = time.perf_counter() - started
    return summary


def analyze_source(analyzer: Analyzer, source: FrameSource, recorder: CsvRecorder, summary: AnalyzeSummary,
                   progress: Callable[[int, int], None] | None = None) -> None:
    """Record every frame of one open source and add its counts to ``summary`` (shared with
    ``emolens batch``, so both write the same rows); a file that ends early adds a warning."""
    analyzer.reset()
    expected = -(-source.frame_count // source.every)  # ceil: frames kept by --every
    frames = 0
    for result in analyzer.run(source, recorder):
        frames += 1
        summary.face_rows += len(result.faces)
        summary.dominant.update(analyzer.labels[i] for i in result.faces.probs.argmax(axis=1))
        if progress:
            progress(frames, expected)
    summary.frames += frames
    summary.skipped_images += source.skipped
    if expected and frames < 0.9 * expected and not source.independent:
        summary.warnings.append(f"{source.name} ended after {frames} of about {expected} frames "
                                f"(truncated or damaged file?)")
