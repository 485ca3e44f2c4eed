"""No command ever ends in "internal error", whatever it is given: every command
against an engine that answers nonsense, bad policy files, bad plan files and a
corrupt state store. Each run is the real `bilge` in a subprocess; an error must be
one line on stderr with a documented exit code, never a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.deadline_peers import Peer, answer

COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["plan", "--explain"],
    ["apply", "--yes"],
    ["doctor"],
    ["history"],
    ["watch", "--once"],
]
REGISTRY_COMMANDS = [
    ["registry", "plan"],
    ["registry", "apply", "--yes"],
    ["registry", "gc", "--dry-run"],
]

VERSION = json.dumps({"ApiVersion": "1.41", "Version": "20.10.24", "Os": "linux"}).encode()
BAD_CONTAINER = {"Id": None, "Names": 5, "State": [], "Created": "soon", "Mounts": "x"}
#: What a broken or hostile engine may answer to every listing and inspection.
NONSENSE = {
    "list-not-object": b"[1, 2, 3]",
    "object-not-list": b'{"a": 1}',
    "null": b"null",
    "string": b'"hello"',
    "wrong-types": json.dumps([BAD_CONTAINER]).encode(),
    "not-json": b"<html>oops</html>",
    "deep": b"[" * 50_000 + b"]" * 50_000,
    "huge-number": b'[{"Id": "a", "Created": 1' + b"0" * 400 + b"}]",
}


def run_bilge(
    tmp_path: Path, *args: str, host: str = "unix:///nonexistent.sock"
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "bilge",
        "-H",
        host,
        "--state-dir",
        str(tmp_path / "state"),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def assert_clean_failure(done: subprocess.CompletedProcess[str]) -> None:
    assert "internal error" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1, 2, 3), done.stderr
    if done.returncode:
        lines = [line for line in done.stderr.splitlines() if line.startswith("bilge: error:")]
        assert len(lines) == 1, done.stderr


@pytest.fixture(params=sorted(NONSENSE))
def nonsense_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    body = NONSENSE[request.param]
    paths = ["/containers/json", "/images/json", "/volumes", "/networks", "/system/df", "/info"]
    behaviours = {"/version": answer(VERSION), "/_ping": answer(b"OK")}
    behaviours |= {f"/v1.41{p}": answer(body) for p in paths}
    peer = Peer(behaviours, str(tmp_path / "engine.sock"))
    yield peer.host
    peer.close()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_engine_answering_nonsense(
    nonsense_engine: str, tmp_path: Path, command: list[str]
) -> None:
    assert_clean_failure(run_bilge(tmp_path, *command, host=nonsense_engine))


BAD_POLICIES = {
    "not-toml": "this is = = not toml",
    "unknown-key": "[containers]\nexited_afterr = '1h'",
    "huge-duration": "[containers]\nexited_after = '99999999999999999999d'",
    "huge-interval": "[watch]\ninterval = '1000000000d'",
    "bad-type": "[volumes]\nnamed = 'yes please'",
    "bad-watermarks": "[watch]\nhigh = '50%'\nlow = '90%'",
    "bad-webhook": "[watch]\nwebhook_url = 'ftp://hooks.example/T0/SECRET'",
    "binary": "\x00\xff\xfe",
    "deep": "a = " + "[" * 5000 + "]" * 5000,
    "table-as-value": "containers = 5",
}


@pytest.mark.parametrize("policy", sorted(BAD_POLICIES))
@pytest.mark.parametrize("command", COMMANDS + REGISTRY_COMMANDS, ids=" ".join)
def test_a_bad_policy_is_exit_2(tmp_path: Path, policy: str, command: list[str]) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text(BAD_POLICIES[policy], errors="surrogateescape")
    done = run_bilge(tmp_path, "-c", str(config), *command)
    assert_clean_failure(done)
    assert done.returncode == 2, done.stderr
    assert "SECRET" not in done.stderr


BAD_PLANS = {
    "empty": "",
    "deep": "[" * 100_000 + "]" * 100_000,
    "list": "[]",
    "wrong-types": json.dumps(
        {
            "schema": 1,
            "kind": "plan",
            "created_at": 5,
            "host": [],
            "total_bytes": "x",
            "actions": {},
            "kept": None,
        }
    ),
    "huge-number": '{"schema": 1' + "0" * 5000 + "}",
    "bad-action": json.dumps(
        {
            "schema": 1,
            "kind": "plan",
            "created_at": "2026-01-01T00:00:00+00:00",
            "host": "unix:///nonexistent.sock",
            "total_bytes": 0,
            "actions": [{"kind": "bomb", "id": 1}],
            "kept": [],
        }
    ),
}


@pytest.mark.parametrize("plan", sorted(BAD_PLANS))
def test_a_bad_plan_file_is_exit_2(tmp_path: Path, plan: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(BAD_PLANS[plan])
    done = run_bilge(tmp_path, "apply", "--yes", "--plan", str(path))
    assert_clean_failure(done)
    assert done.returncode == 2, done.stderr


@pytest.mark.parametrize("command", COMMANDS + REGISTRY_COMMANDS, ids=" ".join)
def test_a_corrupt_state_store(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "bilge.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    assert_clean_failure(run_bilge(tmp_path, *command))


@pytest.mark.parametrize("body", sorted(NONSENSE))
@pytest.mark.parametrize("command", REGISTRY_COMMANDS, ids=" ".join)
def test_a_registry_answering_nonsense(tmp_path: Path, body: str, command: list[str]) -> None:
    nonsense = answer(NONSENSE[body], "Content-Type: application/json")
    manifest = answer(NONSENSE[body], "Content-Type: application/vnd.oci.image.manifest.v1+json")
    catalog = answer(b'{"repositories": ["app"]}')
    tags = answer(b'{"name": "app", "tags": ["1"]}')
    for listing, repo in ((nonsense, tags), (catalog, nonsense), (catalog, tags)):
        peer = Peer(
            {
                "/v2/": answer(b"{}"),
                "/v2/_catalog": listing,
                "/v2/app/tags/list": repo,
                "/v2/app/manifests/1": manifest,
            },
        )
        try:
            config = tmp_path / "bilge.toml"
            config.write_text(
                f'[[registry]]\nurl = "{peer.url}"\n[[registry.rules]]\n'
                'repositories = "*"\nkeep_recent = 0\n'
            )
            assert_clean_failure(run_registry(tmp_path, "-c", str(config), *command))
        finally:
            peer.close()


REGISTRY_URL = "http://127.0.0.1:9"  # nothing answers: these fail before any request


def run_registry(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """bilge without -H: the registry commands refuse it, before doing anything."""
    argv = [sys.executable, "-m", "bilge", "--state-dir", str(tmp_path / "state"), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


BAD_REGISTRY_POLICIES = {
    "untagged-without-storage": 'repositories = "*"\nuntagged_after = "7d"',
    "pushed-without-storage": 'repositories = "*"\nage = "pushed"',
    "bad-age": 'repositories = "*"\nage = "sometimes"',
    "bad-untagged-after": 'repositories = "*"\nuntagged_after = "soon"',
    "bad-pulled-within": 'repositories = "*"\nkeep_pulled_within = -1',
    "bad-untag-shared": 'repositories = "*"\nuntag_shared = "yes"',
}


@pytest.mark.parametrize("rule", sorted(BAD_REGISTRY_POLICIES))
@pytest.mark.parametrize(
    "command", [*REGISTRY_COMMANDS, ["registry", "listen", "--addr", "127.0.0.1:0"]], ids=" ".join
)
def test_bad_registry_keys_are_exit_2(tmp_path: Path, rule: str, command: list[str]) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text(
        f'[[registry]]\nurl = "{REGISTRY_URL}"\n[[registry.rules]]\n{BAD_REGISTRY_POLICIES[rule]}\n'
    )
    done = run_registry(tmp_path, "-c", str(config), *command)
    assert_clean_failure(done)
    assert done.returncode == 2, done.stderr
    assert "rules[0]" in done.stderr


REGISTRY_CONFIGS = {
    "missing": None,
    "not-yaml": "storage: [",
    "s3": "storage: {s3: {bucket: b}}",
    "no-such-root": "storage: {filesystem: {rootdirectory: /nonexistent/registry}}",
}


@pytest.mark.parametrize("registry_config", sorted(REGISTRY_CONFIGS))
def test_storage_bilge_cannot_read_is_exit_2(tmp_path: Path, registry_config: str) -> None:
    text = REGISTRY_CONFIGS[registry_config]
    path = tmp_path / "config.yml"
    if text is not None:
        path.write_text(text)
    config = tmp_path / "bilge.toml"
    config.write_text(
        f'[[registry]]\nurl = "{REGISTRY_URL}"\n[[registry.rules]]\nrepositories = "*"\n'
        f'untagged_after = "7d"\n[registry.gc]\nconfig = "{path}"\nrestart = "true"\n'
    )
    done = run_registry(tmp_path, "-c", str(config), "registry", "plan")
    assert_clean_failure(done)
    assert done.returncode == 2, done.stderr
    assert "untagged_after needs it" in done.stderr


def test_a_registry_storage_answering_nonsense(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    digest = "sha256:" + "ab" * 32
    link = root / "docker/registry/v2/repositories/app/_manifests/revisions/sha256" / digest[7:]
    link.mkdir(parents=True)
    (link / "link").write_text("sha256:" + "cd" * 32)  # a link that lies
    data = root / "docker/registry/v2/blobs/sha256/ab" / digest[7:]
    data.mkdir(parents=True)
    (data / "data").write_bytes(b"not json")
    (tmp_path / "config.yml").write_text(f"storage: {{filesystem: {{rootdirectory: {root}}}}}")
    peer = Peer(
        {
            "/v2/": answer(b"{}"),
            "/v2/_catalog": answer(b'{"repositories": ["app"]}'),
            "/v2/app/tags/list": answer(b'{"name": "app", "tags": []}'),
        }
    )
    try:
        config = tmp_path / "bilge.toml"
        config.write_text(
            f'[[registry]]\nurl = "{peer.url}"\n[[registry.rules]]\nrepositories = "*"\n'
            f'untagged_after = "7d"\n[registry.gc]\nconfig = "{tmp_path}/config.yml"\n'
            'restart = "true"\n'
        )
        for command in REGISTRY_COMMANDS[:2]:
            done = run_registry(tmp_path, "-c", str(config), *command)
            assert_clean_failure(done)
            assert done.returncode == 1, done.stderr
            assert "says" in done.stderr
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("args", "token"),
    [
        (["--addr", "127.0.0.1:0"], ""),
        (["--addr", "127.0.0.1:0"], "short"),
        (["--addr", "nowhere"], "t" * 32),
        (["--addr", "203.0.113.1:80"], "t" * 32),
    ],
)
def test_listen_refuses_to_start_with_one_line(
    tmp_path: Path, args: list[str], token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILGE_NOTIFY_TOKEN", token)
    config = tmp_path / "bilge.toml"
    config.write_text(f'[[registry]]\nurl = "{REGISTRY_URL}"\n')
    done = run_registry(tmp_path, "-c", str(config), "registry", "listen", *args)
    assert_clean_failure(done)
    assert done.returncode == 2, done.stderr
    assert "token" in done.stderr or "--addr" in done.stderr
    assert "t" * 32 not in done.stderr


def test_a_corrupt_state_store_when_rules_keep_pulled_images(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "bilge.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    config = tmp_path / "bilge.toml"
    config.write_text(
        f'[[registry]]\nurl = "{REGISTRY_URL}"\n[[registry.rules]]\nrepositories = "*"\n'
        'keep_pulled_within = "30d"\n'
    )
    done = run_registry(tmp_path, "-c", str(config), "registry", "plan")
    assert_clean_failure(done)
    assert done.returncode == 1, done.stderr
