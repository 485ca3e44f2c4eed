"""Text from engines and registries, made harmless for a terminal or a log.

Docker accepts almost anything in a network's name or a label, and a registry
answers whatever it likes as repository names and tags; the daemon's error
texts quote them. Printed as they are, an ESC starts an escape sequence (a
new window title, a cleared screen, a hyperlink), a CR overwrites the line
already shown, a newline forges a log line, and a bidi override shows the
text backwards. So every such string passes through `printable` before it
reaches a terminal or a text log: its control characters are shown as the
escapes a Python programmer would type (`\\x1b`, `\\r`, `\\u202e`), readable
and never acted upon.

Nothing here imports rich: cli.py's one-line error printer and the guard's
log use it, and neither may pay for loading rich.
"""

from __future__ import annotations

#: Bidi embedding, override and isolate marks: harmless bytes that reorder what
#: a terminal shows, so "exe.txt" can be shown for "txt.exe".
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
#: The line and paragraph separators: some terminals and log viewers break there.
_SEPARATORS = (0x2028, 0x2029)
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape(code: int) -> str:
    if code in _NAMED:
        return _NAMED[code]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


#: C0 controls, DEL and the C1 controls (U+0080-U+009F: a terminal may take
#: U+009B as CSI), then the invisible characters that change how text reads.
_TABLE = {code: _escape(code) for code in (*range(0x20), *range(0x7F, 0xA0), *_BIDI, *_SEPARATORS)}


def printable(text: str) -> str:
    """`text` with every control character shown as an escape: "a\\x1b[2J" for
    "a<ESC>[2J". Anything else, markup-like brackets included, is left as it is."""
    if text.isprintable():  # every character escaped is non-printable: the usual case
        return text
    return text.translate(_TABLE)
