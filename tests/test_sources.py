import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.errors import EmolensError
from emolens.record import CsvRecorder
from emolens.sources import VideoSource, open_source


def test_video_frames_carry_index_and_media_time(two_face_video):
    with open_source(two_face_video) as source:
        frames = list(source)
    assert source.fps == pytest.approx(10)
    assert [f.index for f in frames] == list(range(20))
    assert frames[5].t_s == pytest.approx(0.5)
    assert frames[0].image.shape == (240, 320, 3)


def test_every_nth_frame(two_face_video):
    with open_source(two_face_video, every=3) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(0, 20, 3))
    assert frames[1].t_s == pytest.approx(0.3)


def test_a_slow_consumer_still_gets_every_frame(two_face_video):
    """The decoder runs ahead into a small queue; when it finishes first, nothing may be dropped."""
    source = VideoSource(two_face_video, queue_size=2)
    with source:
        indices = []
        for frame in source:
            time.sleep(0.01)
            indices.append(frame.index)
    assert indices == list(range(20))


def test_closing_early_stops_the_decoder(two_face_video):
    with open_source(two_face_video) as source:
        first = next(iter(source))
    assert first.index == 0


def test_closing_after_a_ctrl_c_that_left_the_queue_locked_does_not_hang(two_face_video):
    """A Ctrl+C inside ``Queue.get`` can leave the queue's lock held by the consumer (seen once in CI: the
    interrupted run hung in ``close``); closing then gives up on the lock instead of waiting forever."""
    import threading

    source = VideoSource(two_face_video)
    next(iter(source))
    source._queue.mutex.acquire()  # what the interrupted get leaves behind
    closed = threading.Event()
    threading.Thread(target=lambda: (source.close(), closed.set()), daemon=True).start()
    assert closed.wait(timeout=15), "close() waited forever on the queue's lock"


def test_folder_skips_and_counts_unreadable_images(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    (tmp_path / "b.jpg").write_bytes(b"not really a jpeg")
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path) as source:
        frames = list(source)
    assert [f.source.split("/")[-1] for f in frames] == ["a.png", "c.png"]
    assert source.skipped == 1 and source.independent
    assert frames[1].image.shape == (512, 512, 3)


def test_single_image(tmp_path, astronaut):
    path = tmp_path / "face.jpg"
    cv2.imwrite(str(path), astronaut)
    with open_source(path) as source:
        frames = list(source)
    assert len(frames) == 1 and frames[0].t_s == 0.0


def test_truncated_video_yields_what_it_has(tmp_path, two_face_video):
    data = two_face_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        source = open_source(cut)
    except EmolensError as error:  # the index may be at the end of the file: then it is unreadable
        assert "cannot read video" in str(error)
        return
    with source:
        frames = list(source)
    assert 0 < len(frames) <= 20


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.mp4", "input not found"),
    (lambda d: (d / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000)) and d / "noise.mp4",
     "cannot read video"),
    (lambda d: (d / "text.avi").write_text("hello") and d / "text.avi", "cannot read video"),
    (lambda d: (d / "broken.png").write_bytes(b"\x89PNG broken") and d / "broken.png", "cannot read image"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no images in folder"),
])
def test_bad_inputs_give_clear_errors(tmp_path, make, message):
    with pytest.raises(EmolensError, match=message):
        open_source(make(tmp_path))


def test_missing_camera():
    with pytest.raises(EmolensError, match="camera 97 not found"):
        open_source(97)


def test_every_must_be_positive(two_face_video):
    """The library names its parameter (a notebook has no flags); ``tests/test_errors.py`` checks the CLI's flag."""
    with pytest.raises(EmolensError, match="^every must be 1 or more, got 0$"):
        open_source(two_face_video, every=0)


def test_every_on_a_folder_keeps_each_image_index_in_the_folder(tmp_path, astronaut):
    for number in range(5):
        cv2.imwrite(str(tmp_path / f"{number}.png"), astronaut)
    with open_source(tmp_path, every=2) as source:
        frames = list(source)
    assert [f.index for f in frames] == [0, 2, 4]
    assert [f.t_s for f in frames] == [0.0, 2.0, 4.0]
    assert [Path(f.source).name for f in frames] == ["0.png", "2.png", "4.png"]


def test_folder_images_are_scenes_with_their_own_face_ids_and_one_clock(tmp_path, astronaut, analyzer):
    """Photos of different people never share a face ID, and timestamps advance with time_s."""
    for number in range(3):
        cv2.imwrite(str(tmp_path / f"{number}.png"), astronaut)
    with open_source(tmp_path) as source, CsvRecorder(tmp_path / "t.csv", analyzer.labels) as recorder:
        analyzer.reset()
        for _ in analyzer.run(source, recorder):
            pass
    table = pd.read_csv(tmp_path / "t.csv", parse_dates=["timestamp"])
    assert table["face_id"].tolist() == [1, 2, 3]
    assert table["time_s"].tolist() == [0.0, 1.0, 2.0]
    elapsed = (table["timestamp"] - table["timestamp"].iloc[0]).dt.total_seconds()
    assert elapsed.tolist() == pytest.approx(table["time_s"].tolist(), abs=0.002)


class _MjpegServer:
    """An MJPEG stream on 127.0.0.1, as an IP camera serves it (multipart/x-mixed-replace over HTTP).

    The first connection is dropped after ``drop_after`` frames; later ones stream until ``stop()``,
    after which connections are refused with 503.
    """

    def __init__(self, jpegs: list[bytes], drop_after: int, fps: float = 25.0):
        import http.server
        import threading

        server = self
        self.connections = 0
        self.serving = threading.Event()
        self.serving.set()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                server.connections += 1
                if not server.serving.is_set():
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                limit = drop_after if server.connections == 1 else None
                sent = 0
                try:
                    while server.serving.is_set() and (limit is None or sent < limit):
                        jpeg = jpegs[sent % len(jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        sent += 1
                        time.sleep(1 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop_streaming(self) -> None:
        self.serving.clear()

    def close(self) -> None:
        self.serving.clear()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mjpeg_server(two_face_video):
    with open_source(two_face_video) as video:
        jpegs = [cv2.imencode(".jpg", frame.image)[1].tobytes() for frame in video]
    server = _MjpegServer(jpegs, drop_after=15)
    yield server
    server.close()


def test_an_mjpeg_stream_of_real_faces_survives_a_drop(mjpeg_server, analyzer):
    from emolens.sources import SourceLost, StreamSource

    source = open_source(mjpeg_server.url)
    assert isinstance(source, StreamSource) and source.live
    source.reconnect_s = 3.0
    frames, lost = [], None
    with source:
        try:
            for frame in source:
                frames.append(frame)
                if len(frames) == 40:
                    mjpeg_server.stop_streaming()  # the camera goes away for good
        except SourceLost as error:
            lost = error
    assert source.reconnects == 1 and mjpeg_server.connections >= 3
    assert len(frames) >= 40
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and all(b >= a for a, b in zip([f.t_s for f in frames], [f.t_s for f in frames][1:]))
    assert frames[0].image.shape == (240, 320, 3) and frames[0].source == mjpeg_server.url
    assert len(analyzer.analyze(frames[-1].image)) == 2  # the faces came through the stream
    assert lost is not None and "could not be reopened" in str(lost)


def test_a_stream_that_does_not_answer_gives_one_clear_error():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(EmolensError, match="cannot open stream http://127.0.0.1"):
        open_source(f"http://127.0.0.1:{port}/video")


def test_a_password_in_a_stream_url_is_never_shown():
    from emolens.sources import is_stream_url, redacted

    assert redacted("rtsp://admin:secret@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert redacted("http://127.0.0.1:8080/video") == "http://127.0.0.1:8080/video"
    assert is_stream_url("RTSP://cam/live") and is_stream_url("https://cam/mjpg")
    assert not is_stream_url("C:\\videos\\talk.mp4") and not is_stream_url("talk.mp4")
