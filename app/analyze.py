"""Headless analysis: inputs (videos, images, folders, cameras) -> one CSV timeline + a summary.

Example::

    summary = analyze_inputs(["clip.mp4"], Path("timeline.csv"))
    print(summary.format())
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emolens.errors import EmolensError
from emolens.images import IMAGE_SUFFIXES
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
                   progress: Callable[[int, int], None] | None = None, overwrite: bool = False) -> AnalyzeSummary:
    """Analyze every input in turn into one CSV (the ``source`` column tells them apart).

    Everything that can be checked is checked before the output is opened: every input
    exists and opens, the output is none of the inputs (nor an image in an input folder),
    and the model card fits its model. An existing output is replaced only with
    ``overwrite``; another run writing it is refused (see ``emolens.record``). A run that
    fails or is interrupted before its first row removes the output it created, so it
    leaves no file behind; it never removes or truncates a file it did not create.

    Raises:
        EmolensError: a missing or unreadable input, an output that is an input, exists or
            is locked, an unwritable output, a full disk.
    """
    check_output(inputs, output, overwrite)
    for spec in inputs:
        if not spec.isdigit():
            with open_source(spec, every=every):  # fails here, before any output exists
                pass
    summary = AnalyzeSummary(output=output)
    started = time.perf_counter()
    with Analyzer(options) as analyzer:
        log(f"emolens: {analyzer.classifier.describe()}")
        recorder = None
        try:
            recorder = CsvRecorder(output, analyzer.labels, keypoints=keypoints, overwrite=overwrite)
            for spec in inputs:
                with open_source(spec, every=every) as source:
                    _analyze_source(analyzer, source, recorder, summary, progress)
        except BaseException:  # Ctrl+C too: a run stopped before its first row leaves no file
            if recorder is not None and recorder.rows == 0:
                recorder.discard()
            elif recorder is not None:
                recorder.close()
            raise
        recorder.close()
        summary.rows = recorder.rows
    summary.seconds = time.perf_counter() - started
    return summary


def check_output(inputs: list[str], output: Path, overwrite: bool = False) -> None:
    """Refuse an output that is (or resolves to) an input, or an image an input folder would read,
    or that exists (a regular file) without ``overwrite``.

    Raises:
        EmolensError: naming the input the output would destroy, or the existing file.
    """
    target = Path(os.path.realpath(output))
    for spec in inputs:
        if spec.isdigit():
            continue
        source = Path(os.path.realpath(spec))
        same = target == source or (output.exists() and source.exists() and os.path.samefile(output, source))
        if same:
            raise EmolensError(f"the output {output} is the input {spec}; writing it would destroy the input: "
                               f"choose another -o")
        if source.is_dir() and target.parent == source and target.suffix.lower() in IMAGE_SUFFIXES:
            raise EmolensError(f"the output {output} is an image in the input folder {spec}; writing it would "
                               f"replace that image: choose another -o, e.g. a .csv file")
    if not overwrite and output.is_file():
        raise EmolensError(f"{output} already exists; pass --overwrite to replace it, or choose another file")


def _analyze_source(analyzer: Analyzer, source: FrameSource, recorder: CsvRecorder, summary: AnalyzeSummary,
                    progress: Callable[[int, int], None] | None) -> None:
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
