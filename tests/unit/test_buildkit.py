"""Reading BuildKit's DiskUsage answer: the protobuf wire format by hand, and every
way the answer can be wrong (then the caller falls back to /system/df)."""

from __future__ import annotations

import struct

import pytest

from bilge.engine.buildkit import BuildKitError, _fields, _message, _record
from bilge.timeparse import parse_time


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s travel as two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(raw)) + raw


def _timestamp(seconds: int, nanos: int) -> bytes:
    return _field(1, seconds) + _field(2, nanos)


def _usage_record(rid: str, size: int, **extra: int | bytes | str) -> bytes:
    numbers = {
        "mutable": 2, "in_use": 3, "parent": 5, "created": 6, "last_used": 7,
        "usage_count": 8, "description": 9, "type": 10, "shared": 11, "parents": 12,
    }  # fmt: skip
    body = _field(1, rid) + _field(4, size)
    for name, value in extra.items():
        body += _field(numbers[name], value)
    return body


def _answer(*records: bytes) -> bytes:
    return b"".join(_field(1, r) for r in records)


def test_records_read_as_system_df_writes_them() -> None:
    rec = _usage_record(
        "abc", 12_345, in_use=1, shared=1, usage_count=3, description="mount / from exec",
        type="exec.cachemount", parent="xyz", parents="xyz",
        created=_timestamp(1_764_000_000, 123_456_789), last_used=_timestamp(1_764_000_100, 0),
    )  # fmt: skip
    unknown = _varint(13 << 3 | 5) + b"\x01\x02\x03\x04"  # a field from a newer BuildKit
    [(number, raw)] = list(_fields(_answer(rec + unknown)))
    assert number == 1
    got = _record(raw)
    assert got["ID"] == "abc" and got["Size"] == 12_345
    assert got["InUse"] is True and got["Shared"] is True and got["Mutable"] is False
    assert got["UsageCount"] == 3 and got["Type"] == "exec.cachemount"
    assert got["Parent"] == "xyz" and got["Parents"] == ["xyz"]
    created = parse_time(got["CreatedAt"])
    assert created is not None and created.timestamp() == pytest.approx(1_764_000_000.123456)
    assert got["LastUsedAt"] == "2025-11-24T16:01:40Z"


def test_absent_fields_take_the_zero_values_and_sizes_may_be_negative() -> None:
    got = _record(_usage_record("r", -1))
    assert got["Size"] == -1  # BuildKit's "size not computed yet"
    assert got["LastUsedAt"] is None and got["Description"] == "" and got["InUse"] is False


@pytest.mark.parametrize(
    "data",
    [
        _field(1, b"\x0a\x05ab"),  # a string longer than what is left
        b"\x08\xff\xff",  # a varint cut short
        _varint(1 << 3 | 3),  # a wire type protobuf retired (groups)
    ],
)
def test_a_truncated_or_strange_answer_is_an_error(data: bytes) -> None:
    with pytest.raises(BuildKitError):
        for _, raw in _fields(data):
            _record(raw)


def test_a_record_without_an_id_is_an_error() -> None:
    with pytest.raises(BuildKitError, match="without an id"):
        _record(_field(4, 10))


def test_the_grpc_frame_and_status_are_checked() -> None:
    message = _answer(_usage_record("r", 1))
    framed = struct.pack(">BI", 0, len(message)) + message
    assert _message(framed, {"grpc-status": "0"}) == message
    assert _message(b"", {"grpc-status": "0"}) == b""  # nothing cached
    with pytest.raises(BuildKitError, match="unknown service"):
        _message(b"", {"grpc-status": "12", "grpc-message": "unknown service"})
    with pytest.raises(BuildKitError, match="missing"):
        _message(framed, {})
    with pytest.raises(BuildKitError, match="framing"):
        _message(framed[:-1], {"grpc-status": "0"})
