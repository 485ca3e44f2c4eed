"""The report's hosts, one after the other: each read by a session of its own,
and a host that fails is a section with its error, never the end of the others.

A module of its own so that the loop can be swapped for a parallel one (the
fleet runner) without touching how a section is built or rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bilge.errors import BilgeError
from bilge.report.html.build import Section, failed_section, gather, section
from bilge.report.text import printable

if TYPE_CHECKING:
    from bilge.session import Session

#: Opens a host's session, and is told when the host is done (to close it).
OpenSession = Callable[[str], "Session"]
CloseSession = Callable[["Session"], None]


def sections(
    hosts: Sequence[str], open_session: OpenSession, close_session: CloseSession
) -> list[Section]:
    """One section per host, in the order given; `open_session(host)` makes its
    session and `close_session` is called on it whatever happened."""
    out: list[Section] = []
    for n, host in enumerate(hosts, 1):
        anchor = f"host-{n}"
        try:
            session = open_session(host)
        except BilgeError as exc:
            out.append(failed_section(anchor, host, printable(str(exc))))
            continue
        try:
            out.append(section(anchor, host, gather(session)))
        except BilgeError as exc:
            out.append(failed_section(anchor, host, printable(str(exc))))
        finally:
            close_session(session)
    return out
