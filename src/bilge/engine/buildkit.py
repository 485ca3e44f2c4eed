"""The build cache through BuildKit's own API, for engines on API 1.41.

Docker 20.10 cannot be asked for the build cache alone: for /system/df it walks
every volume and every container's writable layer first, seconds of work on a
crowded host that bilge, reading the data-root itself, does not need. dockerd
also serves BuildKit's control API, gRPC over HTTP/2 on its `/grpc` endpoint
(what `docker buildx` talks to), and its DiskUsage call lists the build cache
and nothing else: the very records /system/df copies into its answer.

`disk_usage` makes that one call: an HTTP/1.1 upgrade to h2c on the engine's
unix socket, one gRPC request with an empty message, and a small protobuf
reader for the answer. It returns the records in /system/df's JSON shape. Any
failure is a `BuildKitError`; the caller then asks /system/df.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from bilge.errors import BilgeError

DISK_USAGE = "/moby.buildkit.v1.Control/DiskUsage"
#: A build cache of a hundred thousand records is a few tens of MB.
MAX_ANSWER = 256 << 20
#: The whole call (connect, upgrade and answer) must be done within this.
TIMEOUT_SECONDS = 60


class BuildKitError(BilgeError):
    """The engine's BuildKit API could not be used."""

    #: The call ran out of time: the engine is wedged, and asking /system/df
    #: instead would only wait as long again.
    timed_out = False


class BuildKitTimeout(BuildKitError):
    timed_out = True


class _Deadline:
    """Sets the socket's timeout to the time left before each send and receive,
    so the whole call is bounded, not each read of it."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock, self.timeout = sock, timeout
        self.at = time.monotonic() + timeout

    def arm(self) -> None:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)

    def recv(self, size: int) -> bytes:
        self.arm()
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.sock.sendall(data)


def disk_usage(socket_path: str, timeout: float = TIMEOUT_SECONDS) -> list[dict[str, Any]]:
    """The build cache records of the engine at `socket_path`, as /system/df lists them."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            io = _Deadline(sock, timeout)
            io.arm()
            sock.connect(socket_path)
            early = _upgrade(io)
            message = _call(io, early)
    except TimeoutError as exc:
        raise BuildKitTimeout(
            f"engine at unix://{socket_path} did not answer within {timeout:g}s"
            " (BuildKit DiskUsage)"
        ) from exc
    except OSError as exc:
        raise BuildKitError(f"BuildKit API: {exc.strerror or exc}") from exc
    return [_record(raw) for number, raw in _fields(message) if number == 1]


def _upgrade(sock: _Deadline) -> bytes:
    """Switch the connection to HTTP/2; returns what the engine sent after the switch."""
    sock.sendall(
        b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
        b"Upgrade: h2c\r\nContent-Length: 0\r\n\r\n"
    )
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk or len(received) > 65536:
            raise BuildKitError("BuildKit API: no answer to the upgrade")
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        status = head.split(b"\r\n")[0].decode("latin-1", "replace")
        raise BuildKitError(f"BuildKit API: the engine refused the upgrade ({status})")
    return rest


def _call(sock: _Deadline, early: bytes) -> bytes:
    """One unary gRPC call with an empty request; the answer's message."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "docker"),
        (":path", DISK_USAGE),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    conn.send_headers(stream, headers)
    conn.send_data(stream, b"\x00\x00\x00\x00\x00", end_stream=True)  # an empty message
    sock.sendall(conn.data_to_send())
    body, trailers = bytearray(), {}
    pending, ended = early, False
    while not ended:
        data = pending or sock.recv(65536)
        pending = b""
        if not data:
            raise BuildKitError("BuildKit API: the engine closed the connection")
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, stream)
                if len(body) > MAX_ANSWER:
                    raise BuildKitError("BuildKit API: the answer is too large")
            elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                trailers.update(dict(event.headers or ()))
            elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                raise BuildKitError("BuildKit API: the engine reset the call")
            ended = ended or isinstance(event, h2.events.StreamEnded)
        sock.sendall(conn.data_to_send())
    return _message(bytes(body), trailers)


def _message(body: bytes, headers: dict[Any, Any]) -> bytes:
    """The one message of a unary answer (gRPC frames it: flag, length, bytes)."""
    status = str(headers.get("grpc-status", ""))
    if status != "0":
        detail = headers.get("grpc-message") or f"status {status or 'missing'}"
        raise BuildKitError(f"BuildKit API: {detail}")
    if len(body) < 5:
        return b""  # no message: nothing cached
    compressed, length = struct.unpack(">BI", body[:5])
    if compressed or len(body) != 5 + length:
        raise BuildKitError("BuildKit API: unexpected framing of the answer")
    return body[5:]


# -- protobuf wire format ------------------------------------------------------


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints and fixed widths, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
            if pos > len(data):
                raise BuildKitError("BuildKit API: truncated answer")
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise BuildKitError(f"BuildKit API: unreadable answer (wire type {wire})")
        yield number, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise BuildKitError("BuildKit API: truncated answer")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


#: UsageRecord's fields (moby/buildkit api/services/control/control.proto).
_STRINGS = {1: "ID", 5: "Parent", 9: "Description", 10: "Type"}
_BOOLS = {2: "Mutable", 3: "InUse", 11: "Shared"}
_INTS = {4: "Size", 8: "UsageCount"}
_TIMES = {6: "CreatedAt", 7: "LastUsedAt"}


def _record(raw: int | bytes) -> dict[str, Any]:
    if not isinstance(raw, bytes):
        raise BuildKitError("BuildKit API: unreadable record")
    # Protobuf leaves out zero values; /system/df writes every field.
    record: dict[str, Any] = {"Parents": [], "LastUsedAt": None}
    record |= {name: "" for name in _STRINGS.values()}
    record |= {name: False for name in _BOOLS.values()}
    record |= {name: 0 for name in _INTS.values()}
    for number, value in _fields(raw):
        if number == 12 and isinstance(value, bytes):
            record["Parents"].append(value.decode("utf-8", "replace"))
        elif number in _STRINGS and isinstance(value, bytes):
            record[_STRINGS[number]] = value.decode("utf-8", "replace")
        elif number in _BOOLS and isinstance(value, int):
            record[_BOOLS[number]] = bool(value)
        elif number in _INTS and isinstance(value, int):
            record[_INTS[number]] = _signed(value)
        elif number in _TIMES and isinstance(value, bytes):
            record[_TIMES[number]] = _timestamp(value)
    if not record.get("ID"):
        raise BuildKitError("BuildKit API: a record without an id")
    return record


def _signed(value: int) -> int:
    """int64 travels as its 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _timestamp(raw: bytes) -> str:
    """google.protobuf.Timestamp as RFC 3339, the way the Engine API writes times."""
    seconds = nanos = 0
    for number, value in _fields(raw):
        if number == 1 and isinstance(value, int):
            seconds = _signed(value)
        elif number == 2 and isinstance(value, int):
            nanos = value
    when = datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)
    return when.isoformat().replace("+00:00", "Z")
