from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bilge.config.units import (
    MAX_DURATION,
    MAX_SIZE,
    duration_text,
    format_duration,
    format_percent,
    format_size,
    parse_duration,
    parse_percent,
    parse_size,
    size_text,
)

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", 90 * S),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta(0)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("3d 4h", timedelta(days=3, hours=4)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("30", "bare number is ambiguous"),
        ("0", "bare number is ambiguous"),
        ("-5m", "must not be negative"),
        ("7 days", "use e.g. 90s, 30m, 24h, 7d"),
        ("1.5h", "use e.g."),
        ("5ms", "use e.g."),
        ("", "use e.g."),
        ("h", "use e.g."),
        ("24H", "use e.g."),
    ],
)
def test_parse_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as info:
        parse_duration(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 500 * 1000**2),
        ("10GiB", 10 * 1024**3),
        ("1.5GB", 1_500_000_000),
        ("0", 0),
        ("512KiB", 512 * 1024),
        ("100B", 100),
        ("1024", 1024),
        ("10kB", 10_000),
        ("10KB", 10_000),
        ("10k", 10_000),
        ("10Ki", 10_240),
        ("2tb", 2 * 1000**4),
        ("1 GB", 1000**3),
        (0, 0),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "value",
    ["10XB", "GB", "1.GB", "-1", "-5MB", "1e9", "10 G B", "iB", -1, True, 1.5, None],
)
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("85%", 0.85), ("0%", 0.0), ("100%", 1.0), ("85.5%", 0.855), (" 75 % ", 0.75)],
)
def test_parse_percent(text: str, expected: float) -> None:
    assert parse_percent(text) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("85", "add a % sign"),
        (85, "with a % sign"),
        (0.85, "with a % sign"),
        ("101%", "between 0% and 100%"),
        ("-5%", "use e.g. '85%'"),
        ("lots", "use e.g. '85%'"),
    ],
)
def test_parse_percent_rejects(value: str | float, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_percent(value)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1_234_567, "1.2 MB"),
        (1_200_000_000, "1.2 GB"),
        (12_345_678_901, "12.3 GB"),
        (123_456_789_012, "123 GB"),
        (999_999, "1.0 MB"),
        (5 * 1000**5, "5000 TB"),
        (-2500, "-2.5 kB"),
    ],
)
def test_format_size(n: int, expected: str) -> None:
    assert format_size(n) == expected


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(0), "0s"),
        (45 * S, "45s"),
        (timedelta(minutes=12), "12m"),
        (timedelta(minutes=12, seconds=5), "12m 5s"),
        (timedelta(days=3, hours=4, minutes=5), "3d 4h"),
        (timedelta(days=3, minutes=5), "3d"),
        (timedelta(days=40), "40d"),
        (timedelta(seconds=59.9), "59s"),
        (-75 * S, "-1m 15s"),
    ],
)
def test_format_duration(td: timedelta, expected: str) -> None:
    assert format_duration(td) == expected


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(days=7), "7d"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=3, minutes=5, seconds=1), "3d5m1s"),
    ],
)
def test_duration_text(td: timedelta, expected: str) -> None:
    assert duration_text(td) == expected


@pytest.mark.parametrize("td", [-S, timedelta(milliseconds=1500)])
def test_duration_text_rejects_what_toml_cannot_say(td: timedelta) -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        duration_text(td)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "0B"), (1234, "1234B"), (10 * 1000**3, "10GB"), (2**40, "1TiB"), (1_024_000, "1024KB")],
)
def test_size_text(n: int, expected: str) -> None:
    assert size_text(n) == expected


# Every duration bilge.toml may hold (up to a century).
seconds = st.integers(min_value=0, max_value=MAX_DURATION // S)


@given(seconds)
def test_duration_text_round_trips(n: int) -> None:
    td = n * S
    assert parse_duration(duration_text(td)) == td


@given(seconds)
def test_format_duration_reads_back_within_its_second_unit(n: int) -> None:
    td = n * S
    shown = parse_duration(format_duration(td))
    assert shown <= td
    # Only units below the two shown are dropped: at most just under an hour
    # for days, a minute for hours, and nothing below.
    assert td - shown < timedelta(hours=1)
    if td < timedelta(days=1):
        assert td - shown < timedelta(minutes=1)


@given(st.integers(min_value=0, max_value=10**18))
def test_size_text_round_trips(n: int) -> None:
    assert parse_size(size_text(n)) == n


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"]),
    st.booleans(),
)
def test_parse_size_matches_the_units_table(count: int, prefix: str, with_b: bool) -> None:
    powers = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
    powers |= {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
    text = f"{count}{prefix}{'B' if with_b else ''}"
    assert parse_size(text) == count * powers[prefix]


@given(st.integers(min_value=0, max_value=10**15))
def test_format_size_is_close(n: int) -> None:
    number, unit = format_size(n).split()
    scale = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}[unit]
    assert abs(float(number) * scale - n) <= 0.05 * max(n, 1)


@given(st.floats(min_value=0.0, max_value=1.0))
def test_format_percent_round_trips(ratio: float) -> None:
    assert parse_percent(format_percent(ratio)) == ratio


@pytest.mark.parametrize(
    "text", ["36526d", "99999999999999999999d", "1000000000d", "5218w", "9" * 5000 + "s"]
)
def test_a_duration_beyond_a_century_is_a_value_error(text: str) -> None:
    # Not an OverflowError from timedelta(), which pydantic would let through.
    with pytest.raises(ValueError, match="at most 36525d") as info:
        parse_duration(text)
    assert len(str(info.value)) < 120
    assert parse_duration("36525d") == MAX_DURATION


@pytest.mark.parametrize("value", ["9223372036854775808B", "9300000TB", "1" + "0" * 5000, 10**30])
def test_a_size_beyond_64_bits_is_a_value_error(value: str | int) -> None:
    with pytest.raises(ValueError, match="at most 9223372036854775807 bytes") as info:
        parse_size(value)
    assert len(str(info.value)) < 120
    assert parse_size(MAX_SIZE) == parse_size(f"{MAX_SIZE}B") == 2**63 - 1
