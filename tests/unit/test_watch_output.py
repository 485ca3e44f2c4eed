"""What the guard writes: log lines no engine text can forge or abuse, a
"started" line in the policy's own terms, and no metrics address with --once."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from bilge.config.policy import parse_policy
from bilge.guard.loop import Guard, Log, WatchOptions
from bilge.guard.metrics import Metrics
from bilge.state.store import StateStore

EVIL = "evil\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202egnp.exe\n2026-01-01T00:00:00Z info forged"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def logged(fmt: str, **fields: object) -> str:
    out = io.StringIO()
    Log(fmt, out)("removal", "warning", **fields)
    return out.getvalue()


def test_text_log_lines_show_control_characters_escaped() -> None:
    line = logged("text", name=EVIL, reason=f"label {EVIL}", detail="ok")
    for char in RAW:
        assert char not in line
    assert line.count("\n") == 1  # one event, one line: a name cannot forge another
    assert "evil\\x1b]0;pwned\\x07" in line.replace("\\\\", "\\")
    assert line.rstrip("\n").endswith("detail=ok")


def test_text_log_values_stay_readable_and_parseable() -> None:
    assert logged("text", name="web-1", n=3).split(" ", 1)[1] == "warning removal name=web-1 n=3\n"
    line = logged("text", name='a "b" = c')
    assert line.split(" ", 3)[3] == 'name="a \\"b\\" = c"\n'


def test_json_log_lines_escape_control_characters_and_keep_the_value() -> None:
    line = logged("json", name=EVIL)
    for char in RAW:
        assert char not in line
    assert line.count("\n") == 1
    assert json.loads(line)["name"] == EVIL  # a collector gets the name exactly


POLICY = """
[watch]
high = "80%"
low = "60%"
inodes_high = "95%"
inodes_low = "85.5%"
interval = "2s"
metrics_addr = "127.0.0.1:19808"
"""


def run_once(tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[str]]:
    """A guard with no hosts, run once: its log, and the addresses it served metrics on."""
    served: list[str] = []
    monkeypatch.setattr(Metrics, "serve", lambda self, addr: served.append(addr))
    monkeypatch.delenv("BILGE_WEBHOOK_URL", raising=False)
    out = io.StringIO()
    policy = parse_policy(POLICY, "test")
    guard = Guard([], policy, StateStore(tmp_path / "state"), WatchOptions(fmt, once=True),
                  log=Log(fmt, out))  # fmt: skip
    guard.run()
    return out.getvalue(), served


def test_started_line_says_watermarks_and_interval_as_the_policy_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, _ = run_once(tmp_path, "text", monkeypatch)
    started = next(line for line in text.splitlines() if " started " in line)
    for part in ("high=80%", "low=60%", "inodes_high=95%", "inodes_low=85.5%", "interval=2s"):
        assert part in started.split(), started
    doc = json.loads(run_once(tmp_path, "json", monkeypatch)[0].splitlines()[0])
    assert doc["event"] == "started"
    assert (doc["high"], doc["low"], doc["interval"]) == ("80%", "60%", "2s")


def test_once_neither_serves_nor_announces_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, served = run_once(tmp_path, "text", monkeypatch)
    assert served == []
    assert "metrics" not in text and "19808" not in text


def watch_args(*argv: str) -> argparse.Namespace:
    """What cli.py's parser gives for `bilge watch ARGV` (every subcommand gets --json)."""
    parsed = {"json": "--json" in argv, "log_format": "text", "once": "--once" in argv}
    if "--log-format" in argv:
        parsed["log_format"] = argv[argv.index("--log-format") + 1]
    return argparse.Namespace(**parsed, metrics_addr=None)


@pytest.mark.parametrize(
    ("argv", "fmt"),
    [
        ((), "text"),
        (("--json",), "json"),
        (("--log-format", "json"), "json"),
        (("--json", "--once"), "json"),
    ],
)
def test_json_flag_means_json_logs(argv: tuple[str, ...], fmt: str) -> None:
    options = WatchOptions.from_args(watch_args(*argv))
    assert options.log_format == fmt
    assert options.once == ("--once" in argv)
