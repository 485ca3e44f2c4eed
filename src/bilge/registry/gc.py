"""`bilge registry gc`: the registry's own garbage collector, run safely.

`registry garbage-collect` deletes every blob no manifest references. A push
in flight has uploaded blobs that no manifest references *yet*: a collection
running alongside deletes them, and the pushed image is silently corrupt. So:

1. the configuration gets `storage.maintenance.readonly.enabled: true` (the
   original is kept byte for byte, and beside it as CONFIG.bilge-backup while
   the run lasts), and the registry is restarted;
2. bilge checks that it really refuses pushes now (an invalid manifest must
   be answered 405, not 400; nothing is written either way): a restart command
   that restarted nothing must not lead to a collection on a writable registry;
3. `garbage-collect` runs (`--delete-untagged` only on 3.0 and newer: 2.8
   deletes the platform manifests of multi-arch indexes with it);
4. whatever happened, the original configuration is written back and the
   registry restarted, writable again.

The storage's disk usage is measured before and after (filesystem storage).
`--dry-run` changes nothing: it only asks garbage-collect what would go.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.errors import UsageError
from bilge.registry.client import RegistryClient
from bilge.registry.errors import GcError, RegistryError
from bilge.registry.policy import RegistryConfig, RegistryGc

BACKUP_SUFFIX = ".bilge-backup"
#: The repository the read-only check starts (and cancels) an upload in.
PROBE_REPOSITORY = "bilge/gc-probe"
_ELIGIBLE_RE = re.compile(r"blob eligible for deletion: (sha256:[0-9a-f]{64})")
_SUMMARY_RE = re.compile(r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible")
_VERSION_RE = re.compile(r"\bv?(\d+)\.(\d+)(?:\.(\d+))?")
_BLOBS = Path("docker/registry/v2/blobs")
#: How often the restarted registry is asked whether it answers again.
RESTART_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class GcReport:
    registry: str
    dry_run: bool
    version: str
    delete_untagged: bool
    #: Blobs garbage-collect found no manifest references (and deleted, unless dry run).
    blobs: tuple[str, ...]
    manifests: int
    #: Their disk usage on the storage, read before the collection.
    bytes_eligible: int
    #: Disk usage of the storage before minus after; None for a dry run or a
    #: storage driver other than filesystem.
    freed_bytes_measured: int | None
    started_at: datetime
    finished_at: datetime
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Setup:
    settings: RegistryGc
    path: Path
    original: bytes
    doc: dict[str, Any]
    binary: str
    version: tuple[int, int]
    version_text: str

    @property
    def storage(self) -> Path | None:
        fs = (self.doc.get("storage") or {}).get("filesystem") or {}
        root = fs.get("rootdirectory") if isinstance(fs, dict) else None
        return Path(root) if isinstance(root, str) and root else None


def run_gc(
    config: RegistryConfig,
    client: RegistryClient,
    *,
    dry_run: bool,
    clock: Clock = SYSTEM_CLOCK,
) -> GcReport:
    """Collect the registry's garbage (or, with `dry_run`, say what would go).
    `clock` times the run and the waits for the restarted registry."""
    started = clock.now()
    setup = _setup(config)
    notes: list[str] = []
    flags = ["--dry-run"] if dry_run else []
    untagged = setup.settings.delete_untagged and setup.version >= (3, 0)
    if setup.settings.delete_untagged and not untagged:
        notes.append(
            f"delete_untagged ignored: registry {setup.version_text} would delete the "
            "platform manifests of multi-arch images with it (safe from 3.0 on)"
        )
    flags += ["--delete-untagged"] if untagged else []
    if dry_run:
        sizes = _blob_sizes(setup.storage)
        output = _collect_garbage(setup, flags)
        before = after = None
    else:
        with _read_only(setup, client, clock):
            sizes = _blob_sizes(setup.storage)
            before = _disk_usage(setup.storage)
            output = _collect_garbage(setup, flags)
            after = _disk_usage(setup.storage)
    blobs, manifests = _parse_output(output)
    return GcReport(
        registry=config.url,
        dry_run=dry_run,
        version=setup.version_text,
        delete_untagged=untagged,
        blobs=blobs,
        manifests=manifests,
        bytes_eligible=sum(sizes.get(b, 0) for b in blobs),
        freed_bytes_measured=None if before is None or after is None else before - after,
        started_at=started,
        finished_at=clock.now(),
        notes=tuple(notes),
    )


# -- what to run it on ------------------------------------------------------------------


def _setup(config: RegistryConfig) -> _Setup:
    settings = config.gc
    if settings is None:
        raise UsageError(
            f"registry {config.label} has no [registry.gc] table: bilge needs its config "
            "file and how to restart it (docs/registry.md)"
        )
    path = Path(settings.config)
    backup = _backup(path)
    if backup.exists():
        raise GcError(
            f"{backup} exists: an earlier gc was interrupted; check that {path} is the "
            f"registry's own configuration (restore it from {backup} if not), then remove {backup}"
        )
    try:
        original = path.read_bytes()
    except OSError as exc:
        raise GcError(f"registry config {path}: {exc.strerror or exc}") from exc
    binary = _binary(settings)
    version_text, version = _version(binary)
    return _Setup(settings, path, original, _parse_config(path, original), binary, version,
                  version_text)  # fmt: skip


def _parse_config(path: Path, original: bytes) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(original)
    except yaml.YAMLError as exc:
        raise GcError(f"registry config {path}: not YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("storage"), dict):
        raise GcError(f"registry config {path}: no storage section; is it a registry's config?")
    return doc


def _binary(settings: RegistryGc) -> str:
    found = (
        shutil.which(settings.binary)
        if settings.binary
        else shutil.which("registry") or shutil.which("docker-registry")
    )
    if found is None:
        wanted = settings.binary or "registry or docker-registry"
        raise GcError(f"cannot find the registry binary ({wanted}); set gc.binary")
    return found


def _version(binary: str) -> tuple[str, tuple[int, int]]:
    proc = _run([binary, "--version"], timeout=30)
    match = _VERSION_RE.search(proc.stdout.strip().split()[-1] if proc.stdout.strip() else "")
    if proc.returncode != 0 or match is None:
        raise GcError(f"cannot tell the version of {binary}: {proc.stdout.strip()[:200]!r}")
    return match.group(0).lstrip("v"), (int(match.group(1)), int(match.group(2)))


# -- read-only, and back ----------------------------------------------------------------


@contextmanager
def _read_only(setup: _Setup, client: RegistryClient, clock: Clock) -> Iterator[None]:
    """The registry read-only for the duration; writable with its original
    configuration afterwards, whatever happens (SIGTERM included)."""
    backup = _backup(setup.path)
    with _terminate_as_interrupt():
        _write(backup, setup.original)
        try:
            _write(setup.path, yaml.safe_dump(_with_read_only(setup.doc)).encode())
            _restart(setup.settings, client, clock)
            _check_read_only(client)
            yield
        finally:
            _restore(setup, client, backup, clock)


def _with_read_only(doc: dict[str, Any]) -> dict[str, Any]:
    storage = dict(doc["storage"])
    maintenance = dict(storage.get("maintenance") or {})
    maintenance["readonly"] = {"enabled": True}
    storage["maintenance"] = maintenance
    return {**doc, "storage": storage}


def _restore(setup: _Setup, client: RegistryClient, backup: Path, clock: Clock) -> None:
    _write(setup.path, setup.original)
    try:
        _restart(setup.settings, client, clock)
    except GcError as exc:
        raise GcError(
            f"configuration {setup.path} restored, but the registry did not come back: {exc}"
        ) from exc
    backup.unlink(missing_ok=True)


def _check_read_only(client: RegistryClient) -> None:
    try:
        accepts = client.accepts_pushes(PROBE_REPOSITORY)
    except RegistryError as exc:
        raise GcError(f"cannot check that the registry is read-only: {exc}") from exc
    if accepts:
        raise GcError(
            "the registry still accepts pushes after the restart: does the restart command "
            "restart the registry that reads this config file? Nothing was collected"
        )


def _restart(settings: RegistryGc, client: RegistryClient, clock: Clock) -> None:
    command = settings.restart_command()
    timeout = settings.timeout.total_seconds()
    proc = _run(command, timeout=timeout)
    if proc.returncode != 0:
        said = proc.stdout.strip().splitlines()[-1:] or ["no output"]
        raise GcError(
            f"restart command {shlex.join(command)} failed ({proc.returncode}): {said[0]}"
        )
    # The restart command may return before the registry listens again.
    deadline = clock.monotonic() + timeout
    while not client.answers():
        if clock.monotonic() > deadline:
            raise GcError(f"the registry did not answer within {timeout:.0f}s of the restart")
        clock.sleep(RESTART_POLL_SECONDS)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, a CI timeout) unwinds like Ctrl-C, so the
    configuration is restored; only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _backup(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def _write(path: Path, data: bytes) -> None:
    """Write in place, keeping the inode: a config bind-mounted into a container
    sees the change (a rename would leave the container the old file)."""
    try:
        with path.open("r+b" if path.exists() else "wb") as f:
            f.write(data)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise GcError(f"cannot write {path}: {exc.strerror or exc}") from exc


# -- the collection ---------------------------------------------------------------------


def _collect_garbage(setup: _Setup, flags: list[str]) -> str:
    command = [setup.binary, "garbage-collect", *flags, str(setup.path)]
    proc = _run(command, timeout=None)
    if proc.returncode != 0:
        said = proc.stdout.strip().splitlines()[-1:] or ["no output"]
        raise GcError(f"{' '.join(command)} failed (exit {proc.returncode}): {said[0][:300]}")
    return proc.stdout


def _parse_output(output: str) -> tuple[tuple[str, ...], int]:
    blobs = tuple(dict.fromkeys(_ELIGIBLE_RE.findall(output)))
    summary = _SUMMARY_RE.search(output)
    return blobs, int(summary.group(3)) if summary else 0


def _run(command: list[str], timeout: float | None) -> subprocess.CompletedProcess[str]:
    # Output to a file, not a pipe: a restart command that leaves a daemon
    # behind would keep a pipe open, and bilge would wait for ever.
    with tempfile.TemporaryFile(mode="w+") as out:
        try:
            proc = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise GcError(f"cannot run {command[0]}: not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise GcError(f"{' '.join(command)} did not finish within {timeout:.0f}s") from exc
        out.seek(0)
        return subprocess.CompletedProcess(command, proc.returncode, out.read(), "")


# -- measuring the storage --------------------------------------------------------------


def _disk_usage(root: Path | None) -> int | None:
    """Disk blocks in use under `root`, in bytes (None: not a filesystem storage)."""
    if root is None:
        return None
    return sum(size for _, size in _walk(root))


def _blob_sizes(root: Path | None) -> dict[str, int]:
    """Blob digest -> disk usage of its data file."""
    if root is None:
        return {}
    sizes: dict[str, int] = {}
    for path, size in _walk(root / _BLOBS):
        if path.name == "data":
            sizes[f"{path.parent.parent.parent.name}:{path.parent.name}"] = size
    return sizes


def _walk(root: Path) -> Iterator[tuple[Path, int]]:
    stack = [root]
    while stack:
        directory = stack.pop()
        with suppress(FileNotFoundError), os.scandir(directory) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                yield Path(entry.path), st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
