"""Engine address resolution, as docker does it: -H, DOCKER_HOST, then context."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from bilge.engine.hosts import DEFAULT_HOST, resolve_host
from bilge.errors import EngineError


def write_context(config: Path, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Endpoints": {"docker": {"Host": host}}}))


def test_explicit_host_wins() -> None:
    assert resolve_host("tcp://a:2375", {"DOCKER_HOST": "tcp://b:2375"}) == "tcp://a:2375"


def test_docker_host_env_next() -> None:
    assert resolve_host(None, {"DOCKER_HOST": "unix:///x.sock"}) == "unix:///x.sock"


def test_current_context_from_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    write_context(tmp_path, "remote", "ssh://ops@box")
    assert resolve_host(None, {"DOCKER_CONFIG": str(tmp_path)}) == "ssh://ops@box"


def test_docker_context_env_overrides_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    write_context(tmp_path, "other", "unix:///other.sock")
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "other"}
    assert resolve_host(None, env) == "unix:///other.sock"


def test_default_without_anything(tmp_path: Path) -> None:
    assert resolve_host(None, {"DOCKER_CONFIG": str(tmp_path)}) == DEFAULT_HOST


def test_a_broken_context_is_a_clear_error(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "missing"}
    with pytest.raises(EngineError, match="context 'missing'"):
        resolve_host(None, env)
