"""The guard's log: one line per event, to stdout.

`text` is for people reading a journal (`ts level event key=value ...`);
`json` is one object per line for collectors. The values come from engines
(names, reasons, error texts), and a network may be named with an ESC or a
newline in it: in text, every value goes through `printable`, so that it can
neither drive the reader's terminal nor forge a second log line; in JSON the
encoder escapes every control character and the value stays exact for the
collector.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TextIO

from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.report.text import printable

#: A text value with one of these is quoted (and escaped as a JSON string),
#: so that `key=value` pairs split unambiguously.
_QUOTE_IF = frozenset(' "=\\')


class Log:
    """One line per event, to stdout: `text` for people, `json` for collectors."""

    def __init__(
        self, fmt: str = "text", out: TextIO | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.fmt = fmt
        self.out = out or sys.stdout
        self.clock = clock  # the guard's: a log line's time is when the guard saw it
        self._lock = threading.Lock()

    def __call__(self, event: str, level: str = "info", **fields: object) -> None:
        now = self.clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.fmt == "json":
            # ensure_ascii (the default) writes every control character, C1 and
            # bidi marks included, as a \\u escape.
            line = json.dumps({"ts": now, "level": level, "event": event, **fields}, default=str)
        else:
            kv = " ".join(f"{k}={text_value(v)}" for k, v in fields.items())
            line = f"{now} {level:<5} {event} {kv}".rstrip()
        with self._lock:
            print(line, file=self.out, flush=True)


def text_value(value: object) -> str:
    """A value as a text log shows it: printable, and quoted when it must be."""
    text = printable(str(value))
    if not text or not _QUOTE_IF.isdisjoint(text):
        return json.dumps(text, ensure_ascii=False)
    return text
