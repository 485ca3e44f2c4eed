"""`bilge report --html`: one self-contained HTML file that shows what fills a
host's disk (a treemap), its usage history, the plan, what is kept and why, the
doctor's findings and the recent removals, for one host or a fleet.

The page loads nothing: its style, script and charts are inline, and a
Content-Security-Policy with a fresh nonce per file forbids anything else (a
name that smuggled markup in could not load or run a thing). Every value is
escaped by Jinja2's autoescape, and the page's script builds the treemap and
tables from JSON with `textContent` only (safety rule 9).

    sections = [section("host-1", host, gather(session))]
    html = render(sections, generated_at)

`build` gathers and shapes one host, `fleet` loops over the hosts, `objects`
says what each box is, `treemap` lays the boxes out, `chart` draws the history.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from bilge import __version__
from bilge.config.units import format_size
from bilge.report.html.build import Section
from bilge.report.text import printable

__all__ = ["render", "write_file"]


def render(sections: Sequence[Section], generated_at: datetime, *, nonce: str = "") -> str:
    """The whole page for these hosts; a fresh nonce unless one is given (tests)."""
    env = _environment()
    hosts = [s.host for s in sections]
    title = hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts"
    return env.get_template("report.html.j2").render(
        sections=sections,
        fleet=sorted(sections, key=lambda s: s.rank),
        title=title,
        generated=_utc(generated_at),
        version=__version__,
        nonce=nonce or secrets.token_urlsafe(18),
        css=_asset("report.css"),
        js=_asset("report.js"),
    )


def write_file(html: str, path: Path) -> None:
    """Write the page whole or not at all (a new file renamed over the old one):
    a reader, a web server or a person refreshing it, never sees half a page."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bilge.report.html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    # Compact JSON: a host with 10,000 objects must stay well under a megabyte.
    # (tojson still escapes <, >, & and ' so that no name can close the script.)
    env.policies["json.dumps_kwargs"] = {"separators": (",", ":"), "ensure_ascii": False}
    env.globals["size"] = format_size
    env.globals["percent"] = _percent
    return env


@cache
def _asset(name: str) -> Markup:
    """The page's own style sheet or script (package data, not from any peer):
    inlined as it is, since escaping would break it."""
    text = resources.files("bilge.report.html").joinpath("templates", name).read_text("utf-8")
    if "</" in text:
        raise ValueError(f"{name} must not contain '</': it would end its element")
    return Markup(text)


def _shown(value: object) -> object:
    """Every value the template shows: text from engines has its control and bidi
    characters shown as escapes (as on a terminal), so that no name reads backwards;
    autoescape then makes it text."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


def _percent(ratio: float) -> str:
    return f"{ratio:.0%}" if ratio >= 0.01 or ratio == 0 else f"{ratio:.1%}"


def _utc(at: datetime) -> str:
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
