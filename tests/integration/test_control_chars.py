"""Safety rule 9 against the real engine: Docker takes control characters in a
network's name and in labels; none of them may reach the terminal raw."""

from __future__ import annotations

from pathlib import Path

from tests.integration.bilge_cli import ZERO_GRACE, make_bilge
from tests.integration.helpers import Sandbox, run_container

#: Sets the window title, rings the bell, clears the screen, returns the cursor,
#: and a C1 CSI and a bidi override after it.
EVIL = "evil\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202egnp"
ESCAPED = "evil\\x1b]0;pwned\\x07\\x1b[2J\\r\\x9b31m\\u202egnp"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")
#: A label key with an ESC, made the keep label: kept, and the reason names it.
KEEP = "keep\x1b[5m"


def test_control_characters_from_the_engine_are_escaped_in_plan_and_status(
    engine: Sandbox, tmp_path: Path
) -> None:
    with engine.api() as api:
        api.create_network(EVIL, driver="bridge", internal=True)
        assert EVIL in {n["Name"] for n in api.networks()}  # the engine kept it as given
    run_container(engine, name="kept-job", labels={KEEP: EVIL})
    policy = ZERO_GRACE.replace("[containers]", 'keep_label = "keep\\u001b[5m"\n[containers]')
    bilge = make_bilge(engine, tmp_path, policy)

    plan = bilge("plan", "--explain")
    assert plan.code == 0, plan.err
    assert ESCAPED in plan.out  # the network, shown and planned for removal
    assert "labelled keep\\x1b[5m" in plan.out  # the container kept by its label
    status = bilge("status")
    assert status.code == 0, status.err
    for out in (plan.out, status.out, plan.err, status.err):
        for char in RAW:
            assert char not in out, f"{char!r} reached the terminal"
