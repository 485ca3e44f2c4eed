from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bilge.timeparse import MAX_AGE, age_from_status, parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1767225600, datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00.123456789Z", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-01T01:00:00.5+01:00", datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        (0, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize("value", ["yesterday", [], "2026-13-01T00:00:00Z"])
def test_parse_time_rejects_nonsense(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("Exited (0) 5 minutes ago", timedelta(minutes=5)),
        ("Exited (137) About an hour ago", timedelta(hours=1)),
        ("Exited (0) Less than a second ago", timedelta(0)),
        ("Exited (1) 2 weeks ago", timedelta(weeks=2)),
        ("Exited (1) 3 months ago", timedelta(days=90)),
        ("Created", None),
        ("Dead", None),
    ],
)
def test_age_from_status_is_a_lower_bound(status: str, expected: timedelta | None) -> None:
    assert age_from_status(status) == expected


@pytest.mark.parametrize("value", [10**20, 1e300, float("inf"), 253402300800, 2**63])
def test_a_timestamp_beyond_datetime_is_a_value_error(value: float) -> None:
    # Not an OverflowError: the collector reports a ValueError as a bad answer.
    with pytest.raises(ValueError, match="time out of range"):
        parse_time(value)
    assert parse_time(float("nan")) is None


@pytest.mark.parametrize("count", ["9999", "99999999999", "9" * 5000])
def test_an_absurd_age_in_a_status_is_capped_at_a_century(count: str) -> None:
    age = age_from_status(f"Exited (0) {count} years ago")
    assert age == MAX_AGE == timedelta(days=36525)
    # The collector subtracts it from now: within range from 1970 on.
    assert datetime(1970, 1, 1, tzinfo=UTC) - age > datetime(1, 1, 1, tzinfo=UTC)
