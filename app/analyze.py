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

from emolens.behaviour.track import FaceBehaviourTotals
from emolens.detect import FaintLook
from emolens.draw import AnnotatedVideo
from emolens.errors import EmolensError, SettingError
from emolens.images import IMAGE_SUFFIXES, MAX_IMAGE_PIXELS
from emolens.markers import MarkerFeed, read_markers
from emolens.options import AnalyzerOptions
from emolens.pipeline import Analyzer
from emolens.record import CsvRecorder, Recorder, refuse_existing
from emolens.sources import FrameSource, is_stream_url, open_source

_NAMES_SHOWN = 5  # unreadable images named in the summary; the rest are counted


@dataclass
class AnalyzeSummary:
    """What an analysis processed: counts, speed and the share of each dominant emotion."""

    output: Path
    frames: int = 0
    face_rows: int = 0
    rows: int = 0
    skipped_images: list[str] = field(default_factory=list)  # the unreadable images' paths
    truncated: int = 0  # inputs that ended well before their announced frame count
    seconds: float = 0.0
    dominant: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    behaviour: FaceBehaviourTotals | None = None
    vanished: int = 0  # face-frames where a tracked face went unseen and came back with its ID
    notes: list[str] = field(default_factory=list)  # what else was written (markers, video)

    @property
    def incomplete(self) -> bool:
        """Whether part of an input could not be read: a video that ended early, images skipped."""
        return bool(self.truncated or self.skipped_images)

    def format(self) -> str:
        fps = self.frames / self.seconds if self.seconds else 0.0
        total = sum(self.dominant.values())
        shares = ", ".join(f"{label} {count / total:.1%}" for label, count in self.dominant.most_common()) or "-"
        lines = [*(f"warning: {w}" for w in self.warnings),
                 f"wrote {self.rows} rows to {self.output}",
                 f"frames {self.frames}, faces {self.face_rows}, wall time {self.seconds:.1f} s, {fps:.1f} fps",
                 f"dominant emotion: {shares}", *self.notes]
        if self.behaviour is not None:
            lines.append(format_behaviour(self.behaviour))
        if self.vanished:
            lines.append(f"faces likely missed: {self.vanished} face-frame(s) where a tracked face went unseen for "
                         f"under a second and came back (see the README on --detector and --tiles)")
        if self.skipped_images:
            shown = ", ".join(self.skipped_images[:_NAMES_SHOWN])
            more = len(self.skipped_images) - _NAMES_SHOWN
            lines.insert(0, f"skipped {len(self.skipped_images)} unreadable image(s) ({shown}"
                            f"{f' and {more} more' if more > 0 else ''}): not images, corrupt, or over "
                            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
        return "\n".join(lines)


def format_behaviour(totals: FaceBehaviourTotals) -> str:
    """The summary's behaviour line: attention share, blink rate, mean expressiveness."""
    if not totals.readings:
        return "behaviour: no face could be read by the landmarker"
    blinks = (f"blink rate {totals.blink_rate_per_min:.1f}/min ({totals.blinks} blinks in {totals.seconds:.1f} "
              f"face-seconds)" if totals.seconds > 0 else "no blink rate (no video)")
    return (f"behaviour: attention {totals.attention_share:.1%} of readings, {blinks}, "
            f"mean expressiveness {totals.mean_expressiveness:.2f}")


def analyze_inputs(inputs: list[str], output: Path, options: AnalyzerOptions | None = None, every: int = 1,
                   keypoints: bool = False, log: Callable[[str], None] = print,
                   progress: Callable[[int, int], None] | None = None, landmarks: bool = False,
                   video: Path | None = None, markers: Path | None = None, overwrite: bool = False) -> AnalyzeSummary:
    """Analyze every input in turn into one CSV (the ``source`` column tells them apart).

    Everything that can be checked is checked before the output is opened: every input
    exists and opens, no output (``output``, ``video``) is an input, the markers file, an image
    in an input folder or the other output, and the model card fits its model. An existing
    output is replaced only with ``overwrite``; another run writing it is refused (see ``emolens.record``). A run that
    fails or is interrupted before its first row removes the output it created, so it
    leaves no file behind; it never removes or truncates a file it did not create.

    With ``options.behaviour`` the CSV gets the behaviour columns (``landmarks``: the 956
    landmark columns too) and the summary a behaviour line. ``video``: also write the frames
    with faces drawn (``emolens.draw``; it appears only once complete). ``markers``: a
    ``time,label`` file merged into the ``marker`` column (``emolens.markers``).

    Raises:
        EmolensError: a missing or unreadable input, an output that is an input, exists or
            is locked, an unwritable output, a full disk.
    """
    check_output(inputs, output, overwrite, video, markers)
    for spec in inputs:
        if not spec.isdigit() and not is_stream_url(spec):
            with open_source(spec, every=every):  # fails here, before any output exists
                pass
    if landmarks and not (options and options.behaviour):
        raise SettingError("{landmarks} needs {behaviour}")
    marker_list = read_markers(markers) if markers is not None else []
    summary = AnalyzeSummary(output=output)
    started = time.perf_counter()
    with Analyzer(options) as analyzer:
        log(f"emolens: {analyzer.classifier.describe()}")
        behaviour = analyzer.behaviour is not None
        annotated = AnnotatedVideo(video, analyzer.labels) if video is not None else None  # checks it first
        recorder = extras = None
        try:
            recorder = CsvRecorder(output, analyzer.labels, keypoints=keypoints, overwrite=overwrite,
                                   behaviour=behaviour, landmarks=landmarks)
            extras = _Extras(recorder, marker_list, markers, annotated)
            for spec in inputs:
                with open_source(spec, every=every) as source:
                    analyze_source(analyzer, source, extras.feed, summary, progress, extras.video)
        except BaseException:  # Ctrl+C too: a run stopped before its first row leaves no file
            kept = recorder is not None and recorder.rows > 0
            try:
                if extras is not None:  # the video keeps what the CSV keeps
                    extras.end(summary, keep=kept)
                elif annotated is not None:
                    annotated.discard()
            except EmolensError as error:  # what stopped the run stays the error (or the interruption) to report
                log(f"emolens: warning: {error}")
            if recorder is not None:
                recorder.close() if kept else recorder.discard()
            raise
        recorder.close()
        try:
            extras.end(summary, keep=True)
        except EmolensError as error:
            raise EmolensError(f"{error}; the timeline {summary.output} is complete") from None
        summary.rows = recorder.rows
        if behaviour:
            summary.behaviour = analyzer.behaviour_tracker.totals()
    summary.seconds = time.perf_counter() - started
    return summary


class _Extras:
    """What ``analyze`` writes besides the timeline: merged markers and the annotated video."""

    def __init__(self, recorder: CsvRecorder, markers: list, markers_path: Path | None, video: AnnotatedVideo | None):
        self.feed = MarkerFeed(recorder, markers) if markers else recorder
        self.markers_path = markers_path
        self.video = video

    def end(self, summary: AnalyzeSummary, keep: bool) -> None:
        """Report the markers merged; put the video in place (``keep``) or remove it."""
        if isinstance(self.feed, MarkerFeed):
            summary.notes.append(f"markers: {self.feed.merged} merged from {self.markers_path}")
            for source, count in self.feed.left_over().items():
                summary.warnings.append(f"{count} marker(s) of {self.markers_path} fall after the last frame of "
                                        f"{source}: not merged there")
        if self.video is None:
            return
        if keep and self.video.frames:
            self.video.finish()
            summary.notes.append(f"wrote {self.video.frames} annotated frames to {self.video.path}")
        else:
            self.video.discard()


def check_output(inputs: list[str], output: Path, overwrite: bool = False, video: Path | None = None,
                 markers: Path | None = None) -> None:
    """Refuse outputs (``output``, and ``video`` when given) that would destroy a file: one that is (or
    resolves to) an input, an image an input folder would read, or the ``markers`` file; two outputs
    on one path; a timeline named for another format (``out.xlsx``); an existing regular file without
    ``overwrite``.

    Raises:
        EmolensError: naming the input, the other output or the existing file.
    """
    outputs = {"output": output, **({"video": video} if video is not None else {})}
    for setting, path in outputs.items():
        _check_not_an_input(inputs, markers, setting, path)
    if video is not None and _same_file(output, video):
        raise SettingError(f"{{output}} {output} and {{video}} {video} are the same file; one would replace the "
                           f"other: give them different names")
    if output.suffix and output.suffix.lower() != ".csv":  # a name that promises another format would hold CSV text
        raise SettingError(f"{{output}} {output}: emolens analyze writes a CSV timeline; name it .csv "
                           f"(open it in a spreadsheet from there)")
    for path in outputs.values():
        refuse_existing(path, overwrite)


def _check_not_an_input(inputs: list[str], markers: Path | None, setting: str, output: Path) -> None:
    target = Path(os.path.realpath(output))
    for spec in inputs:
        if spec.isdigit():
            continue
        source = Path(os.path.realpath(spec))
        if _same_file(output, Path(spec)):
            raise SettingError(f"the output {output} is the input {spec}; writing it would destroy the input: "
                               f"choose another {{{setting}}}")
        if source.is_dir() and target.parent == source and target.suffix.lower() in IMAGE_SUFFIXES:
            raise SettingError(f"the output {output} is an image in the input folder {spec}; writing it would "
                               f"replace that image: choose another {{{setting}}}, e.g. a .csv file")
    if markers is not None and _same_file(output, markers):
        raise SettingError(f"the output {output} is the markers file {markers}; writing it would destroy the "
                           f"markers: choose another {{{setting}}}")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links too), existing or not."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    return a.exists() and b.exists() and os.path.samefile(a, b)


def analyze_source(analyzer: Analyzer, source: FrameSource, recorder: Recorder, summary: AnalyzeSummary,
                   progress: Callable[[int, int], None] | None = None, video: AnnotatedVideo | None = None) -> None:
    """Record every frame of one open source and add its counts to ``summary`` (shared with
    ``emolens batch``, so both write the same rows); a file that ends early adds a warning."""
    analyzer.reset()
    expected = -(-source.frame_count // source.every)  # ceil: frames kept by --every
    frames = 0
    last_seen: dict[int, int] = {}  # face ID -> the processed frame it was last seen in
    faces_before, first_image = summary.face_rows, None
    for result in analyzer.run(source, recorder):
        first_image = result.frame.image if first_image is None else first_image
        if video is not None:
            video.write(result.frame.image, result.faces, source.fps / source.every)
        if not source.independent:
            summary.vanished += _vanished(last_seen, result.faces, frames)
        frames += 1
        summary.face_rows += len(result.faces)
        summary.dominant.update(result.faces.dominant)
        if progress:
            progress(frames, expected)
    summary.frames += frames
    summary.skipped_images += source.skipped_files
    if first_image is not None and summary.face_rows == faces_before:
        with FaintLook() as look:
            summary.notes.append(f"no face found in {source.name}: {look.why_no_face(first_image)}")
    if expected and frames < 0.9 * expected and not source.independent:
        summary.truncated += 1
        summary.warnings.append(f"{source.name} ended after {frames} of about {expected} frames "
                                f"(truncated or damaged file?)")


def _vanished(last_seen: dict[int, int], faces, frame: int) -> int:
    """Frames in which the faces of this frame had gone unseen since their track's last sighting.

    The tracker keeps a face's ID across a gap of under ``max_gap_s``: a face seen before and
    after the gap was almost surely in view during it, so each frame of the gap is a face the
    detector likely missed (a lower bound: longer gaps start a new ID and are not counted).
    """
    gaps = 0
    for face_id in (faces.face_id if faces.face_id is not None else ()):
        previous = last_seen.get(int(face_id))
        if previous is not None:
            gaps += frame - previous - 1
        last_seen[int(face_id)] = frame
    return gaps
