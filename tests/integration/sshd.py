"""A private sshd on 127.0.0.1 for ssh:// engine tests (never the system's).

Debian's openssh-server runs here with a configuration, host key, authorized
key and pid file of its own, on a free port. The key's forced command is a
wrapper that points DOCKER_HOST at a private engine and runs what the client
asked for (`docker system dial-stdio`, or `docker -H unix://... system
dial-stdio` for `?socket=`), with Debian's docker client first on PATH. A
second key's wrapper cuts every connection after a few kilobytes: an ssh host
that drops in the middle of a run. The client side is `ssh_command`, for
BILGE_SSH_COMMAND.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
#: Bytes a "dropping" connection passes from the engine before it is cut: the
#: version and ping answers get through, the first listing does not.
DROP_AFTER = 6000


@dataclass(frozen=True)
class Sshd:
    port: int
    #: BILGE_SSH_COMMAND for the key whose connections reach the engine.
    ssh_command: str
    #: BILGE_SSH_COMMAND for the key whose connections are cut mid-answer.
    dropping_command: str

    def address(self, socket_path: str | None = None) -> str:
        query = f"?socket={socket_path}" if socket_path else ""
        return f"ssh://root@127.0.0.1:{self.port}{query}"


def available() -> bool:
    return Path(SSHD).is_file() and shutil.which("ssh") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def _wrapper(path: Path, docker_host: str, run: str = 'exec sh -c "$SSH_ORIGINAL_COMMAND"') -> None:
    """The forced command: the client's docker command against the private engine."""
    path.write_text(
        "#!/bin/sh\n"
        "export PATH=/usr/bin:/bin\n"
        f"export DOCKER_HOST={shlex.quote(docker_host)}\n"
        f"{run}\n"
    )
    path.chmod(0o755)


def _config(d: Path, port: int) -> Path:
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nAllowTcpForwarding no\n"
        "X11Forwarding no\nPrintMotd no\nLogLevel ERROR\n"
    )
    return config


def _client(d: Path, key: Path, port: int, host_key: str) -> str:
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key}\n")
    options = ["-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes",
               "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]  # fmt: skip
    return shlex.join(["ssh", *options])


@contextlib.contextmanager
def private_sshd(directory: Path, docker_host: str) -> Iterator[Sshd]:
    """An sshd whose keys reach `docker_host` (a unix:// address); stopped at the end."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    host_key = _keygen(d / "host_key").rsplit(" ", 1)[0]
    good, dropping = _keygen(d / "client_key"), _keygen(d / "dropping_key")
    _wrapper(d / "dial", docker_host)
    # Once dd has passed its bytes (one at a time: unbuffered), the session's whole
    # process group goes, docker too: ssh then closes the connection mid-answer.
    cut = f"dd bs=1 count={DROP_AFTER} status=none; kill -KILL 0"
    _wrapper(d / "dial-dropping", docker_host, f'sh -c "$SSH_ORIGINAL_COMMAND" | {{ {cut}; }}')
    forced = "no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding"
    (d / "authorized_keys").write_text(
        f'command="{d / "dial"}",{forced} {good}\n'
        f'command="{d / "dial-dropping"}",{forced} {dropping}\n'
    )
    port = _free_port()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    argv = [SSHD, "-D", "-e", "-f", str(_config(d, port))]
    with (d / "sshd.log").open("w") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_listening(port, proc, d)
        yield Sshd(port, _client(d, d / "client_key", port, host_key),
                   _client(d, d / "dropping_key", port, host_key))  # fmt: skip
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], d: Path) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(d / 'sshd.log').read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on port {port}")


def ssh_env(command: str) -> dict[str, str]:
    """The environment of a bilge that dials ssh:// with `command`."""
    return {**os.environ, "BILGE_SSH_COMMAND": command}
