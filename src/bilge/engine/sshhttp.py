"""The engine behind ssh://, through the system's ssh client and `docker system dial-stdio`.

This is what the docker CLI does for ssh:// hosts: each connection is an `ssh`
process running `docker system dial-stdio` on the remote side, which joins its
standard input and output to the remote engine's socket. The user's own ssh
setup (keys, agent, `~/.ssh/config`, jump hosts, known hosts) applies unchanged,
and bilge needs no ssh library (docker-py's needs paramiko). The connection's
local end is one end of a socketpair whose other end is ssh's stdin and stdout,
so the standard library's HTTP client (stdhttp.py) speaks over it with the same
deadlines, size limits and keep-alive as on a local socket.

Addresses: `ssh://[user@]host[:port]`, and `?socket=/path` for an engine that
is not the remote user's default (e.g. rootless Docker); `BILGE_SSH_COMMAND`
replaces `ssh` (with options, split like a shell), as GIT_SSH_COMMAND does.
ssh runs with BatchMode: it never asks for a password on bilge's terminal.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from bilge.engine.transport import LeanHTTP
from bilge.errors import EngineUnreachable


def ssh_argv(host: str, env: Mapping[str, str], connect_timeout: float) -> list[str]:
    """The command that joins a connection to the engine behind an ssh:// address."""
    parts = urlsplit(host)
    try:
        port = parts.port
    except ValueError as exc:
        raise EngineUnreachable(f"engine address {host}: {exc}") from exc
    if parts.scheme != "ssh" or not parts.hostname:
        raise EngineUnreachable(f"engine address {host}: not ssh://[user@]host[:port]")
    sockets = parse_qs(parts.query).get("socket", [])
    command = shlex.split(env.get("BILGE_SSH_COMMAND") or "ssh")
    argv = [*command, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(connect_timeout))}"]
    if parts.username:
        argv += ["-l", parts.username]
    if port:
        argv += ["-p", str(port)]
    remote = ["docker"]
    if sockets:
        remote += ["-H", f"unix://{sockets[-1]}"]
    remote += ["system", "dial-stdio"]
    return [*argv, "--", parts.hostname, shlex.join(remote)]


class SshDialer:
    """Opens connections to the engine, each an ssh process; ends them all on close."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._lock = threading.Lock()
        self._running: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        self.last_error = ""

    def __call__(self, deadline: float | None) -> socket.socket:
        ours, theirs = socket.socketpair()
        # Kept open while ssh runs: read when its connection fails (`why`).
        errors = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=errors,
                start_new_session=True,  # a Ctrl-C aimed at bilge is bilge's to handle
            )
        except OSError as exc:
            ours.close()
            errors.close()
            raise EngineUnreachable(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from exc
        finally:
            theirs.close()
        with self._lock:
            self._reap()
            self._running.append((proc, errors))
        return ours

    def _reap(self) -> None:
        """Forget the ssh processes that ended, keeping what the last one said."""
        still = []
        for proc, errors in self._running:
            if proc.poll() is None:
                still.append((proc, errors))
            else:
                self._note(errors)
        self._running = still

    def _note(self, errors: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            errors.seek(0)
            lines = errors.read(8192).decode(errors="replace").strip().splitlines()
            if lines:
                self.last_error = lines[-1].strip()
        errors.close()

    def why(self) -> str:
        """What ssh said when a connection failed (it ends just after saying it)."""
        with self._lock:
            for proc, _ in self._running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=1)
            self._reap()
            return self.last_error

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, []
        for proc, errors in running:
            if proc.poll() is None:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            errors.close()


class SshHTTP(LeanHTTP):
    """The engine behind an ssh:// address (module docstring)."""

    def __init__(self, host: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        timeout = float(kwargs.get("timeout", 60.0))
        argv = ssh_argv(host, os.environ if env is None else env, timeout)
        self.dialer = SshDialer(argv)
        super().__init__(host, self.dialer, **kwargs)

    def _unreachable(self, exc: BaseException) -> EngineUnreachable:
        said = self.dialer.why()
        base = super()._unreachable(exc)
        return EngineUnreachable(f"{base} (ssh: {said})") if said else base

    def close(self) -> None:
        super().close()
        self.dialer.close()
