"""Times as the engine writes them.

The engine mixes Unix seconds (containers, images), RFC 3339 with
nanoseconds (volumes, networks, build cache) and Go's zero time for "never".
Container listings only say "Exited (0) 5 minutes ago"; `age_from_status`
turns that into a lower bound, so an age read from it never makes a
container look older than it is.

Both are bounded: an engine's answer is input like any other, and a time
beyond what `datetime` holds, or an age of a billion years, is a ValueError
or a smaller lower bound, never an OverflowError in whoever reads it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_FRACTION = re.compile(r"\.(\d+)")
_AGO = re.compile(
    r"(?P<n>\d+|an?|about an?|less than an?)\s+"
    r"(?P<unit>second|minute|hour|day|week|month|year)s?\s+ago",
    re.IGNORECASE,
)
_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 7 * 86400,
    "month": 30 * 86400,
    "year": 365 * 86400,
}
#: The oldest age read from a status: a lower bound stays one when it is
#: capped, and `now - age` then stays far from year 1 for any `now`.
MAX_AGE = timedelta(days=36525)


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from an engine time; None for absent or Go's zero time."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not value > 0:  # also NaN
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"time out of range: {value!r}") from None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    if value.startswith("0001-01-01"):
        return None
    # Python takes at most microseconds; the engine writes nanoseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def age_from_status(status: str) -> timedelta | None:
    """Lower bound of the age in "Exited (0) About an hour ago"; None if absent."""
    match = _AGO.search(status)
    if match is None:
        return None
    n = match.group("n").lower()
    if n.isdigit() and len(n) > 12:  # more years than MAX_AGE holds days
        return MAX_AGE
    count = 0 if n.startswith("less") else int(n) if n.isdigit() else 1
    seconds = count * _UNIT_SECONDS[match.group("unit").lower()]
    return timedelta(seconds=min(seconds, MAX_AGE // timedelta(seconds=1)))
