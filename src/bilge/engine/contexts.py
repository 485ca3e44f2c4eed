"""The hosts of a fleet: `-H` addresses, hosts files and Docker contexts, in order.

An operator names a fleet three ways: addresses (`-H`, repeatable), a hosts file
(`--hosts FILE`, one address or context name per line, `#` comments; `-` reads
stdin, so an inventory tool can pipe its list in), and Docker contexts
(`--context NAME`, repeatable), read from `~/.docker/contexts` as the docker CLI
reads them, TLS material included. Each becomes an `Endpoint`: the address to
dial, the name the user gave, and the TLS files a context carries.

A context that cannot be read is an `Endpoint` with its `error`, not an
exception: in a fleet one bad entry is one error row, and the other hosts still
run. A hosts file that cannot be read is bad usage (exit 2): nothing would say
which hosts were meant.

Light, like hosts.py: the command line resolves hosts before anything heavy loads.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bilge.engine.hosts import resolve_host
from bilge.errors import UsageError
from bilge.safejson import loads_json

#: The TLS files of a context, as `docker context create --docker ca=,cert=,key=` stores them.
TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


@dataclass(frozen=True)
class TLSFiles:
    """A context's TLS material: each file is None when the context has none."""

    ca: Path | None
    cert: Path | None
    key: Path | None
    verify: bool


@dataclass(frozen=True)
class Endpoint:
    """One host of a fleet: where to dial, what the user called it, its TLS.

    `tls` None means "as the environment says" (DOCKER_TLS_VERIFY,
    DOCKER_CERT_PATH), which is how `docker -H` treats an address; `error` says
    why the entry could not be resolved (then `address` is empty)."""

    address: str
    name: str
    tls: TLSFiles | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """How the host is shown: its address, or the name when it has none."""
        return self.address or self.name


def parse_hosts(text: str) -> list[str]:
    """The entries of a hosts file: one per line; `#` starts a comment (addresses
    never contain one), blank lines are ignored, surrounding spaces dropped."""
    entries = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


def read_hosts_file(path: str, stdin: TextIO | None = None) -> list[str]:
    """A hosts file's entries; `-` is standard input."""
    if path == "-":
        return parse_hosts((stdin or sys.stdin).read())
    try:
        return parse_hosts(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read hosts file {path}: {reason}") from exc


def config_dir(env: Mapping[str, str]) -> Path:
    """The docker CLI's configuration directory: DOCKER_CONFIG, else ~/.docker."""
    return Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "/root")) / ".docker")


def context_endpoint(name: str, env: Mapping[str, str]) -> Endpoint:
    """The endpoint of the Docker context `name`, with its TLS files.

    Contexts live under `contexts/meta/<sha256 of the name>/meta.json` and their
    TLS material under `contexts/tls/<same digest>/docker/`; "default" is the
    engine `docker` would use without one (DOCKER_HOST or the default socket)."""
    if name == "default":
        return Endpoint(resolve_host(None, {**env, "DOCKER_CONTEXT": "default"}), name)
    digest = hashlib.sha256(name.encode()).hexdigest()
    root = config_dir(env) / "contexts"
    meta = root / "meta" / digest / "meta.json"
    try:
        doc = loads_json(meta.read_text())
        docker = doc["Endpoints"]["docker"]
        host = docker["Host"]
        skip_verify = bool(docker.get("SkipTLSVerify", False))
    except FileNotFoundError:
        return Endpoint("", name, error=f"Docker context {name!r} not found ({meta})")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Endpoint("", name, error=f"Docker context {name!r}: cannot read {meta}: {exc}")
    if not isinstance(host, str) or not host:
        return Endpoint("", name, error=f"Docker context {name!r} has no docker endpoint host")
    return Endpoint(host, name, _context_tls(root / "tls" / digest / "docker", skip_verify))


def _context_tls(folder: Path, skip_verify: bool) -> TLSFiles | None:
    """The context's TLS files, or None when it has none (plain or ssh endpoint)."""
    found = [folder / f if (folder / f).is_file() else None for f in TLS_FILES]
    if not any(found):
        return None
    ca, cert, key = found
    return TLSFiles(ca=ca, cert=cert, key=key, verify=not skip_verify)


def entry_endpoint(entry: str, env: Mapping[str, str]) -> Endpoint:
    """A hosts-file line: an address (it has `://`) or else a context name."""
    if "://" in entry:
        return Endpoint(entry, entry)
    return context_endpoint(entry, env)


def fleet_endpoints(
    hosts: Sequence[str],
    hosts_files: Sequence[str],
    contexts: Sequence[str],
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
) -> list[Endpoint]:
    """Every host named, in order: the `-H` addresses, then each hosts file's
    entries, then the `--context` names; a host named twice runs once (two
    applies on one engine at once would fight over the same objects). With
    none named, the one host `docker` would use (-H, DOCKER_HOST, context)."""
    env = dict(os.environ) if env is None else env
    if sum(1 for path in hosts_files if path == "-") > 1:
        raise UsageError("--hosts - (standard input) may be given once")
    endpoints = [Endpoint(h, h) for h in hosts]
    for path in hosts_files:
        endpoints += [entry_endpoint(e, env) for e in read_hosts_file(path, stdin)]
    endpoints += [context_endpoint(name, env) for name in contexts]
    if hosts_files and not endpoints:
        raise UsageError(f"no hosts in {', '.join(hosts_files)}")
    if not endpoints:
        return [default_endpoint(env)]
    return unique(endpoints)


def default_endpoint(env: Mapping[str, str]) -> Endpoint:
    """The host `docker` would use: DOCKER_HOST (or CONTAINER_HOST), else the
    current context with its TLS files, else the default socket (hosts.py)."""
    if not (env.get("DOCKER_HOST") or env.get("CONTAINER_HOST")):
        current = env.get("DOCKER_CONTEXT") or current_context(env)
        if current and current != "default":
            return context_endpoint(current, env)
    address = resolve_host(None, dict(env))
    return Endpoint(address, address)


def current_context(env: Mapping[str, str]) -> str | None:
    """config.json's currentContext, as `docker context use` sets it."""
    try:
        doc = loads_json((config_dir(env) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    name = doc.get("currentContext") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name else None


def unique(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """The first of each address (an unresolved entry is kept by its name)."""
    seen: set[str] = set()
    kept = []
    for endpoint in endpoints:
        key = endpoint.address or f"?{endpoint.name}"
        if key not in seen:
            seen.add(key)
            kept.append(endpoint)
    return kept
