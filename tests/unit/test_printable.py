"""printable(): what an engine or a registry names can never do to a terminal."""

from __future__ import annotations

import pytest

from bilge.report.text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("evil\x1b]0;pwned\x07\x1b[2J\r", "evil\\x1b]0;pwned\\x07\\x1b[2J\\r"),
        ("two\nlines\ttab", "two\\nlines\\ttab"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("c1 \x85 csi \x9b31m", "c1 \\x85 csi \\x9b31m"),
        ("bidi \u202etxt.exe \u2066x\u2069 \u200f", "bidi \\u202etxt.exe \\u2066x\\u2069 \\u200f"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_control_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize(
    "text",
    ["web-1", "[red]x[/red]", "[link=https://x]y[/link]", "café ünïcode 名前", "a b", ""],
)
def test_everything_else_is_left_alone(text: str) -> None:
    assert printable(text) == text


def test_no_control_character_survives() -> None:
    every = "".join(map(chr, range(0x2100)))
    out = printable(every)
    assert not any(_controls(c) for c in out)


def _controls(c: str) -> bool:
    """C0, DEL, C1, the bidi marks and the line separators."""
    code = ord(c)
    return (
        code < 0x20
        or 0x7F <= code < 0xA0
        or code in (0x061C, 0x200E, 0x200F, 0x2028, 0x2029)
        or 0x202A <= code <= 0x202E
        or 0x2066 <= code <= 0x2069
    )
