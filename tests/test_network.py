"""Nothing leaves the machine: every command under ``strace``, and no telemetry file under a fresh ``HOME``.

``analyze``, ``evaluate``, ``report``, the window's pipeline (both with behaviour on: MediaPipe's
landmarker networks on LiteRT) and ``batch --engine ray`` (its own local Ray cluster) each run as a
user runs them, traced with ``strace -f -e trace=%network``. A
test fails on any connection or datagram to an address that is not loopback, on any DNS query
(port 53, or a connection made to the local resolver's socket), and on any file written under the
fresh ``HOME`` beyond the caches named in ``ALLOWED_HOME_FILES``.
The environment is cleaned of the variables that would switch telemetry off on their own
(``CI``, ``ORT_DISABLE_TELEMETRY``...), so what is checked is what Emolens itself sets.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import mmap
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import psutil
import pytest

ASSETS = Path(str(resources.files("emolens.assets")))
STRACE = shutil.which("strace")
# Variables that switch ONNX Runtime's telemetry off by themselves (it skips CI machines).
_TELEMETRY_SWITCHES = ("CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI", "BUILDKITE",
                       "JENKINS_URL", "TEAMCITY_VERSION", "ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS")
# What may appear under HOME: matplotlib's and fontconfig's font caches, the window's own settings.
ALLOWED_HOME_FILES = re.compile(r"^(\.cache/matplotlib/|\.cache/fontconfig/|\.config/Emolens/)")
_SEND = re.compile(r"\b(connect|sendto|sendmsg|sendmmsg)\(")
_INET = re.compile(r'sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')
# A connection made to a resolver's socket; one that fails (no nscd here) sends nothing, and what
# the C library asks next, the hosts file or DNS on port 53, is what counts.
_RESOLVER = re.compile(r'sun_path="[^"]*(resolve|nscd)[^"]*"\}, \d+\) = \d')


def _strace_problem() -> str | None:
    if STRACE is None:
        return "strace is not installed (apt-get install strace; .ci/run installs it)"
    probe = subprocess.run([STRACE, "-f", "-qq", "-e", "trace=%network", "-o", os.devnull, "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"strace cannot trace processes here: {probe.stderr.strip()[:200]}"
    return None


def outside_traffic(trace: list[str]) -> list[str]:
    """The syscalls of an strace log that reach past this machine or ask a resolver for a name."""
    found = []
    for line in trace:
        if not _SEND.search(line):
            continue
        for port, ipv4, ipv6 in _INET.findall(line):
            if port == "53" or not _is_loopback(ipv4 or ipv6):
                found.append(line)
        if _RESOLVER.search(line):
            found.append(line)
    return found


@pytest.mark.parametrize(("line", "outside"), [
    # what MediaPipe 1.2.3 did on creating a face detector: ask the resolver for play.googleapis.com
    ('7580  connect(12, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0', True),
    ('9  connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("216.239.32.1")}, 16) = -1', True),
    ('9  sendto(3, "x", 1, 0, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
     'inet_pton(AF_INET6, "2001:4860::1", &sin6_addr), sin6_scope_id=0}, 28) = 1', True),
    ('9  connect(3, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 42) = 0', True),
    ('9  connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = 0', True),
    ('9  connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file)', False),
    # what Ray's usage module did on starting a local cluster: ask the cloud metadata service
    ('9  connect(23, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("169.254.169.254")}, 16) = -1', True),
    ('9  connect(7, {sa_family=AF_INET6, sin6_port=htons(41649), sin6_flowinfo=htonl(0), '
     'inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = -1', False),
    ('9  connect(3, {sa_family=AF_INET, sin_port=htons(8000), sin_addr=inet_addr("127.0.0.1")}, 16) = 0', False),
    ('9  connect(3, {sa_family=AF_UNIX, sun_path="/tmp/.X11-unix/X0"}, 20) = 0', False),
    ('9  socket(AF_INET, SOCK_DGRAM, IPPROTO_IP) = 8', False),
])
def test_the_trace_check_tells_outside_traffic_from_local(line, outside):
    assert bool(outside_traffic([line])) == outside


def _is_loopback(text: str) -> bool:
    address = ipaddress.ip_address(text)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1, as Ray's gRPC connects
    return (mapped or address).is_loopback


def clean_environment(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in _TELEMETRY_SWITCHES and not name.startswith("XDG_")}
    env.update(HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return env


@pytest.fixture(scope="module")
def traced_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, list[str], Path, Path]]:
    """Each command run once under strace with its own fresh HOME and TMPDIR: (result, strace log lines,
    HOME, TMPDIR)."""
    problem = _strace_problem()
    if problem:
        pytest.skip(problem)
    work = tmp_path_factory.mktemp("offline")
    (work / "faces" / "happy").mkdir(parents=True)
    shutil.copy(ASSETS / "astronaut.jpg", work / "faces" / "happy" / "astronaut.jpg")
    timeline = work / "session.csv"
    commands = {
        "analyze": ["analyze", ASSETS / "demo.mp4", "-o", timeline, "--behaviour"],  # the landmarker on LiteRT too
        "evaluate": ["evaluate", work / "faces"],
        "report": ["report", timeline, "-o", work / "report"],
        "window": ["--source", ASSETS / "demo.mp4", "--screenshot", work / "window.png", "--frames", "20",
                   "--behaviour"],
        "batch-ray": ["batch", ASSETS / "astronaut.jpg", "--out", work / "batch", "--engine", "ray", "--workers", "1"],
    }
    runs = {}
    for name, args in commands.items():  # in this order: report reads what analyze wrote
        if name == "batch-ray" and importlib.util.find_spec("ray") is None:
            continue
        home = work / f"home-{name}"
        home.mkdir()
        # Ray's unix sockets live under the temporary folder: a short one, as a user's /tmp is.
        temporary = Path(tempfile.mkdtemp(prefix="el-", dir="/tmp")) if name == "batch-ray" else work / f"tmp-{name}"
        temporary.mkdir(exist_ok=True)
        log = work / f"strace-{name}.log"
        result = subprocess.run([STRACE, "-f", "-qq", "-e", "trace=%network", "-o", str(log),
                                 sys.executable, "-m", "emolens", *map(str, args)], capture_output=True, text=True,
                                timeout=600, env={**clean_environment(home), "TMPDIR": str(temporary)}, cwd=work)
        runs[name] = (result, log.read_text().splitlines(), home, temporary)
    yield runs
    for _, _, _, temporary in runs.values():
        shutil.rmtree(temporary, ignore_errors=True)


COMMANDS = ["analyze", "evaluate", "report", "window", "batch-ray"]


def _traced(runs: dict, command: str) -> tuple[subprocess.CompletedProcess, list[str], Path, Path]:
    if command not in runs:
        pytest.skip(f"{command} needs Ray (the 'batch' extra)")
    return runs[command]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_reaches_past_this_machine(traced_runs, command):
    """Before: batch --engine ray asked 169.254.169.254 and resolved metadata.google.internal."""
    result, trace, _, _ = _traced(traced_runs, command)
    assert result.returncode == 0, result.stderr
    assert outside_traffic(trace) == []


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_writes_telemetry_under_home(traced_runs, command):
    """Before: ONNX Runtime wrote .cache/Microsoft/DeveloperTools/.onnxruntime/deviceid and onnxruntime.db."""
    result, _, home, _ = _traced(traced_runs, command)
    assert result.returncode == 0, result.stderr
    written = sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())
    assert [path for path in written if not ALLOWED_HOME_FILES.match(path)] == []


def test_the_installed_mediapipe_carries_no_usage_uploader():
    """MediaPipe 0.10.35 and later link Google's Clearcut uploader (``play.googleapis.com/log``); we pin below it."""
    import mediapipe

    libraries = list(Path(mediapipe.__file__).parent.rglob("*.so*"))
    assert libraries
    for library in libraries:
        with open(library, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for marker in (b"play.googleapis.com", b"TasksStatsProtoLogger", b"clearcut_uploader"):
                assert data.find(marker) < 0, f"{library.name} carries {marker.decode()}"


@pytest.mark.slow
def test_a_ray_batch_leaves_no_files_behind(traced_runs):
    """Before: Ray left its session logs (naming the inputs) in $TMPDIR/ray and a token in ~/.ray/auth_token."""
    result, _, home, temporary = _traced(traced_runs, "batch-ray")
    assert result.returncode == 0, result.stderr
    assert "1 analysed now" in result.stderr
    assert [str(path.relative_to(temporary)) for path in temporary.rglob("*")] == []
    assert not (home / ".ray").exists()


@pytest.mark.slow
def test_the_service_reaches_nothing_past_this_machine(tmp_path):
    """``emolens serve`` under strace while a client sends it an image and a video job over real HTTP: the
    service's web stack (uvicorn, FastAPI) and the job's report add no traffic of their own."""
    problem = _strace_problem()
    if problem:
        pytest.skip(problem)
    httpx = pytest.importorskip("httpx", reason="the service's client needs the 'serve' extra")
    pytest.importorskip("fastapi", reason="emolens serve needs the 'serve' extra")
    home, log = tmp_path / "home", tmp_path / "strace-serve.log"
    home.mkdir()
    process = subprocess.Popen([STRACE, "-f", "-qq", "-e", "trace=%network", "-o", str(log), sys.executable, "-m",
                                "emolens", "serve", "--port", "0", "--jobs-dir", str(tmp_path / "jobs")],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path,
                               env={**clean_environment(home), "EMOLENS_TOKEN": ""})
    try:
        url = re.search(r"serving (http://\S+?) ", process.stdout.readline()).group(1)
        with httpx.Client(base_url=url, timeout=120) as client:
            _wait_until_ready(client)
            image = client.post("/v1/images", content=(ASSETS / "astronaut.jpg").read_bytes(),
                                headers={"Content-Type": "image/jpeg"})
            assert image.status_code == 200 and len(image.json()["faces"]) == 1
            job = client.post("/v1/videos?every=10", content=(ASSETS / "demo.mp4").read_bytes(),
                              headers={"Content-Type": "video/mp4"}).json()
            while (status := client.get(f"/v1/jobs/{job['id']}").json())["state"] not in ("done", "failed"):
                time.sleep(0.2)
            assert status["state"] == "done" and client.get(status["report"]).status_code == 200
    finally:  # stop the service (strace's child) as Ctrl+C does; strace ends with it
        for child in psutil.Process(process.pid).children():
            child.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert outside_traffic(log.read_text().splitlines()) == []
    written = sorted(str(path.relative_to(home)) for path in home.rglob("*") if path.is_file())
    assert [path for path in written if not ALLOWED_HOME_FILES.match(path)] == []


def _wait_until_ready(client, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.2)
    raise AssertionError("emolens serve did not become ready")
