"""Durations, sizes and percentages as people write them in bilge.toml.

Parsing is strict: a value bilge cannot read unambiguously is an error that
quotes it and shows an example, never a guess. Formatting comes in two kinds:
`format_size` and `format_duration` are short and rounded, for people;
`size_text`, `duration_text` and `format_percent` are exact, so that what they
write parses back to the same value (used to print the effective policy).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

_DURATION_EXAMPLE = "use e.g. 90s, 30m, 24h, 7d"
_SIZE_EXAMPLE = "use e.g. 500MB, 10GiB, or a number of bytes"
_PERCENT_EXAMPLE = "use e.g. '85%'"

_SECOND = timedelta(seconds=1)

#: The longest duration bilge.toml may give: a century is already "never" for
#: anything bilge removes, and stays far from what datetime can represent
#: (year 9999), so that no `now - limit` or `now + limit` can overflow.
MAX_DURATION = timedelta(days=36525)
#: The largest size: what a signed 64-bit integer holds (SQLite, JSON readers and
#: the engine's own counters all stop there), about 9.2 EB.
MAX_SIZE = 2**63 - 1
# More digits than any value within the bounds needs; refused before int() reads
# them, so that a thousand-digit number costs nothing (and never meets Python's
# limit on int digits).
_MAX_DIGITS = 20
_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Whitespace between parts is allowed so that format_duration's "3d 4h" parses.
_DURATION_RE = re.compile(r"(?:\d+[wdhms]\s*)+", re.ASCII)
_DURATION_PART = re.compile(r"(\d+)([wdhms])", re.ASCII)

_SIZE_PREFIXES = "kmgt"
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(i)?)?b?", re.IGNORECASE | re.ASCII)

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*%", re.ASCII)


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "30m", "24h", "7d", "2w" or a combination such as "1h30m".

    A bare number is refused: "30" could mean seconds, minutes or days.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)  # from TOML; refused below with the reason why
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {_quoted(text)} ({_DURATION_EXAMPLE})")
    value = text.strip()
    if value.startswith("-"):
        raise ValueError(f"invalid duration {_quoted(text)}: must not be negative")
    if value.isascii() and value.isdigit():
        raise ValueError(
            f"invalid duration {_quoted(text)}: a bare number is ambiguous, add a unit "
            f"({_DURATION_EXAMPLE})"
        )
    if not _DURATION_RE.fullmatch(value):
        raise ValueError(f"invalid duration {_quoted(text)} ({_DURATION_EXAMPLE})")
    parts = _DURATION_PART.findall(value)
    if any(len(n) > _MAX_DIGITS for n, _ in parts):
        raise ValueError(_too_long(text))
    seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in parts)
    # Checked on the int, before timedelta() overflows on it.
    if seconds > MAX_DURATION // _SECOND:
        raise ValueError(_too_long(text))
    return timedelta(seconds=seconds)


def _too_long(text: object) -> str:
    return f"invalid duration {_quoted(text)}: at most {duration_text(MAX_DURATION)} (100 years)"


def _quoted(text: object) -> str:
    """A value for an error message, shortened: a huge number is only noise."""
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def parse_size(text: str | int) -> int:
    """Parse a size in bytes: "500MB", "1.5GB" (powers of 1000), "10GiB" (of 1024).

    An int is a number of bytes. Fractions of a byte are dropped.
    """
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"invalid size {_quoted(text)} ({_SIZE_EXAMPLE})")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {_quoted(text)}: must not be negative")
        if text > MAX_SIZE:
            raise ValueError(_too_large(text))
        return text
    if text.strip().startswith("-"):
        raise ValueError(f"invalid size {_quoted(text)}: must not be negative")
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid size {_quoted(text)} ({_SIZE_EXAMPLE})")
    number, prefix, binary = match.groups()
    if len(number.partition(".")[0]) > _MAX_DIGITS:
        raise ValueError(_too_large(text))
    power = _SIZE_PREFIXES.index(prefix.lower()) + 1 if prefix else 0
    base = 1024 if binary else 1000
    size = int(Decimal(number) * base**power)
    if size > MAX_SIZE:
        raise ValueError(_too_large(text))
    return size


def _too_large(text: object) -> str:
    return f"invalid size {_quoted(text)}: at most {MAX_SIZE} bytes (about 9.2 EB)"


def parse_percent(text: str | float | int) -> float:
    """Parse "85%" into 0.85. Only 0% to 100% are accepted.

    Bare numbers are refused: 85 and 0.85 both look plausible, and guessing
    wrong would set a watermark a hundred times off.
    """
    if not isinstance(text, str):
        raise ValueError(
            f"invalid percentage {_quoted(text)}: "
            f"write it as a string with a % sign ({_PERCENT_EXAMPLE})"
        )
    match = _PERCENT_RE.fullmatch(text.strip())
    if match is None:
        hint = "add a % sign" if _NUMBER_RE.fullmatch(text.strip()) else _PERCENT_EXAMPLE
        raise ValueError(f"invalid percentage {_quoted(text)} ({hint})")
    value = Decimal(match.group(1))
    if value > 100:
        raise ValueError(f"invalid percentage {_quoted(text)}: must be between 0% and 100%")
    return float(value / 100)


def format_size(n: int) -> str:
    """Size for people, in decimal units as docker prints them: "1.2 GB", "512 B"."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    unit = "B"
    for bigger in ("kB", "MB", "GB", "TB"):
        # 999.5 rather than 1000, so that rounding never shows "1000 kB".
        if value < 999.5:
            break
        value /= 1000
        unit = bigger
    if unit == "B":
        return f"{sign}{abs(n)} B"
    digits = 1 if value < 99.95 else 0
    return f"{sign}{value:.{digits}f} {unit}"


def format_duration(td: timedelta) -> str:
    """Duration for people: the largest unit and the next one, truncated.

    "3d 4h", "3d" (not "3d 0h 5m"), "12m", "45s", "0s".
    """
    sign = "-" if td < timedelta(0) else ""
    counts = _unit_counts(abs(td) // _SECOND, ("d", "h", "m", "s"))
    first = next((i for i, (count, _) in enumerate(counts) if count), len(counts) - 1)
    shown = [f"{count}{unit}" for count, unit in counts[first : first + 2] if count]
    return sign + (" ".join(shown) or "0s")


def duration_text(td: timedelta) -> str:
    """Exact duration that parse_duration reads back: "7d", "1h30m", "0s".

    Raises ValueError for negative or sub-second durations, which bilge.toml
    cannot express.
    """
    if td < timedelta(0) or td.microseconds:
        raise ValueError(f"duration {td!r} is not a whole number of seconds >= 0")
    counts = _unit_counts(td // _SECOND, ("d", "h", "m", "s"))
    return "".join(f"{count}{unit}" for count, unit in counts if count) or "0s"


def _unit_counts(seconds: int, units: tuple[str, ...]) -> list[tuple[int, str]]:
    counts = []
    for unit in units:
        count, seconds = divmod(seconds, _DURATION_UNITS[unit])
        counts.append((count, unit))
    return counts


def size_text(n: int) -> str:
    """Exact size that parse_size reads back: "10GB", "512KiB", "1234B"."""
    if n < 0:
        raise ValueError(f"size {n} is negative")
    for power in range(len(_SIZE_PREFIXES), 0, -1):
        prefix = _SIZE_PREFIXES[power - 1].upper()
        if n and n % 1000**power == 0:
            return f"{n // 1000**power}{prefix}B"
        if n and n % 1024**power == 0:
            return f"{n // 1024**power}{prefix}iB"
    return f"{n}B"


def format_percent(ratio: float) -> str:
    """Exact percentage that parse_percent reads back: 0.85 -> "85%"."""
    # repr() is the shortest text that reads back as the same float; scaling it
    # as a Decimal avoids the binary rounding of `ratio * 100` (85.00000000000001).
    value = Decimal(repr(ratio)) * 100
    return f"{value.normalize():f}%"
