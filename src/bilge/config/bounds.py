"""The value types of bilge.toml and the bounds on each kind of number.

Every number in the policy is bounded when it is loaded, so that no value a
user can write reaches code that cannot represent it: a huge duration would
overflow `timedelta` or `datetime` arithmetic, a huge watch interval would make
`time.sleep` raise inside the running guard, a port above 65535 would fail only
when the metrics server binds. Refused at load time, each is one config error
naming the file and the key (exit 2), like any other bad value.

The bounds, by kind:

- durations: 0 to 100 years (units.MAX_DURATION), whole seconds;
- the watch interval: 1 s to 1 day (a guard sampling less often guards nothing);
- deadlines of requests to an engine or a registry: 1 s to 1 hour;
- sizes: 0 to 2**63 - 1 bytes (units.MAX_SIZE);
- counts (keep_recent): 0 to MAX_COUNT.

policy.py and registry/policy.py both build their tables from these types;
this module imports neither of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo

from bilge.config.units import (
    MAX_DURATION,
    duration_text,
    format_percent,
    parse_duration,
    parse_percent,
    parse_size,
    size_text,
)

#: The most tagged images a rule may keep per repository: far beyond any real
#: repository, and small enough that nothing downstream has to think about it.
MAX_COUNT = 1_000_000

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Render:
    """How policy_to_toml writes a field's value back as TOML text."""

    to_text: Callable[[Any], str]


def duration(value: Any) -> timedelta:
    """A duration from the file ("24h") or from Python (a timedelta), bounded alike."""
    if not isinstance(value, timedelta):
        return parse_duration(value)
    if value < timedelta(0) or value.microseconds:
        raise ValueError(f"invalid duration {value}: must be a whole number of seconds >= 0")
    if value > MAX_DURATION:
        raise ValueError(f"invalid duration {value}: at most {duration_text(MAX_DURATION)}")
    return value


def within(low: timedelta, high: timedelta) -> AfterValidator:
    """A duration field's own bounds, checked after it parsed."""

    def check(value: timedelta) -> timedelta:
        if not low <= value <= high:
            raise ValueError(
                f"must be between {duration_text(low)} and {duration_text(high)}, "
                f"got {duration_text(value)}"
            )
        return value

    return AfterValidator(check)


def _percent(value: Any, info: ValidationInfo) -> Any:
    # In a file a bare number is refused (85 and 0.85 both look plausible);
    # from Python a fraction is taken and the field's bounds check it.
    in_file = bool(info.context and info.context.get("from_file"))
    if isinstance(value, float | int) and not isinstance(value, bool) and not in_file:
        return value
    return parse_percent(value)


def _port_in_range(value: str) -> str:
    # The pattern admits five digits; bind() would refuse 65536 and above
    # only once the guard starts.
    port = int(value.rpartition(":")[2])
    if port > 65535:
        raise ValueError(f"port {port} is above 65535")
    return value


Duration = Annotated[timedelta, BeforeValidator(duration), Render(duration_text)]
Interval = Annotated[Duration, within(SECOND, DAY)]
Deadline = Annotated[Duration, within(SECOND, HOUR)]
Size = Annotated[int, BeforeValidator(parse_size), Render(size_text)]
Percent = Annotated[float, BeforeValidator(_percent), Field(ge=0, le=1), Render(format_percent)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT, strict=True)]
Address = Annotated[
    str,
    Field(strict=True, pattern=r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):[0-9]{1,5}$"),
    AfterValidator(_port_in_range),
]
