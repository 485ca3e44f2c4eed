"""The [[registry]] tables of bilge.toml: read, refused with one line, rendered back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bilge.config.policy import DEFAULT_POLICY, Policy, parse_policy, policy_to_toml
from bilge.errors import ConfigError
from bilge.registry.policy import RegistryConfig, RegistryGc, RegistryRule, is_loopback

EXAMPLE = """
[[registry]]
url = "https://registry.example.com"
ca_bundle = "/etc/ssl/internal-ca.pem"

[[registry.rules]]
repositories = "team/*"
keep_recent = 5
keep_matching = ['^v\\d+\\.\\d+\\.\\d+$']
older_than = "30d"

[[registry.rules]]
repositories = "ci/*"
delete_matching = ["^pr-"]
keep_recent = 0
order = "semver"

[registry.gc]
config = "/etc/docker/registry/config.yml"
systemd_unit = "docker-registry.service"

[[registry]]
url = "http://127.0.0.1:5000"
name = "local"
"""


def test_example_is_read() -> None:
    first, second = parse_policy(EXAMPLE, "bilge.toml").registry
    assert first.host == "registry.example.com"
    assert first.label == "registry.example.com"
    assert [r.repositories for r in first.rules] == ["team/*", "ci/*"]
    assert first.rules[0].older_than == timedelta(days=30)
    assert first.rules[1].order == "semver"
    assert first.gc is not None
    assert first.gc.restart_command() == ["systemctl", "restart", "docker-registry.service"]
    assert second.label == "local"
    assert second.rules == ()
    assert second.gc is None


def test_defaults_have_no_registry() -> None:
    assert DEFAULT_POLICY.registry == ()
    rule = RegistryRule(repositories="*")
    assert (rule.keep_recent, rule.keep_latest, rule.order) == (10, True, "created")
    assert rule.delete_matching == (".*",)


def test_rule_for_takes_the_first_match() -> None:
    (config, _) = parse_policy(EXAMPLE, "x").registry
    assert config.rule_for("team/app") is config.rules[0]
    assert config.rule_for("ci/app") is config.rules[1]
    assert config.rule_for("other") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[registry]]\nurl = "http://registry.example.com"',
            "b.toml: registry[0]: url 'http://registry.example.com': plain http to a host "
            "other than 127.0.0.1/localhost is refused: use https, or set allow_http = true "
            "for this registry",
        ),
        (
            '[[registry]]\nurl = "ftp://x"',
            "b.toml: registry[0].url: expected an http(s) URL such as 'https://host:5000', "
            "got 'ftp://x'",
        ),
        (
            '[[registry]]\nurl = "https://x/v2/"',
            "b.toml: registry[0].url: give the registry's base URL without a path, "
            "not 'https://x/v2/'",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[[registry.rules]]\nrepositories = "a"\n'
            'keep_matching = ["("]',
            "b.toml: registry[0].rules[0].keep_matching[0]: invalid regular expression '(': "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[[registry.rules]]\nrepositories = "a"\n'
            'order = "name"',
            "b.toml: registry[0].rules[0].order: input should be 'created' or 'semver'",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[[registry.rules]]\nrepositories = "a"\n'
            "keep_recent = -1",
            "b.toml: registry[0].rules[0].keep_recent: must be at least 0, got -1",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[[registry.rules]]\nrepositories = "a"\n'
            'older_than = "30"',
            "b.toml: registry[0].rules[0].older_than: invalid duration '30': a bare number "
            "is ambiguous, add a unit (use e.g. 90s, 30m, 24h, 7d)",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[[registry.rules]]\nrepositories = "a"\nkeep = 1',
            "b.toml: unknown key 'registry[0].rules[0].keep'",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[registry.gc]\nconfig = "c.yml"',
            "b.toml: registry[0].gc: give exactly one of restart and systemd_unit",
        ),
        (
            '[[registry]]\nurl = "https://x"\n[registry.gc]\nconfig = "c.yml"\nrestart = "\'"',
            'b.toml: registry[0].gc.restart: cannot split command "\'": No closing quotation',
        ),
    ],
)
def test_bad_registry_tables_are_one_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(text, "b.toml")
    assert str(err.value) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("10.0.0.1", False), ("registry.local", False)],
)  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_when_asked() -> None:
    config = RegistryConfig(url="http://registry.lan:5000/", allow_http=True)
    assert config.url == "http://registry.lan:5000"
    assert config.host == "registry.lan:5000"


def test_example_round_trips() -> None:
    policy = parse_policy(EXAMPLE, "x")
    text = policy_to_toml(policy)
    assert "[[registry.rules]]" in text
    assert "[registry.gc]" in text
    assert parse_policy(text, "rendered") == policy


regexes = st.lists(st.sampled_from(["^v", "a|b", "\\d+", "x\\.y", '"q"']), max_size=3)
rules = st.builds(
    RegistryRule,
    repositories=st.text(min_size=1, max_size=10),
    keep_recent=st.integers(0, 100),
    keep_matching=regexes.map(tuple),
    delete_matching=regexes.map(tuple),
    older_than=st.integers(0, 10**7).map(lambda s: timedelta(seconds=s)),
    keep_latest=st.booleans(),
    order=st.sampled_from(["created", "semver"]),
)
gcs = st.builds(
    RegistryGc,
    config=st.text(min_size=1, max_size=10),
    restart=st.just("systemctl restart registry"),
    binary=st.text(max_size=5),
    delete_untagged=st.booleans(),
)
registries = st.builds(
    RegistryConfig,
    url=st.sampled_from(["https://r.example.com", "http://127.0.0.1:5000"]),
    name=st.text(max_size=5),
    ca_bundle=st.none() | st.text(max_size=5),
    rules=st.lists(rules, max_size=3).map(tuple),
    gc=st.none() | gcs,
)


@given(st.lists(registries, max_size=3).map(tuple))
def test_any_registries_round_trip(regs: tuple[RegistryConfig, ...]) -> None:
    policy = Policy(registry=regs)
    assert parse_policy(policy_to_toml(policy), "rendered") == policy


def _toml_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]


def test_the_documented_examples_are_valid() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    section = readme.split("## Registries", 1)[1].split("\n## ", 1)[0]
    docs = (root / "docs" / "registry.md").read_text()
    blocks = _toml_blocks(section) + _toml_blocks(docs)
    assert len(blocks) == 2
    for block in blocks:
        assert parse_policy(block, "example").registry
