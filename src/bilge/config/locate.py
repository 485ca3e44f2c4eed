"""Where the policy file is, and a first look into it before pydantic is loaded.

policy.py validates the file; this module only finds it (so that the CLI can
do so before loading the rest of bilge) and peeks at the one setting that
decides how much of the data-root the prefetch must read.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from bilge.errors import ConfigError

SYSTEM_CONFIG = Path("/etc/bilge/bilge.toml")


def find_config(explicit: Path | None, env: Mapping[str, str] = os.environ) -> Path | None:
    """The policy file to use, or None for the built-in defaults.

    In order: `explicit` (--config), $BILGE_CONFIG, SYSTEM_CONFIG, then the
    user's ($XDG_CONFIG_HOME or ~/.config)/bilge/bilge.toml. A file the user
    named explicitly must exist; the usual places are used only if they do.
    """
    if explicit is not None:
        return _must_exist(explicit, "given with --config")
    if env.get("BILGE_CONFIG"):
        return _must_exist(Path(env["BILGE_CONFIG"]), "named by $BILGE_CONFIG")
    for candidate in (SYSTEM_CONFIG, _user_config(env)):
        if candidate is not None and candidate.exists():
            return candidate
    return None


def _must_exist(path: Path, how: str) -> Path:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found ({how})")
    return path


def _user_config(env: Mapping[str, str]) -> Path | None:
    xdg = env.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative XDG_CONFIG_HOME.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "bilge" / "bilge.toml"
    home = env.get("HOME")
    if not home:
        try:
            home = str(Path.home())
        except RuntimeError:  # no home at all, e.g. an arbitrary uid in a container
            return None
    return Path(home) / ".config" / "bilge" / "bilge.toml"


def named_volumes_kept(path: Path | None) -> bool:
    """True when the policy at `path` surely keeps every named volume (`[volumes]
    named` false or absent): then a plan needs nothing from inside them. Any doubt
    (unreadable, invalid, not a boolean) is False; policy.py reports what is wrong."""
    if path is None:
        return True
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    volumes = doc.get("volumes", {})
    return isinstance(volumes, dict) and volumes.get("named", False) is False
