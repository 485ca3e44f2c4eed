"""The registry package builds on the core, never the other way round: the core's
policy validates [[registry]] tables without importing the registry package when a
policy has none, and the registry package imports neither the CLI nor its commands.
A bad [[registry]] table is still a config error for every command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "bilge"


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (inside functions too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{alias.name}" for alias in node.names}
    return out


@pytest.mark.parametrize("path", sorted((SRC / "registry").glob("*.py")), ids=lambda p: p.name)
def test_the_registry_imports_neither_the_cli_nor_its_commands(path: Path) -> None:
    forbidden = [
        name
        for name in _imports(path)
        if name in ("bilge.commands", "bilge.cli") or name.startswith("bilge.cli.")
    ]
    assert forbidden == []


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def test_a_policy_without_registry_tables_loads_no_registry_module() -> None:
    loaded = _python(
        "import sys\n"
        "from bilge.config.policy import parse_policy\n"
        "parse_policy('[containers]\\nexited_after = \"1h\"', 'x')\n"
        "print(sorted(m for m in sys.modules if m.startswith('bilge.registry')))"
    )
    assert loaded == "[]"


def test_registry_tables_are_validated_by_the_registry_model() -> None:
    name = _python(
        "from bilge.config.policy import parse_policy\n"
        "p = parse_policy('[[registry]]\\nurl = \"https://r.example/\"', 'x')\n"
        "print(type(p.registry[0]).__qualname__, p.registry[0].url)"
    )
    assert name == "RegistryConfig https://r.example"


@pytest.mark.parametrize("command", [["status"], ["history"], ["registry", "plan"]])
def test_a_bad_registry_table_is_a_config_error_for_every_command(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text('[[registry]]\nurl = "ftp://x"\n')
    argv = [sys.executable, "-m", "bilge", "-H", "unix:///nonexistent.sock"]
    argv += ["--state-dir", str(tmp_path / "state"), "-c", str(config), *command]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"{config}: registry[0].url: expected an http(s) URL" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
