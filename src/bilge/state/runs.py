"""Which run wrote an audit entry, and whether that run is still going.

An attempt is written before its removal and its outcome after: a bilge that
is killed in between leaves the attempt open. The next run settles it, but only
once the run that made it is dead: two applies at once on one state dir must
not settle each other's attempts. A run is named by its host name, process id
and the process's start time (so that a reused pid is not taken for it).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

#: A run on another machine (a state dir shared over the network, or a container
#: with its own host name) cannot be asked: its attempts are settled once this old.
FOREIGN_RUN_GRACE = timedelta(days=1)


def current_run() -> str:
    """This process's run: "hostname:pid:start"."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def run_alive(run: str | None, started: datetime, now: datetime) -> bool:
    """Whether the run that wrote an attempt at `started` may still be going."""
    if not run:
        return False  # written before runs were recorded: long finished
    host, pid_text, start = _parts(run)
    if host != socket.gethostname() or not pid_text.isdigit():
        return now - started < FOREIGN_RUN_GRACE
    return _start_time(int(pid_text)) == start != ""


def _parts(run: str) -> tuple[str, str, str]:
    head, _, start = run.rpartition(":")
    host, _, pid = head.rpartition(":")
    return host, pid, start


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if it is not running).
    The command name in /proc/PID/stat is in parentheses and may hold spaces."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    fields = stat.rpartition(b")")[2].split()
    return fields[19].decode() if len(fields) > 19 else ""
