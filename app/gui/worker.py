"""The pipeline thread: it owns the source, the Analyzer and the recording; the GUI asks and looks.

The GUI thread sends small immutable requests (``request()``: a thread-safe queue) and reads
the newest result with ``take()``. The thread runs ``Analyzer.run()``, the same generator as
``emolens analyze``, with the CLI's ``CsvRecorder`` behind it, so recording happens here and
never on the GUI thread. Only the newest result is kept, in a one-item slot:
``result_ready`` is emitted only when the slot was empty, so a slow GUI has at most one
pending signal and stale results are overwritten, never queued.

Files play at their own speed and frames that are already late are skipped, so the picture
keeps up when inference is slower than the video; ``realtime=False`` processes every frame
as fast as possible (screenshots). Cameras deliver only their newest frame anyway.

Example::

    worker = PipelineWorker(AnalyzerOptions())
    worker.result_ready.connect(lambda: view.show_update(worker.take()))
    worker.start()
    worker.request(OpenSource("clip.mp4"))
    worker.request(StartRecording(Path("session.csv")))
    worker.stop()        # closes the recording and the source, then joins the thread
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from emolens.detect import FaintLook
from emolens.errors import EmolensError, error_line
from emolens.options import AnalyzerOptions
from emolens.pipeline import Analyzer, FrameResult
from emolens.record import CsvRecorder
from emolens.replay.camera_video import CameraVideoWriter, camera_video_path
from emolens.sources import FrameSource, open_source
from emolens.types import Faces, Frame

_FPS_TAU_S = 1.0
_FPS_WARMUP_FRAMES = 10  # the rate is shown from this many frames on, never from a first sample


class FrameRate:
    """Frames per second, smoothed over about ``_FPS_TAU_S``; 0.0 (not known yet) during the warm-up,
    which ends with the mean rate of its frames (the first interval alone can read 800 fps)."""

    def __init__(self) -> None:
        self.fps = 0.0
        self._frames = 0
        self._first_s: float | None = None
        self._last_s: float | None = None

    def tick(self, now: float) -> float:
        """Count a frame done at ``now`` (seconds, ``time.perf_counter``); returns the rate (0.0: warming up)."""
        self._frames += 1
        if self._first_s is None:
            self._first_s = now
        elif self._frames == _FPS_WARMUP_FRAMES:
            self.fps = (self._frames - 1) / max(now - self._first_s, 1e-6)
        elif self._frames > _FPS_WARMUP_FRAMES:
            weight = 1.0 - math.exp(-(now - self._last_s) / _FPS_TAU_S)
            self.fps += weight * (1.0 / max(now - self._last_s, 1e-6) - self.fps)
        self._last_s = now
        return self.fps
_MAX_SKIP_S = 1.0
_NO_FACE_S = 1.0  # no face for this long (or none yet in this source): say why
_DIAGNOSE_EVERY_S = 5.0  # and again at most this often while none is found
# Frames that may wait for the landmarker: a live view shows a frame at most this many frames late.
LIVE_LOOKAHEAD = 2
_CAPTURED_KEPT = 64  # capture times remembered per source, far more than LIVE_LOOKAHEAD


@dataclass(frozen=True)
class OpenSource:
    """Close the current source (and recording) and open ``spec``: camera index digits, a file or a folder."""

    spec: str
    size_wh: tuple[int, int] | None = None


@dataclass(frozen=True)
class SetOptions:
    """Rebuild the Analyzer with new options; the source and the recording go on."""

    options: AnalyzerOptions


@dataclass(frozen=True)
class SetTau:
    """Change the score smoothing time constant (seconds, 0 = raw) from the next frame on."""

    tau_s: float


@dataclass(frozen=True)
class StartRecording:
    """Record to ``path`` (replacing a recording in progress); with ``save_video``, also the frames analysed
    beside it (``emolens.replay.camera_video``)."""

    path: Path
    save_video: bool = False


@dataclass(frozen=True)
class StopRecording:
    """Finish the recording in progress, if any."""


@dataclass(frozen=True)
class AddMarker:
    """Write ``text`` into the recording's next row."""

    text: str


@dataclass(frozen=True)
class FollowStimulus:
    """Write on every recorded row the stimulus on screen when its frame was captured: ``clock(captured_s)``
    (a ``perf_counter`` time) returns ``(name, position in the stimulus's media)`` or None, from any thread;
    a change of stimulus marks ``<name> ends`` / ``<name> starts`` on that frame. ``clock=None``: stop."""

    clock: Callable[[float], tuple[str, float] | None] | None


@dataclass(frozen=True)
class _Stop:
    pass


@dataclass(frozen=True)
class MarkerOutcome:
    """What became of an ``AddMarker``: written into the recording (``recorded``), or not, because none was running."""

    text: str
    recorded: bool


@dataclass(frozen=True)
class AnalyzerInfo:
    """What the loaded pipeline is: label order, provider (``"CPU"``/``"CUDA"``) and one describing line."""

    labels: tuple[str, ...]
    provider: str
    description: str


@dataclass(frozen=True)
class SourceEnd:
    """A source stopped: it came to its end (``failed`` False), was lost mid-way (a camera
    unplugged), or could not be opened at all (``opened`` False)."""

    name: str
    message: str
    failed: bool
    opened: bool = True


@dataclass(frozen=True)
class RecordingState:
    """A recording started (``active``), or finished with ``rows`` rows; ``message`` explains a failure.
    ``video``: the camera video being written beside it (while active), or saved (after)."""

    active: bool = False
    path: Path | None = None
    rows: int = 0
    started_s: float = 0.0
    message: str = ""
    video: Path | None = None


@dataclass(frozen=True)
class Update:
    """The newest processed frame, as the GUI takes it.

    Attributes:
        result: the frame, its faces and stage timings from ``Analyzer.run``.
        captured_s: ``time.perf_counter()`` when the frame was captured (cameras), was due
            (files played in real time) or was read (as fast as possible).
        fps: processed frames per second, smoothed over about a second; 0.0 during the first frames
            (``FrameRate``'s warm-up).
        processed: frames processed since the source opened.
        source_fps: the source's nominal frame rate (0 when unknown).
        recorded_rows: rows written so far, or None when not recording.
    """

    result: FrameResult
    captured_s: float
    fps: float
    processed: int
    source_fps: float
    recorded_rows: int | None


class PipelineWorker(QThread):
    """A thread that builds an ``Analyzer`` and feeds it the open source, newest result wins.

    Args:
        options: the Analyzer's options; ``SetOptions`` replaces them.
        realtime: play files at their own speed, skipping late frames (False: every frame,
            as fast as possible).

    Signals carry the immutable types above; all but ``result_ready`` fire rarely.
    """

    analyzer_ready = Signal(object)  # AnalyzerInfo
    failed = Signal(str)  # the Analyzer could not be built
    source_opened = Signal(str)  # the source's name
    source_ended = Signal(object)  # SourceEnd
    recording_changed = Signal(object)  # RecordingState
    marker_added = Signal(object)  # MarkerOutcome, one per AddMarker
    no_face = Signal(str)  # no face in view: the likely reason (emolens.diagnose), e.g. "too dark (...)"
    result_ready = Signal()  # take() has a new Update

    def __init__(self, options: AnalyzerOptions, realtime: bool = True, parent=None):
        super().__init__(parent)
        self._options = options
        self._realtime = realtime
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._interrupt = threading.Event()
        self._slot_lock = threading.Lock()
        self._latest: Update | None = None
        # Everything below is touched only by the worker thread.
        self._analyzer: Analyzer | None = None
        self._build_error = ""
        self._source: FrameSource | None = None
        self._playback: _Playback | None = None
        self._results: Iterator[FrameResult] | None = None
        self._recording = _Recording(self.recording_changed.emit,
                                     lambda text: self.marker_added.emit(MarkerOutcome(text, True)))
        self._processed = 0
        self._rate = FrameRate()
        self._faint_look = FaintLook()
        self._face_seen_s: float | None = None
        self._diagnosed_s: float | None = None

    # -- called from the GUI thread ------------------------------------------------------

    def request(self, request) -> None:
        """Queue a request; it is applied before the next frame (a wait for a file's frame is cut short)."""
        self._requests.put(request)
        self._interrupt.set()

    def take(self) -> Update | None:
        """The newest update, once: None when nothing new arrived since the last call."""
        with self._slot_lock:
            update, self._latest = self._latest, None
        return update

    def stop(self) -> None:
        """Finish the recording, close the source and the Analyzer, and join the thread."""
        if self.isRunning():
            self.request(_Stop())
            self.wait()

    # -- the worker thread ---------------------------------------------------------------

    def run(self) -> None:
        # Every request and every frame catches whatever it raises (see _apply and _step), so
        # one bad frame or library error ends that source, never this thread: a dead thread
        # would leave the window waiting forever and "Try again" unanswered.
        try:
            self._build()
            while self._serve_requests():
                if self._results is not None:
                    try:
                        self._step()
                    except Exception as error:  # noqa: BLE001 -- e.g. cv2.error or an ONNX Runtime error mid-stream
                        self._unexpected(None, error)
        finally:
            self._close_source()
            self._faint_look.close()
            if self._analyzer is not None:
                self._analyzer.close()

    def _serve_requests(self) -> bool:
        """Apply waiting requests, blocking for one while no source is open; False on stop."""
        self._interrupt.clear()
        block = self._results is None
        while True:
            try:
                request = self._requests.get(block=block)
            except queue.Empty:
                return True
            if isinstance(request, _Stop):
                return False
            try:
                self._apply(request)
            except Exception as error:  # noqa: BLE001 -- a library's error (OpenCV, ONNX Runtime) or a bug
                self._unexpected(request, error)
            block = False

    def _unexpected(self, request, error: Exception) -> None:
        """Report an error no stage turned into an ``EmolensError``, from ``request`` (None: while a
        frame was processed): the source in play ends with its message, a source being opened
        counts as not opened, a failed rebuild as ``failed``."""
        message = error_line(error)
        print(f"emolens: {message}", file=sys.stderr)
        if isinstance(request, OpenSource):
            self._close_source()
            self.source_ended.emit(SourceEnd(request.spec, message, failed=True, opened=False))
        elif isinstance(request, SetOptions):
            self._close_source()
            self._build_error = message
            self.failed.emit(message)
        elif self._source is not None:
            self._end_source(message, failed=True)

    def _apply(self, request) -> None:
        if isinstance(request, OpenSource):
            self._open(request)
        elif isinstance(request, SetOptions):
            self._options = request.options
            self._build()
        elif isinstance(request, SetTau):
            self._options = replace(self._options, tau_s=request.tau_s)
            if self._analyzer is not None:
                self._analyzer.session.set_smoothing(request.tau_s)
        elif isinstance(request, StartRecording) and self._analyzer is not None:
            video_fps = (self._rate.fps or (self._source.fps if self._source else 0.0)) if request.save_video else None
            self._recording.start(request.path, self._analyzer.labels, behaviour=self._analyzer.behaviour is not None,
                                  video_fps=video_fps)
        elif isinstance(request, StopRecording):
            self._recording.stop()
        elif isinstance(request, AddMarker):
            self.marker_added.emit(MarkerOutcome(request.text, self._recording.mark(request.text)))
        elif isinstance(request, FollowStimulus):
            self._recording.follow(request.clock, self._captured_s)

    def _build(self) -> None:
        """(Re)build the Analyzer; an open source goes on with the new one."""
        if self._results is not None:
            self._results.close()
            self._results = None
        if self._analyzer is not None:
            self._analyzer.close()
            self._analyzer = None
        try:
            self._analyzer = Analyzer(self._options)
        except Exception as error:  # noqa: BLE001 -- EmolensError, or LiteRT/ONNX Runtime failing to start
            self._close_source()
            self._build_error = error_line(error)
            self.failed.emit(self._build_error)
            return
        classifier = self._analyzer.classifier
        self.analyzer_ready.emit(AnalyzerInfo(self._analyzer.labels, classifier.provider, classifier.describe()))
        if self._playback is not None:
            self._results = self._analyzer.run(self._playback, self._recording, lookahead=LIVE_LOOKAHEAD,
                                               overlap=False)

    def _open(self, request: OpenSource) -> None:
        self._close_source()
        if self._analyzer is None:
            self.failed.emit(self._build_error)
            return
        try:
            source = open_source(request.spec, size_wh=request.size_wh)
        except EmolensError as error:
            self.source_ended.emit(SourceEnd(request.spec, str(error), failed=True, opened=False))
            return
        self._analyzer.reset()
        self._source = source
        self._playback = _Playback(source, self._realtime and not source.live, self._interrupt)
        self._results = self._analyzer.run(self._playback, self._recording, lookahead=LIVE_LOOKAHEAD,
                                           overlap=False)
        self._processed, self._rate = 0, FrameRate()
        self._face_seen_s = self._diagnosed_s = None
        self.source_opened.emit(source.name)

    def _captured_s(self, frame: Frame) -> float:
        """When ``frame`` was captured (``perf_counter``); the last frame read's time if it is no longer known."""
        playback = self._playback
        return playback.captured.get(frame.index, playback.captured_s) if playback is not None else time.perf_counter()

    def _step(self) -> None:
        """Process one frame and publish it, or report the end of the source."""
        try:
            result = next(self._results, None)
        except EmolensError as error:  # SourceLost: a camera unplugged; or a file broken mid-way
            self._end_source(str(error), failed=True)
            return
        if result is None:
            self._end_source(f"end of {self._source.name}", failed=False)
            return
        result.timings_ms["decode"] = self._playback.decode_ms  # run() also counted the wait for the frame's time
        self._processed += 1
        update = Update(result, self._playback.captured_s, self._rate.tick(time.perf_counter()), self._processed, self._source.fps,
                        self._recording.rows if self._recording.active else None)
        with self._slot_lock:
            was_empty = self._latest is None
            self._latest = update
        if was_empty:
            self.result_ready.emit()
        self._say_why_no_face(result)

    def _say_why_no_face(self, result: FrameResult) -> None:
        """Emit ``no_face`` with the likely reason once no face was found for ``_NO_FACE_S`` (at once
        in a source that has shown none yet: a photo), then at most every ``_DIAGNOSE_EVERY_S``."""
        t_s = result.frame.t_s
        if len(result.faces):
            self._face_seen_s, self._diagnosed_s = t_s, None
            return
        if self._face_seen_s is not None and t_s - self._face_seen_s < _NO_FACE_S:
            return
        if self._diagnosed_s is not None and t_s - self._diagnosed_s < _DIAGNOSE_EVERY_S:
            return
        self._diagnosed_s = t_s
        self.no_face.emit(str(self._faint_look.why_no_face(result.frame.image)))

    def _end_source(self, message: str, failed: bool) -> None:
        name = self._source.name
        self._close_source()
        self.source_ended.emit(SourceEnd(name, message, failed))

    def _close_source(self) -> None:
        """Finish the recording first (its file must end cleanly), then release the source."""
        self._recording.stop()
        if self._results is not None:
            self._results.close()
        if self._source is not None:
            self._source.close()
        self._source = self._playback = self._results = None


class _Playback(FrameSource):
    """``source`` as a window shows it: files at their own speed, frames already late skipped.

    Attributes:
        captured_s: ``perf_counter`` time the last frame was due (real-time files) or was
            read (cameras, or files played as fast as possible).
        captured: the same by frame index, for the last ``_CAPTURED_KEPT`` frames (a frame is recorded
            a few frames after it was read: ``LIVE_LOOKAHEAD``).
        decode_ms: time spent getting the last frame, without the wait for its time.
    """

    def __init__(self, source: FrameSource, realtime: bool, interrupt: threading.Event):
        self.name, self.fps, self.live, self.independent = source.name, source.fps, source.live, source.independent
        self._frames = iter(source)
        self._realtime = realtime
        self._interrupt = interrupt
        self._clock_s: float | None = None
        self._last_yield_s = time.perf_counter()
        self.captured_s = 0.0
        self.captured: dict[int, float] = {}
        self.decode_ms = 0.0

    def __iter__(self) -> Iterator[Frame]:
        period_s = 1.0 / self.fps if self.fps else 1.0
        while True:
            started = time.perf_counter()
            frame = next(self._frames, None)
            now = time.perf_counter()
            self.decode_ms = (now - started) * 1000.0
            if frame is None:
                return
            if self._realtime:
                if self._clock_s is None:
                    self._clock_s = now - frame.t_s
                due = self._clock_s + frame.t_s
                # A frame is stale once the next one is due; images of a folder are never skipped.
                # After a second of skipping one is shown anyway, in case decoding itself is slow.
                stale = now - due > period_s and not self.independent
                if stale and now - self._last_yield_s < _MAX_SKIP_S:
                    continue
                if due > now:
                    self._interrupt.wait(due - now)
                self.captured_s = due
            else:
                self.captured_s = now
            self.captured[frame.index] = self.captured_s
            self.captured.pop(frame.index - _CAPTURED_KEPT, None)
            self._last_yield_s = time.perf_counter()
            yield frame


class _Recording:
    """The worker's recording: a ``CsvRecorder`` between start and stop, handed to ``Analyzer.run``, and
    the camera video beside it when asked (``CameraVideoWriter``: a frame for each frame given rows).

    A write error (disk full) ends the recording with a message; the picture goes on. A camera video that
    cannot be written ends itself with a message; the timeline goes on. While it follows a stimulus clock
    (``follow``), each row carries the stimulus on screen when its frame was captured.
    """

    def __init__(self, changed: Callable[[RecordingState], None], marked: Callable[[str], None]):
        self._changed = changed
        self._marked = marked
        self._csv: CsvRecorder | None = None
        self._video: CameraVideoWriter | None = None
        self._started_s = 0.0
        self._clock: Callable[[float], tuple[str, float] | None] | None = None
        self._captured_s: Callable[[Frame], float] | None = None
        self._stimulus = ""  # the stimulus on the last frame recorded

    def follow(self, clock: Callable[[float], tuple[str, float] | None] | None,
               captured_s: Callable[[Frame], float]) -> None:
        self._clock, self._captured_s = clock, captured_s

    @property
    def active(self) -> bool:
        return self._csv is not None

    @property
    def rows(self) -> int:
        return self._csv.rows if self._csv is not None else 0

    def start(self, path: Path, labels: tuple[str, ...], behaviour: bool = False, video_fps: float | None = None
              ) -> None:
        """Record to ``path``; with ``video_fps``, the camera video too, refused (and nothing started) when
        its file exists: an older session's video is never replaced."""
        self.stop()
        try:
            if video_fps is not None:  # before the timeline: a refusal leaves an existing timeline untouched
                self._video = CameraVideoWriter(camera_video_path(Path(path)), video_fps)
            self._csv = CsvRecorder(path, labels, behaviour=behaviour)
        except EmolensError as error:
            self._video = None
            self._changed(RecordingState(path=Path(path), message=str(error)))
            return
        self._started_s = time.monotonic()
        self._stimulus = ""
        self._changed(RecordingState(active=True, path=self._csv.path, started_s=self._started_s,
                                     video=self._video.path if self._video else None))

    def append(self, frame: Frame, faces: Faces) -> None:
        if self._csv is None:
            return
        shown = self._clock(self._captured_s(frame)) if self._clock is not None else None
        self._mark_change(shown[0] if shown else "")
        try:
            self._csv.append(frame, faces, stimulus=shown)
        except EmolensError as error:  # the recorder has cut the file to its last whole row and closed it
            self._finish(str(error))
            return
        if self._video is not None:
            try:
                self._video.write(frame)
            except EmolensError as error:
                self._video.discard()
                self._video = None
                self._changed(RecordingState(active=True, path=self._csv.path, started_s=self._started_s,
                                             message=f"the camera video stopped: {error}; the timeline goes on"))

    def _mark_change(self, stimulus: str) -> None:
        """Mark where the stimulus on screen changes: ``<old> ends``, ``<new> starts`` (study sessions'
        markers, as ``emolens.study.sessions.place_in_stimulus_time`` writes them)."""
        if stimulus == self._stimulus:
            return
        for text in [f"{self._stimulus} ends"] * bool(self._stimulus) + [f"{stimulus} starts"] * bool(stimulus):
            self._csv.mark(text)
            self._marked(text)
        self._stimulus = stimulus

    def mark(self, text: str) -> bool:
        """Attach ``text`` to the next row; False when no recording is running."""
        if self._csv is None:
            return False
        self._csv.mark(text)
        return True

    def stop(self) -> None:
        if self._csv is None:
            return
        try:
            self._csv.close()
        except EmolensError as error:
            self._finish(str(error))
            return
        self._finish("")

    def _finish(self, message: str) -> None:
        csv, self._csv = self._csv, None
        video, saved = self._video, None
        self._video = None
        if video is not None:
            try:
                saved = video.finish()
            except EmolensError as error:
                message = "; ".join(part for part in (message, str(error)) if part)
        self._changed(RecordingState(path=csv.path, rows=csv.rows, started_s=self._started_s, message=message,
                                     video=saved))
