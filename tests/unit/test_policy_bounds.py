"""Every number in the policy is bounded when it is loaded: a value the code
cannot represent is a config error naming the file and the key (exit 2), never
an internal error, and never a guard that fails later on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from bilge.cli import main
from bilge.config.policy import DEFAULT_POLICY, EnginePolicy, Policy, WatchPolicy, parse_policy
from bilge.config.units import MAX_DURATION, MAX_SIZE
from bilge.errors import EXIT_USAGE, ConfigError
from bilge.planner.core import plan
from bilge.registry.policy import RegistryConfig
from tests.unit.snapshots import snapshots

SOURCE = "/etc/bilge/bilge.toml"

DURATION_KEYS = [
    ("containers", "exited_after"),
    ("containers", "created_after"),
    ("volumes", "anonymous_after"),
    ("volumes", "named_after"),
    ("images", "dangling_after"),
    ("images", "unused_after"),
    ("build_cache", "unused_after"),
    ("networks", "unused_after"),
    ("orphans", "older_than"),
]
SIZE_KEYS = [("build_cache", "keep_storage"), ("logs", "max_size")]

TOO_LONG = [
    '"99999999999999999999d"',
    '"1000000000d"',
    '"36526d"',
    '"5300000w"',
    f'"{"9" * 5000}s"',
]
NOT_DURATIONS = ['"-5d"', "nan", "inf", "-inf", "1e400", '"1e400d"', "99999999999999999999"]
TOO_LARGE = ['"1e400GB"', '"99999999999999999999999TB"', f"{10**30}", f"{2**63}", '"8EiB"']
NOT_SIZES = ["-1", '"-1GB"', "nan", "inf", "1e30", '"NaN"']


def _refused(text: str, key: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, SOURCE)
    message = str(info.value)
    assert message.startswith(f"{SOURCE}: {key}: "), message
    assert "\n" not in message and len(message) < 200
    return message


@pytest.mark.parametrize(("table", "key"), DURATION_KEYS)
@pytest.mark.parametrize("value", TOO_LONG + NOT_DURATIONS)
def test_a_duration_out_of_range_names_its_key(table: str, key: str, value: str) -> None:
    _refused(f"[{table}]\n{key} = {value}\n", f"{table}.{key}")


@pytest.mark.parametrize(("table", "key"), DURATION_KEYS)
def test_a_century_is_the_longest_duration(table: str, key: str) -> None:
    policy = parse_policy(f'[{table}]\n{key} = "36525d"\n', SOURCE)
    assert getattr(getattr(policy, table), key) == MAX_DURATION == timedelta(days=36525)


@pytest.mark.parametrize(("table", "key"), SIZE_KEYS)
@pytest.mark.parametrize("value", TOO_LARGE + NOT_SIZES)
def test_a_size_out_of_range_names_its_key(table: str, key: str, value: str) -> None:
    _refused(f"[{table}]\n{key} = {value}\n", f"{table}.{key}")


@pytest.mark.parametrize(("table", "key"), SIZE_KEYS)
def test_the_largest_size_is_a_signed_64_bit_integer(table: str, key: str) -> None:
    policy = parse_policy(f"[{table}]\n{key} = {2**63 - 1}\n", SOURCE)
    assert getattr(getattr(policy, table), key) == MAX_SIZE == 2**63 - 1


@pytest.mark.parametrize("value", ['"2d"', '"1000000000d"', '"99999999999999999999d"', '"0s"'])
def test_the_watch_interval_is_1s_to_1d(value: str) -> None:
    # time.sleep() of a billion days raises OverflowError inside the running
    # guard; a day already makes it useless. Both are refused when loaded.
    _refused(f"[watch]\ninterval = {value}\n", "watch.interval")
    assert parse_policy('[watch]\ninterval = "1d"\n', SOURCE).watch.interval == timedelta(days=1)


def test_the_metrics_port_is_at_most_65535() -> None:
    assert "65536" in _refused('[watch]\nmetrics_addr = "127.0.0.1:65536"\n', "watch.metrics_addr")
    _refused('[watch]\nmetrics_addr = "127.0.0.1:99999"\n', "watch.metrics_addr")
    policy = parse_policy('[watch]\nmetrics_addr = "[::1]:65535"\n', SOURCE)
    assert policy.watch.metrics_addr == "[::1]:65535"


@pytest.mark.parametrize("value", ["99999999999999999999", "1000001", "-1"])
def test_keep_recent_is_bounded(value: str) -> None:
    _refused(f"[images]\nkeep_recent = {value}\n", "images.keep_recent")
    registry = f'[[registry]]\nurl = "http://127.0.0.1:5000"\n[[registry.rules]]\nrepositories = "*"\nkeep_recent = {value}\n'  # noqa: E501
    _refused(registry, "registry[0].rules[0].keep_recent")


def test_the_engine_request_timeout_defaults_to_60s() -> None:
    assert DEFAULT_POLICY.engine.request_timeout == timedelta(seconds=60)
    assert EnginePolicy().request_timeout == timedelta(seconds=60)
    policy = parse_policy('[engine]\nrequest_timeout = "5m"\n', SOURCE)
    assert policy.engine.request_timeout == timedelta(minutes=5)
    assert parse_policy('[engine]\nrequest_timeout = "1h"\n', SOURCE).engine == EnginePolicy(
        request_timeout=timedelta(hours=1)
    )


@pytest.mark.parametrize("value", ['"0s"', '"1h1s"', '"99999999999999999999d"', '"60"', "60"])
def test_the_engine_request_timeout_is_1s_to_1h(value: str) -> None:
    _refused(f"[engine]\nrequest_timeout = {value}\n", "engine.request_timeout")


def test_an_unknown_engine_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'engine\.request_timout'"):
        parse_policy('[engine]\nrequest_timout = "60s"\n', SOURCE)


REGISTRY = '[[registry]]\nurl = "http://127.0.0.1:5000"\n'


def test_a_registry_timeout_is_optional_and_bounded() -> None:
    assert parse_policy(REGISTRY, SOURCE).registry[0].timeout is None
    policy = parse_policy(REGISTRY + 'timeout = "30s"\n', SOURCE)
    assert policy.registry[0].timeout == timedelta(seconds=30)
    for value in ('"0s"', '"2h"', '"99999999999999999999d"', "30"):
        _refused(REGISTRY + f"timeout = {value}\n", "registry[0].timeout")


@pytest.mark.parametrize("value", TOO_LONG + NOT_DURATIONS)
def test_a_registry_rule_older_than_is_bounded(value: str) -> None:
    text = REGISTRY + f'[[registry.rules]]\nrepositories = "*"\nolder_than = {value}\n'
    _refused(text, "registry[0].rules[0].older_than")


@pytest.mark.parametrize("value", ['"0s"', '"2d"', '"99999999999999999999d"'])
def test_a_registry_gc_timeout_is_bounded(value: str) -> None:
    text = REGISTRY + f'[registry.gc]\nconfig = "/c.yml"\nsystemd_unit = "r"\ntimeout = {value}\n'
    _refused(text, "registry[0].gc.timeout")


def test_credentials_in_a_registry_url_are_refused_unquoted() -> None:
    message = _refused('[[registry]]\nurl = "https://bob:hunter2@reg.example"\n', "registry[0].url")
    assert "hunter2" not in message and "bob" not in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": timedelta(days=2)},
        {"interval": timedelta(days=999_999_999)},
        {"high": float("nan")},
        {"low": float("inf")},
    ],
)
def test_python_callers_get_the_same_bounds(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WatchPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_timedelta_beyond_a_century_is_refused_from_python() -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate({"containers": {"exited_after": timedelta(days=10**8)}})
    with pytest.raises(ValidationError):
        RegistryConfig.model_validate(
            {
                "url": "http://127.0.0.1",
                "rules": [{"repositories": "*", "older_than": MAX_DURATION * 2}],
            }
        )


LONGEST = Policy.model_validate(
    {
        section: {key: MAX_DURATION for s, key in DURATION_KEYS if s == section}
        for section, _ in DURATION_KEYS
    }
)


@settings(max_examples=30, deadline=None)
@given(snapshots())
def test_the_longest_durations_plan_at_any_time_from_1970_to_9000(snap: object) -> None:
    # The planner compares ages (now - created) with the limits; with every
    # limit at its bound, planning at either end of the range never overflows.
    for now in (datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 12, 31, 23, 59, tzinfo=UTC)):
        plan(snap, LONGEST, now)  # type: ignore[arg-type]
        assert now - MAX_DURATION < now < now + MAX_DURATION


def test_the_cli_exits_2_naming_the_key_before_any_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text('[containers]\nexited_after = "99999999999999999999d"\n')
    code = main(["-c", str(config), "-H", "unix:///nonexistent", "status"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"bilge: error: {config}: containers.exited_after: invalid duration")
    assert "internal error" not in err and "engine" not in err
