"""`bilge watch` against the real engine: last use from events (live, and read back
from the engine's past events when the guard starts), eviction cheapest first (on
Docker and on Podman), metrics, webhook alerts, a clean stop, and an engine that goes
away."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from bilge.state.store import StateStore
from tests.integration.bilge_cli import ZERO_GRACE, exists, make_bilge
from tests.integration.helpers import Sandbox, build_image, make_dangling, run_container


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watch:
    """`bilge watch` running in the background, its JSON log lines collected."""

    def __init__(self, sb: Sandbox, tmp: Path, policy: str, *extra: str, host: str = "") -> None:
        self.port = _free_port()
        config = tmp / "watch.toml"
        config.write_text(policy)
        self.state = tmp / "state"
        argv = [sys.executable, "-m", "bilge", "-H", host or sb.host, "-c", str(config),
                "--state-dir", str(self.state), "watch", "--log-format", "json",
                "--metrics-addr", f"127.0.0.1:{self.port}", *extra]  # fmt: skip
        self.proc = subprocess.Popen(argv, env=sb.environ(), stdout=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]

    def wait_for(self, name: str, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.events(name)) >= count:
                return self.events(name)
            assert self.proc.poll() is None, f"watch exited: {self.lines[-5:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {name!r} within {timeout}s: {self.lines[-5:]}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        time.sleep(0.2)  # the reader takes the last lines
        return code


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    started: list[Watch] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def _last_use(watch: Watch, sb: Sandbox, image_id: str, since: float) -> Any:
    """The image's last use as the guard's store has it, once one at `since` or later
    is recorded (30 s at most): the build's own tag event comes first."""
    deadline = time.monotonic() + 30
    known: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with_store = StateStore(watch.state)
        known = with_store.image_use(sb.host)
        with_store.close()
        last = known.get(image_id, (None, None))[1]
        if last is not None and last.timestamp() >= since:
            break
        time.sleep(0.2)
    return known.get(image_id, (None, None))[1]


@pytest.mark.parametrize("started", ["before", "after"])
def test_events_record_last_use_which_plan_then_uses(
    either_engine: Sandbox, tmp_path: Path, watches: list[Watch], started: str
) -> None:
    """Live events, and (started after the use) the engine's past events read back:
    a guard restarted after a container came and went still knows the image's use."""
    engine = either_engine
    image_id = build_image(engine, "lru/app:1", size=10_000)
    before = time.time()
    if started == "after":
        run_container(engine, name="user", image="lru/app:1")
        engine.docker("rm", "user")
    watch = Watch(engine, tmp_path, '[watch]\ninterval = "1h"\n')
    watches.append(watch)
    watch.wait_for("connected")
    if started == "before":
        time.sleep(1)  # the event stream is open
        run_container(engine, name="user", image="lru/app:1")
        engine.docker("rm", "user")
    last = _last_use(watch, engine, image_id, before - 1)
    assert last is not None and last.timestamp() >= before - 1
    assert watch.stop() == 0
    assert watch.events("stopped")
    policy = "[images]\nkeep_recent = 0\n"
    kept = make_bilge(engine, tmp_path, policy)("plan", "--json", "--explain").json()["kept"]
    (reason,) = [k["reason"] for k in kept if k["id"] == image_id]
    assert "last used" in reason


def _usage(sb: Sandbox) -> float:
    st = os.statvfs(sb.data_root)
    return 1 - st.f_bavail / st.f_blocks


def test_the_guard_evicts_cheapest_first_down_to_low(
    either_disk_engine: Sandbox, tmp_path: Path, watches: list[Watch]
) -> None:
    sb = either_disk_engine
    build_image(sb, "keep/tagged:1", size=20_000_000)
    build_image(sb, "keep/tagged:2", size=20_000_000)
    dangling = make_dangling(sb, "gone/dangling", 30_000_000)
    for i in range(3):
        run_container(sb, name=f"job-{i}", volumes=["/scratch"], write={"/scratch/f": 5_000_000})
    used = _usage(sb)
    st = os.statvfs(sb.data_root)
    # Just above the watermark, with a target of 25 MB: the dangling image's 30 MB
    # are enough, and it is cheaper to lose than the containers or tagged images.
    high, low = used - 0.005, used - 25_000_000 / (st.f_blocks * st.f_frsize)
    policy = ZERO_GRACE + f'[watch]\nhigh = "{high * 100:.3f}%"\nlow = "{low * 100:.3f}%"\n'
    watch = Watch(sb, tmp_path, policy, "--once")
    watches.append(watch)
    assert watch.proc.wait(timeout=120) == 0
    time.sleep(0.2)
    removed = [e for e in watch.events("removal") if e["result"] == "removed"]
    assert [e["kind"] for e in removed] == ["image"], removed
    assert not exists(sb, "image", dangling)
    assert exists(sb, "image", "keep/tagged:1") and exists(sb, "image", "keep/tagged:2")
    assert all(exists(sb, "container", f"job-{i}") for i in range(3))
    assert watch.events("eviction-done"), watch.lines[-5:]
    assert _usage(sb) < high


class _Receiver(HTTPServer):
    bodies: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_metrics_alerts_and_a_clean_stop(
    engine: Sandbox, tmp_path: Path, watches: list[Watch]
) -> None:
    receiver = _Receiver(("127.0.0.1", 0), _Handler)
    receiver.bodies = []
    threading.Thread(target=receiver.serve_forever, args=(0.02,), daemon=True).start()
    secret = f"http://127.0.0.1:{receiver.server_address[1]}/hooks/secret-token"
    # The sandbox's data-root is far above 0.1% full, and nothing here may go.
    policy = '[watch]\nhigh = "0.1%"\nlow = "0.05%"\ninterval = "2s"\n'
    watch = Watch(engine, tmp_path, policy + f'webhook_url = "{secret}"\n')
    watches.append(watch)
    watch.wait_for("eviction-shortfall")
    deadline = time.monotonic() + 30
    while len(receiver.bodies) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [b["event"] for b in receiver.bodies[:2]] == ["high", "shortfall"]
    assert "biggest holders" in receiver.bodies[1]["text"]
    text = watch.metrics()
    for name in ("bilge_filesystem_used_bytes", "bilge_filesystem_size_bytes",
                 "bilge_filesystem_used_inodes", "bilge_filesystem_inodes",
                 "bilge_above_high_watermark", "bilge_evictions_total",
                 "bilge_eviction_shortfall", "bilge_last_sample_timestamp_seconds"):  # fmt: skip
        assert f'{name}{{host="{engine.host}"}}' in text, name
    assert f'bilge_above_high_watermark{{host="{engine.host}"}} 1.0' in text
    assert watch.stop() == 0
    assert watch.events("stopped")
    assert "secret-token" not in json.dumps(watch.lines)
    receiver.shutdown()
    receiver.server_close()


class _Proxy:
    """A unix-socket proxy to the engine that the test can take away and bring back."""

    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self.server: socket.socket | None = None
        self.conns: list[socket.socket] = []

    def up(self) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(self.path))
        self.server.listen(16)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def down(self) -> None:
        assert self.server is not None
        self.server.close()
        self.path.unlink()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        self.conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def test_an_engine_that_goes_away_is_reconnected(
    engine: Sandbox, tmp_path: Path, watches: list[Watch]
) -> None:
    proxy = _Proxy(tmp_path / "p.sock", engine.host.removeprefix("unix://"))
    proxy.up()
    watch = Watch(engine, tmp_path, '[watch]\ninterval = "1s"\n', host=f"unix://{proxy.path}")
    watches.append(watch)
    watch.wait_for("following-events")
    proxy.down()
    watch.wait_for("events-lost")
    time.sleep(2.5)  # a sample or two while it is gone
    proxy.up()
    watch.wait_for("following-events", count=2, timeout=90)
    assert watch.proc.poll() is None
    assert 'bilge_errors_total{host="unix://' in watch.metrics()
    assert watch.stop() == 0
