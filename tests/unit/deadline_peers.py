"""A misbehaving HTTP peer for the deadline tests: a real socket server, on a unix
socket or on 127.0.0.1, whose answer to each path is a function of the test's
choosing (answer, never answer, dribble, announce a huge body, close midway)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

#: (connection, stop) -> None; `stop` is set when the test ends.
Behaviour = Callable[[socket.socket, threading.Event], None]


class Peer:
    """Serves each request with the behaviour registered for its path; a path not
    registered gets a 404. `close` returns at once: every wait is on `stop`."""

    def __init__(self, behaviours: dict[str, Behaviour], unix_path: str | None = None) -> None:
        self.behaviours = behaviours
        self.seen: list[str] = []
        self.stop = threading.Event()
        if unix_path is None:
            self._server = socket.socket(socket.AF_INET)
            self._server.bind(("127.0.0.1", 0))
            port = self._server.getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            self.host = f"tcp://127.0.0.1:{port}"
        else:
            self._server = socket.socket(socket.AF_UNIX)
            self._server.bind(unix_path)
            self.url = self.host = f"unix://{unix_path}"
        self._server.listen()
        self._conns: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:  # closed by the test
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            while not self.stop.is_set():
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                path = request.split(b" ")[1].decode().split("?")[0]
                self.seen.append(path)
                self.behaviours.get(path, not_found)(conn, self.stop)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._server.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
            assert not thread.is_alive()


def head(status: str = "200 OK", *headers: str) -> bytes:
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\n{lines}\r\n".encode()


def answer(body: bytes, *headers: str) -> Behaviour:
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(head("200 OK", f"Content-Length: {len(body)}", *headers) + body)

    return behave


def not_found(conn: socket.socket, stop: threading.Event) -> None:
    body = b'{"message":"page not found"}'
    conn.sendall(head("404 Not Found", f"Content-Length: {len(body)}") + body)


def never(conn: socket.socket, stop: threading.Event) -> None:
    """Reads the request and says nothing, like a stopped process's open socket."""
    stop.wait()


def dribble(conn: socket.socket, stop: threading.Event) -> None:
    """Headers at once, then a body of 400 bytes, one byte every 50 ms (20 s)."""
    conn.sendall(head("200 OK", "Content-Type: application/json", "Content-Length: 400"))
    for _ in range(400):
        if stop.wait(0.05):
            return
        conn.sendall(b" ")


def dribble_head(conn: socket.socket, stop: threading.Event) -> None:
    """The status line and headers themselves, one byte every 50 ms."""
    for byte in head("200 OK", "X-Padding: " + "x" * 400, "Content-Length: 2") + b"{}":
        if stop.wait(0.05):
            return
        conn.sendall(bytes([byte]))


def huge_announced(conn: socket.socket, stop: threading.Event) -> None:
    """Announces a terabyte and sends a trickle of it."""
    conn.sendall(head("200 OK", f"Content-Length: {1 << 40}") + b"[" + b" " * 1000)
    stop.wait()


def huge_chunked(conn: socket.socket, stop: threading.Event) -> None:
    """Sends chunks of 64 KiB, fast, without end (until the client hangs up)."""
    conn.sendall(head("200 OK", "Transfer-Encoding: chunked") + b"1\r\n[\r\n")
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
    while not stop.is_set():
        conn.sendall(chunk)


def close_midway(conn: socket.socket, stop: threading.Event) -> None:
    """Announces 100 bytes, sends 10, and closes the connection."""
    conn.sendall(head("200 OK", "Content-Length: 100") + b'[{"Id":"ab')
    conn.shutdown(socket.SHUT_RDWR)
