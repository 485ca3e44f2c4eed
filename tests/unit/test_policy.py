from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bilge.cli import main
from bilge.config import locate as configfile
from bilge.config import policy as policy_module
from bilge.config.locate import find_config, named_volumes_kept
from bilge.config.policy import (
    DEFAULT_POLICY,
    ImagesPolicy,
    Policy,
    VolumesPolicy,
    WatchPolicy,
    load_policy,
    parse_policy,
    policy_to_toml,
)
from bilge.errors import ConfigError

# The example policy of the README, "Policy", verbatim.
DESIGN_EXAMPLE = """\
keep_label = "bilge.keep"   # an object carrying this label is never removed

[containers]
exited_after  = "24h"       # exited/dead containers, by time finished
created_after = "24h"       # created but never started, by time created
keep_names    = []          # glob patterns

[volumes]
anonymous_after = "24h"     # unreferenced anonymous volumes
named           = false     # unreferenced named volumes are kept unless this is true
named_after     = "30d"
protect_data    = true      # a volume that holds a database's files is never removed
keep_names      = []

[images]
dangling_after = "1h"
unused_after   = "7d"       # by last use when known, else by creation
keep_recent    = 1          # per repository, the newest N tagged images stay
keep           = []         # glob patterns on repo:tag

[build_cache]
keep_storage = "10GB"
unused_after = "7d"

[networks]
unused_after = "24h"

[watch]
high = "85%"
low = "75%"
inodes_high = "90%"
inodes_low = "80%"
interval = "30s"
"""


def test_defaults_are_the_documented_ones() -> None:
    p = DEFAULT_POLICY
    assert p.keep_label == "bilge.keep"
    assert p.containers.exited_after == timedelta(hours=24)
    assert p.containers.created_after == timedelta(hours=24)
    assert p.containers.keep_names == ()
    assert p.volumes.anonymous_after == timedelta(hours=24)
    assert p.volumes.named is False
    assert p.volumes.named_after == timedelta(days=30)
    assert p.volumes.protect_data is True
    assert p.volumes.keep_names == ()
    assert p.images.dangling_after == timedelta(hours=1)
    assert p.images.unused_after == timedelta(days=7)
    assert p.images.keep_recent == 1
    assert p.images.keep == ()
    assert p.build_cache.keep_storage == 10 * 1000**3
    assert p.build_cache.unused_after == timedelta(days=7)
    assert p.networks.unused_after == timedelta(hours=24)
    w = p.watch
    assert (w.high, w.low, w.inodes_high, w.inodes_low) == (0.85, 0.75, 0.90, 0.80)
    assert w.interval == timedelta(seconds=30)


def test_design_example_parses_to_the_defaults() -> None:
    assert parse_policy(DESIGN_EXAMPLE, "bilge.toml") == DEFAULT_POLICY


def test_empty_file_is_the_defaults() -> None:
    assert parse_policy("", "bilge.toml") == DEFAULT_POLICY


def test_values_are_read() -> None:
    p = parse_policy(
        """
        keep_label = "keep.me"
        [volumes]
        named = true
        named_after = "2w"
        keep_names = ["pg-*", "backup"]
        [images]
        keep_recent = 3
        keep = ["registry.local/*:prod"]
        [build_cache]
        keep_storage = 1048576
        [watch]
        high = "90.5%"
        low = "60%"
        interval = "1m30s"
        """,
        "bilge.toml",
    )
    assert p.keep_label == "keep.me"
    assert p.volumes == VolumesPolicy(
        named=True, named_after=timedelta(weeks=2), keep_names=("pg-*", "backup")
    )
    assert p.images == ImagesPolicy(keep_recent=3, keep=("registry.local/*:prod",))
    assert p.build_cache.keep_storage == 1024**2
    assert (p.watch.high, p.watch.low) == (0.905, 0.6)
    assert p.watch.interval == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keep_label = ", "invalid TOML: Invalid value (at end of document)"),
        ('[images]\nkeep = ["a"\n', "invalid TOML"),
        ("[images]\nunused_after = 1d", "(at line 2, column"),
        ("bogus = 1", "unknown key 'bogus'"),
        ("[bogus]\na = 1", "unknown key 'bogus'"),
        ("[volumes]\nnamd = true", "unknown key 'volumes.namd'"),
        (
            '[images]\nunused_after = "7 days"',
            "images.unused_after: invalid duration '7 days' (use e.g. 90s, 30m, 24h, 7d)",
        ),
        ("[containers]\nexited_after = 24", "containers.exited_after: invalid duration '24'"),
        ("[containers]\nexited_after = 24", "bare number is ambiguous"),
        ('[networks]\nunused_after = "-1h"', "networks.unused_after: invalid duration"),
        ('[build_cache]\nkeep_storage = "10 XB"', "build_cache.keep_storage: invalid size '10 XB'"),
        ("[build_cache]\nkeep_storage = -1", "build_cache.keep_storage: invalid size -1"),
        ("[build_cache]\nkeep_storage = 1.5", "build_cache.keep_storage: invalid size 1.5"),
        ("[watch]\nhigh = 85", "watch.high: invalid percentage 85: write it as a string with a %"),
        ('[watch]\nhigh = "85"', "watch.high: invalid percentage '85' (add a % sign)"),
        ('[watch]\nhigh = "120%"', "watch.high: invalid percentage '120%'"),
        ("[images]\nkeep_recent = -1", "images.keep_recent: must be at least 0, got -1"),
        ('[images]\nkeep_recent = "1"', "images.keep_recent: expected a whole number, got '1'"),
        ('[watch]\nlow = "90%"', "watch.low (90%) must be below watch.high (85%)"),
        ('[watch]\nlow = "85%"', "watch.low (85%) must be below watch.high (85%)"),
        (
            '[watch]\ninodes_high = "70%"',
            "watch.inodes_low (80%) must be below watch.inodes_high (70%)",
        ),
        ('[watch]\ninterval = "0s"', "watch.interval: must be between 1s and 1d, got 0s"),
        ('[volumes]\nnamed = "yes"', "volumes.named: expected true or false, got 'yes'"),
        ('[images]\nkeep = "a*"', "images.keep: expected a list of strings, got 'a*'"),
        ('[images]\nkeep = ["a", 1]', "images.keep[1]: expected a string, got 1"),
        ("volumes = 3", "volumes: expected a table, got 3"),
        ('keep_label = ""', "keep_label: must not be empty"),
        ("keep_label = 5\nbogus = 1", "keep_label: expected a string, got 5 (and 1 more)"),
    ],
)
def test_bad_policy_is_one_line_naming_file_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "/etc/bilge/bilge.toml")
    message = str(info.value)
    assert message.startswith("/etc/bilge/bilge.toml: ")
    assert expected in message
    assert "\n" not in message


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bilge.toml"
    path.write_text("[images]\nkeep_recent = 4\n")
    assert load_policy(path).images.keep_recent == 4


def test_load_policy_none_is_the_defaults() -> None:
    assert load_policy(None) is DEFAULT_POLICY


def test_load_policy_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bilge.toml"
    path.write_text('[images]\nunused_after = "7 days"\n')
    with pytest.raises(ConfigError, match=f"^{path}: images.unused_after: invalid duration"):
        load_policy(path)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "No such file or directory"),
        (lambda p: p.mkdir(), "Is a directory"),
        (lambda p: p.write_bytes(b"keep_label = '\xff'"), "not UTF-8 text"),
    ],
)
def test_load_policy_unreadable(tmp_path: Path, make: object, reason: str) -> None:
    path = tmp_path / "bilge.toml"
    make(path)  # type: ignore[operator]
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}: ")
    assert reason in str(info.value)


# --- find_config ---------------------------------------------------------------------


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Every place find_config looks, under tmp_path, none of them existing yet."""
    paths = {
        "explicit": tmp_path / "explicit.toml",
        "env": tmp_path / "env.toml",
        "system": tmp_path / "etc" / "bilge" / "bilge.toml",
        "xdg": tmp_path / "xdg" / "bilge" / "bilge.toml",
        "home": tmp_path / "home" / ".config" / "bilge" / "bilge.toml",
    }
    monkeypatch.setattr(configfile, "SYSTEM_CONFIG", paths["system"])
    return paths


def _create(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def _env(places: dict[str, Path], *, xdg: bool = True) -> dict[str, str]:
    env = {"BILGE_CONFIG": str(places["env"]), "HOME": str(places["home"].parents[2])}
    if xdg:
        env["XDG_CONFIG_HOME"] = str(places["xdg"].parents[1])
    return env


def test_explicit_path_wins(places: dict[str, Path]) -> None:
    _create(*places.values())
    assert find_config(places["explicit"], _env(places)) == places["explicit"]


def test_explicit_path_must_exist(places: dict[str, Path]) -> None:
    _create(places["env"], places["system"])
    with pytest.raises(ConfigError, match=r"explicit\.toml: config file not found"):
        find_config(places["explicit"], _env(places))


def test_env_comes_next(places: dict[str, Path]) -> None:
    _create(places["env"], places["system"], places["xdg"])
    assert find_config(None, _env(places)) == places["env"]


def test_env_path_must_exist(places: dict[str, Path]) -> None:
    _create(places["system"])
    with pytest.raises(ConfigError, match=r"env\.toml: config file not found .*BILGE_CONFIG"):
        find_config(None, _env(places))


def test_system_file_before_user_file(places: dict[str, Path]) -> None:
    _create(places["system"], places["xdg"])
    env = _env(places)
    del env["BILGE_CONFIG"]
    assert find_config(None, env) == places["system"]


def test_xdg_config_home(places: dict[str, Path]) -> None:
    _create(places["xdg"], places["home"])
    env = _env(places)
    del env["BILGE_CONFIG"]
    assert find_config(None, env) == places["xdg"]


def test_home_config_without_xdg(places: dict[str, Path]) -> None:
    _create(places["home"])
    env = _env(places, xdg=False)
    env["BILGE_CONFIG"] = ""  # empty is the same as unset
    assert find_config(None, env) == places["home"]


def test_relative_xdg_is_ignored(places: dict[str, Path]) -> None:
    _create(places["home"])
    env = {"HOME": str(places["home"].parents[2]), "XDG_CONFIG_HOME": "relative"}
    assert find_config(None, env) == places["home"]


def test_nothing_found_means_defaults(places: dict[str, Path]) -> None:
    env = _env(places)
    del env["BILGE_CONFIG"]
    assert find_config(None, env) is None


# --- Python construction and rendering -----------------------------------------------


def test_python_callers_may_use_fractions_and_timedeltas() -> None:
    w = WatchPolicy(high=0.9, low="50%", interval=timedelta(minutes=1))  # type: ignore[arg-type]
    assert (w.high, w.low, w.interval) == (0.9, 0.5, timedelta(minutes=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"high": 0.5, "low": 0.6},
        {"high": 1.5},
        {"interval": timedelta(milliseconds=10)},
        {"interval": timedelta(seconds=-1)},
    ],
)
def test_python_callers_are_validated_too(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WatchPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_is_frozen_and_forbids_extra_keys() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_POLICY.images.keep_recent = 5  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ImagesPolicy(keep_latest=2)  # type: ignore[call-arg]
    assert hash(DEFAULT_POLICY) == hash(Policy())


def test_default_policy_renders_and_round_trips() -> None:
    text = policy_to_toml(DEFAULT_POLICY)
    assert 'keep_storage = "10GB"' in text
    assert 'high = "85%"' in text
    assert "# an object carrying this label is never removed" in text
    assert parse_policy(text, "rendered") == DEFAULT_POLICY


durations = st.integers(min_value=0, max_value=10**8).map(lambda s: timedelta(seconds=s))
intervals = st.integers(min_value=1, max_value=86400).map(lambda s: timedelta(seconds=s))
globs = st.lists(st.text(max_size=12), max_size=3).map(tuple)
ratios = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def watch_policies(draw: st.DrawFn) -> WatchPolicy:
    high, inodes_high = draw(ratios.filter(lambda r: r > 0)), draw(ratios.filter(lambda r: r > 0))
    low = draw(st.floats(min_value=0.0, max_value=high, exclude_max=True))
    inodes_low = draw(st.floats(min_value=0.0, max_value=inodes_high, exclude_max=True))
    return WatchPolicy(
        high=high,
        low=low,
        inodes_high=inodes_high,
        inodes_low=inodes_low,
        interval=draw(intervals),
    )


policies = st.builds(
    Policy,
    keep_label=st.text(min_size=1, max_size=20),
    containers=st.builds(
        policy_module.ContainersPolicy,
        exited_after=durations,
        created_after=durations,
        keep_names=globs,
    ),
    volumes=st.builds(
        VolumesPolicy,
        anonymous_after=durations,
        named=st.booleans(),
        named_after=durations,
        protect_data=st.booleans(),
        keep_names=globs,
    ),
    images=st.builds(
        ImagesPolicy,
        dangling_after=durations,
        unused_after=durations,
        keep_recent=st.integers(min_value=0, max_value=1000),
        keep=globs,
    ),
    build_cache=st.builds(
        policy_module.BuildCachePolicy,
        keep_storage=st.integers(min_value=0, max_value=10**15),
        unused_after=durations,
    ),
    networks=st.builds(policy_module.NetworksPolicy, unused_after=durations),
    watch=watch_policies(),
    engine=st.builds(
        policy_module.EnginePolicy,
        request_timeout=st.integers(min_value=1, max_value=3600).map(
            lambda s: timedelta(seconds=s)
        ),
    ),
)


@given(policies)
def test_any_policy_round_trips_through_toml(policy: Policy) -> None:
    assert parse_policy(policy_to_toml(policy), "rendered") == policy


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("", True),
        ("[volumes]\nanonymous_after = '1h'\n", True),
        ("[volumes]\nnamed = false\n", True),
        ("[volumes]\nnamed = true\n", False),
        ("[volumes]\nnamed = 'no'\n", False),  # invalid: policy.py says so, no guessing
        ("volumes = 3\n", False),
        ("[volumes\n", False),  # not TOML
    ],
)
def test_named_volumes_kept_peeks_before_validation(tmp_path: Path, text: str, kept: bool) -> None:
    path = tmp_path / "bilge.toml"
    path.write_text(text)
    assert named_volumes_kept(path) is kept
    assert named_volumes_kept(None) is True  # the built-in policy keeps them
    assert named_volumes_kept(tmp_path / "missing.toml") is False


# --- the webhook URL is a secret: checked when loaded, never quoted -----------------

WEBHOOK_SECRET = "T000/B000/SECRET"


@pytest.mark.parametrize(
    "url",
    [
        f"https://x y/{WEBHOOK_SECRET}",
        f"ftp://h/{WEBHOOK_SECRET}",
        f"https:///{WEBHOOK_SECRET}",
        f"https://hooks.example/{WEBHOOK_SECRET}\nX: y",
        f"hooks.example/{WEBHOOK_SECRET}",
    ],
)
def test_a_bad_webhook_url_is_refused_without_quoting_it(url: str) -> None:
    text = f"[watch]\nwebhook_url = {policy_module._toml_string(url)}\n"
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "bilge.toml")
    message = str(info.value)
    assert message.startswith("bilge.toml: watch.webhook_url: the webhook URL ")
    assert "SECRET" not in message and "T000" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_good_webhook_url_is_kept_as_written() -> None:
    url = f"https://hooks.example/{WEBHOOK_SECRET}?x=1"
    policy = parse_policy(f'[watch]\nwebhook_url = "{url}"\n', "bilge.toml")
    assert policy.watch.webhook_url == url


def test_a_webhook_url_of_the_wrong_type_is_not_quoted() -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(f'[watch]\nwebhook_url = ["https://h/{WEBHOOK_SECRET}"]\n', "bilge.toml")
    assert str(info.value) == "bilge.toml: watch.webhook_url: expected a string"


def test_the_webhook_url_is_left_out_of_the_policys_repr() -> None:
    policy = parse_policy(f'[watch]\nwebhook_url = "https://h/{WEBHOOK_SECRET}"\n', "f")
    assert "SECRET" not in repr(policy) and "SECRET" not in str(policy.watch)


@pytest.mark.parametrize(
    "watch",
    [
        f'webhook_url = "https://x y/{WEBHOOK_SECRET}"',
        # Valid, but pydantic's own error for the table quotes all of it.
        f'webhook_url = "https://h/{WEBHOOK_SECRET}"\nlow = "95%"',
    ],
)
def test_no_traceback_shows_the_webhook_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], watch: str
) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text(f"[watch]\n{watch}\n")
    assert main(["-v", "-c", str(config), "-H", "unix:///nonexistent", "status"]) == 2
    err = capsys.readouterr().err
    assert f"bilge: error: {config}: watch." in err
    assert "SECRET" not in err and "T000" not in err
