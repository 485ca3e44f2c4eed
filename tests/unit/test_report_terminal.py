from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from bilge.model import (
    Action,
    ActionOutcome,
    AuditEntry,
    Container,
    EngineInfo,
    Filesystem,
    Image,
    Kept,
    Kind,
    Outcome,
    Plan,
    Result,
    Snapshot,
    UsageSample,
    Volume,
    VolumeContents,
)
from bilge.planner.doctor import Finding, Severity
from bilge.report import interactive
from bilge.report.terminal import (
    ACTION_ROWS,
    KEPT_ROWS,
    bar,
    gauge,
    level_style,
    render_doctor,
    render_history,
    render_outcome,
    render_plan,
    render_status,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ENGINE = EngineInfo("unix:///d.sock", "1.41", "20.10.24", "/var/lib/docker", "overlay2", True)
GB = 1_000_000_000


def console() -> Console:
    return Console(record=True, width=120, force_terminal=False)


def container(name: str, size_rw: int, log_bytes: int = 0) -> Container:
    return Container(
        id=f"c-{name}",
        name=name,
        image_id="sha256:aaa",
        image="app:1",
        state="exited",
        created=T0,
        finished=T0,
        size_rw=size_rw,
        log_bytes=log_bytes,
    )


def volume(name: str, size: int, anonymous: bool = False) -> Volume:
    return Volume(name, "local", anonymous, T0, f"/v/{name}", VolumeContents(True, size))


SNAPSHOT = Snapshot(
    taken_at=T0,
    engine=ENGINE,
    containers=(container("web", 120_000_000, 3_400_000_000), container("db", 5_000_000)),
    images=(Image("sha256:aaa", ("app:1",), (), T0, layers=("L1",), size=900_000_000),),
    layers={"L1": 900_000_000},
    volumes=(volume("couchdb-data", 9 * GB), volume("3f9a77", 2_100_000_000, anonymous=True)),
    filesystem=Filesystem("/", 20 * GB, 1_600_000_000, 1_000_000, 800_000),
)
ACTIONS = (
    Action(
        Kind.VOLUME, "3f9a77", "3f9a77", "anonymous, unreferenced for 3d", 2_100_000_000, "", ""
    ),
    Action(Kind.CONTAINER, "c-web", "web", "exited 3d ago", 3_520_000_000, "", ""),
)
KEPT = (Kept(Kind.VOLUME, "couchdb-data", "couchdb-data", "holds data: _dbs.couch", 9 * GB),)
PLAN = Plan(created_at=T0, host="unix:///d.sock", actions=ACTIONS, kept=KEPT)


def status_text(snapshot: Snapshot = SNAPSHOT, plan: Plan | None = PLAN) -> str:
    con = console()
    render_status(con, snapshot, plan)
    return con.export_text()


# -- status ------------------------------------------------------------------


def test_status_header_names_the_engine() -> None:
    first = status_text().splitlines()[0]
    for part in ("unix:///d.sock", "20.10.24", "API 1.41", "/var/lib/docker", "overlay2"):
        assert part in first


def test_status_gauges_show_bytes_and_inodes() -> None:
    lines = status_text().splitlines()
    disk = next(line for line in lines if line.startswith("bytes"))
    inodes = next(line for line in lines if line.startswith("inodes"))
    assert "18.4 GB of 20.0 GB used" in disk
    assert disk.rstrip().endswith("92%")
    assert "200,000 of 1,000,000 used" in inodes
    assert inodes.rstrip().endswith("20%")


def test_status_names_what_used_means() -> None:
    # One convention for the figure shown and the watermarks: size - available.
    text = " ".join(status_text().split())
    assert "used = size - available, as the kubelet counts it" in text
    assert "df's Use% leaves them out" in text


def test_status_table_by_kind_with_reclaimable() -> None:
    text = status_text()
    volumes = next(line for line in text.splitlines() if line.startswith("│ volumes"))
    assert "11.1 GB" in volumes
    assert "2.1 GB (1)" in volumes
    containers = next(line for line in text.splitlines() if line.startswith("│ containers"))
    assert "3.5 GB (1)" in containers


def test_status_chart_labels_each_bar_with_size_and_share() -> None:
    text = status_text()
    assert "What fills the disk" in text
    chart = text[text.index("What fills the disk") :].splitlines()
    volumes = next(line for line in chart if line.startswith("volumes"))
    assert "█" in volumes
    assert "11.1 GB" in volumes
    assert "60%" in volumes
    # Used space Docker does not account for is shown too: 18.4 - 15.5 GB.
    outside = next(line for line in chart if line.startswith("outside Docker"))
    assert "2.9 GB" in outside


def test_status_lists_largest_objects() -> None:
    text = status_text()
    largest = text[text.index("Largest objects") :]
    assert "couchdb-data" in largest
    assert "9.0 GB" in largest
    assert "log" in largest


def test_status_ends_with_the_reclaimable_line() -> None:
    last = status_text().strip().splitlines()[-1]
    assert last == ("Reclaimable under the policy: 5.6 GB (run `bilge plan` to see what and why)")


def test_status_without_filesystem_or_plan() -> None:
    text = status_text(Snapshot(taken_at=T0, engine=ENGINE), None)
    assert "Filesystem: not measured" in text
    header = next(line for line in text.splitlines() if "Kind" in line)
    assert "Reclaimable" not in header
    assert text.strip().endswith("Reclaimable under the policy: not computed")


# -- plan --------------------------------------------------------------------


def plan_text(plan: Plan, explain: bool = False) -> str:
    con = console()
    render_plan(con, plan, explain=explain)
    return con.export_text()


def test_plan_lists_actions_by_kind_with_total() -> None:
    text = plan_text(PLAN)
    assert text.index("web") < text.index("3f9a77")  # containers are removed first
    assert "exited 3d ago" in text
    assert "anonymous, unreferenced for 3d" in text
    assert "3.5 GB" in text
    assert "2 objects, 5.6 GB to free" in text
    assert "holds data" not in text
    assert "1 object kept; `bilge plan --explain` shows why." in text


def test_a_long_plan_is_shown_by_kind_and_largest_and_explain_lists_it_all() -> None:
    jobs = [
        Action(Kind.CONTAINER, f"c{n}", f"job-{n}", f"exited {n}m ago", 1000 + n, "", "")
        for n in range(120)
    ]
    actions = (*jobs, Action(Kind.VOLUME, "v", "big-volume", "anonymous", 9_000_000, "", ""))
    plan = Plan(created_at=T0, host="unix:///d.sock", actions=actions, kept=())
    short = plan_text(plan)
    assert "Count" in short
    assert "120" in short and "9.1 MB" in short  # containers counted, total size
    assert "The 10 largest" in short
    assert short.index("big-volume") < short.index("job-119")  # largest first
    assert "job-0 " not in short  # the smallest is not listed
    assert "--explain` lists every action" in short
    assert "121 objects" in short
    full = plan_text(plan, explain=True)
    assert "job-0 " in full and "job-119" in full and "Count" not in full


def test_plan_explain_shows_kept_reasons() -> None:
    text = plan_text(PLAN, explain=True)
    assert "Why kept" in text
    assert "couchdb-data" in text
    assert "holds data: _dbs.couch" in text


def test_plan_explain_groups_many_kept_by_reason() -> None:
    kept = tuple(
        Kept(Kind.IMAGE, f"i{n}", f"app:{n}", "newest of its repository", 10) for n in range(60)
    )
    kept += (Kept(Kind.CONTAINER, "c", "web", "running", 0),)
    text = plan_text(Plan(T0, "h", (), kept), explain=True)
    assert "Kept: 61 objects, by reason" in text
    row = next(line for line in text.splitlines() if "newest of its repository" in line)
    assert "60" in row
    assert "600 B" in row
    assert "app:7" not in text


def test_names_and_reasons_are_shown_literally_not_as_markup() -> None:
    action = Action(Kind.CONTAINER, "c", "db[bold]", "label [red]x[/red]", 1, "", "")
    text = plan_text(Plan(T0, "h", (action,)))
    assert "db[bold]" in text
    assert "label [red]x[/red]" in text


def test_empty_plan_says_nothing_to_remove() -> None:
    assert plan_text(Plan(T0, "h", ())).strip() == "Nothing to remove."


# -- outcome -----------------------------------------------------------------


def outcome_text(outcome: Outcome) -> str:
    con = console()
    render_outcome(con, outcome)
    return con.export_text()


def test_outcome_shows_each_result_and_measured_bytes() -> None:
    outcome = Outcome(
        plan=PLAN,
        results=(
            ActionOutcome(ACTIONS[0], Result.SKIPPED, "in use by container x"),
            ActionOutcome(ACTIONS[1], Result.REMOVED),
        ),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=3),
        freed_bytes_measured=3_810_000_000,
    )
    text = outcome_text(outcome)
    assert "in use by container x" in text
    assert "Results: removed 1, skipped 1, failed 0; took 3s." in text
    assert "Freed 3.8 GB (predicted 3.5 GB, measured on the data-root filesystem)" in text


def test_outcome_without_measurement() -> None:
    outcome = Outcome(PLAN, (ActionOutcome(ACTIONS[1], Result.REMOVED),), T0, T0)
    assert "measured: not available (data-root not local)" in outcome_text(outcome)


def test_many_removals_list_only_the_rest() -> None:
    removed = tuple(
        ActionOutcome(
            Action(Kind.CONTAINER, f"c{n}", f"job-{n}", "exited", 1, "", ""), Result.REMOVED
        )
        for n in range(30)
    )
    failed = ActionOutcome(ACTIONS[0], Result.FAILED, "engine answered 500")
    text = outcome_text(Outcome(PLAN, (*removed, failed), T0, T0))
    assert "job-3" not in text
    assert "engine answered 500" in text
    assert "... and 30 more removed (bilge history lists them)" in text
    assert "removed 30, skipped 0, failed 1" in text
    all_removed = outcome_text(Outcome(PLAN, removed, T0, T0))
    assert "All 30 objects removed (bilge history lists them)" in all_removed


# -- history -----------------------------------------------------------------


def test_history_lists_newest_first_and_draws_usage() -> None:
    entries = [
        AuditEntry(1, "h", T0, Kind.VOLUME, "v1", "old-vol", "r", 5000, Result.REMOVED, ""),
        AuditEntry(2, "h", T0 + timedelta(hours=1), Kind.IMAGE, "i", "app:1", "r", 7, None, ""),
    ]
    samples = [
        UsageSample("h", T0 + timedelta(hours=i), 100, 100 - used, 10, 5)
        for i, used in enumerate((10, 50, 95))
    ]
    con = console()
    render_history(con, entries, samples)
    text = con.export_text()
    assert text.index("app:1") < text.index("old-vol")
    assert "unfinished" in text
    assert "5.0 kB" in text
    assert "▁▅█" in text
    assert "now 95%, lowest 10%, highest 95%" in text


def test_history_when_empty() -> None:
    con = console()
    render_history(con, [], [])
    text = con.export_text()
    assert "No removals recorded." in text
    assert "No usage samples recorded." in text


def test_long_histories_keep_their_peaks() -> None:
    samples = [UsageSample("h", T0 + timedelta(minutes=i), 100, 80, 1, 1) for i in range(500)]
    samples[250] = UsageSample("h", samples[250].at, 100, 1, 1, 1)
    con = console()
    render_history(con, [], samples)
    spark = next(line for line in con.export_text().splitlines() if "now" in line)
    assert spark.count("█") == 1
    assert len(spark.split()[0]) == 60


# -- pieces ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "style"), [(0.0, "green"), (0.749, "green"), (0.75, "yellow"), (0.9, "red")]
)
def test_gauge_colours(ratio: float, style: str) -> None:
    assert level_style(ratio) == style
    assert len(gauge(ratio, 10).plain) == 10


def test_bar_shows_any_nonzero_amount() -> None:
    assert bar(0.0, 10) == ""
    assert bar(1e-9, 10) == "▏"
    assert bar(1.0, 10) == "█" * 10
    assert bar(0.55, 10) == "█████▌"


# -- what the engine names cannot do to the terminal --------------------------

#: Sets the window title, rings the bell, clears the screen, returns the cursor;
#: then a C1 CSI, a bidi override and a line break inside the name.
EVIL = "evil\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202egnp.exe\nsecond"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


def assert_harmless(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the output"
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\r\\x9b31m" in text


def evil_snapshot() -> Snapshot:
    engine = EngineInfo(f"unix:///{EVIL}.sock", "1.41", EVIL, "/var/lib/docker", EVIL, True)
    return Snapshot(
        taken_at=T0,
        engine=engine,
        containers=(container(EVIL, 120_000_000),),
        images=(),
        layers={},
        volumes=(volume(EVIL, 9 * GB),),
        filesystem=Filesystem(f"/{EVIL}", 20 * GB, 1_600_000_000, 1_000_000, 800_000),
    )


def evil_plan(actions: int = 1, kept: int = 1) -> Plan:
    return Plan(
        T0,
        EVIL,
        tuple(
            Action(Kind.NETWORK, f"n{i}", EVIL, f"label {EVIL}", i, "", "") for i in range(actions)
        ),
        tuple(Kept(Kind.VOLUME, f"v{i}", EVIL, f"holds {EVIL}", 1) for i in range(kept)),
    )


def test_control_characters_in_status_are_shown_escaped() -> None:
    assert_harmless(status_text(evil_snapshot(), evil_plan()))


@pytest.mark.parametrize(("actions", "kept"), [(1, 1), (ACTION_ROWS + 1, KEPT_ROWS + 1)])
@pytest.mark.parametrize("explain", [False, True])
def test_control_characters_in_a_plan_are_shown_escaped(
    actions: int, kept: int, explain: bool
) -> None:
    con = console()
    render_plan(con, evil_plan(actions, kept), explain=explain)
    assert_harmless(con.export_text())


def test_control_characters_in_outcome_doctor_and_history_are_shown_escaped() -> None:
    plan = evil_plan()
    outcome = Outcome(plan, (ActionOutcome(plan.actions[0], Result.FAILED, EVIL),), T0, T0)
    assert_harmless(outcome_text(outcome))
    con = console()
    finding = Finding("x", Severity.WARNING, f"network {EVIL} is odd", fix=f"docker rm {EVIL}")
    render_doctor(con, evil_snapshot(), [finding])
    assert_harmless(con.export_text())
    con = console()
    entry = AuditEntry(1, EVIL, T0, Kind.NETWORK, "n", EVIL, EVIL, 1, Result.FAILED, EVIL)
    render_history(con, [entry], [UsageSample(EVIL, T0, 100, 50, 10, 5)])
    assert_harmless(con.export_text())


def test_escaped_names_still_line_up_in_their_table() -> None:
    con = console()
    render_plan(con, evil_plan(), explain=False)
    rows = [line for line in con.export_text().splitlines() if line.startswith("│")]
    assert len({len(row) for row in rows}) == 1  # every cell measured as it is shown


# -- width off a terminal --------------------------------------------------------------

LONG_REASON = "unused for 12d 3h (unused_after 7d); " + "its tag app:1 was replaced " * 6


def printed_plan(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The plan as `bilge plan` prints it to a captured stdout (no terminal)."""
    action = Action(Kind.IMAGE, "i", "registry.example.com/team/app:1", LONG_REASON, 1, "", "")
    render_plan(interactive.out(), Plan(T0, "h", (action,)), explain=False)
    return capsys.readouterr().out.splitlines()


def test_off_a_terminal_tables_are_as_wide_as_their_content(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    lines = printed_plan(capsys)
    row = next(line for line in lines if "registry.example.com/team/app:1" in line)
    assert LONG_REASON.strip() in row  # one line, not wrapped into 80 columns
    assert max(len(line) for line in lines) > 80


def test_off_a_terminal_columns_still_sets_the_width(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    lines = printed_plan(capsys)
    assert max(len(line) for line in lines) == 100
    assert not any(LONG_REASON.strip() in line for line in lines)


def test_short_output_and_rules_keep_80_columns_off_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    con = interactive.out()
    con.rule("host")
    con.print("short")
    first, second = capsys.readouterr().out.splitlines()
    assert len(first) == 80 and second == "short"


def test_outcome_when_other_writers_outpaced_the_removals() -> None:
    """statvfs after minus before can be negative on a busy host: never "Freed -8 kB"."""
    outcome = Outcome(
        PLAN, (ActionOutcome(ACTIONS[1], Result.REMOVED),), T0, T0, freed_bytes_measured=-8_200
    )
    text = outcome_text(outcome)
    assert "Freed -" not in text
    assert "use grew by 8.2 kB meanwhile" in text
