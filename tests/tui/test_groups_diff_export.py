"""g (groups of identical output), d (diff against the largest group) and e (export) on the
run screen, driven with Pilot on real runs of a scripted backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Log, RichLog, Static

from core.journal_store import Journal
from core.model import Command, CommandId, Parameter, RunState
from core.output import OutputGroup
from core.runner import RunSession
from tests.fakes import FakeBackend, Scenario, machines
from tests.tui.test_run_screen import SIZE, RunApp, make_session, until
from tui import keymap
from tui.screens.diff import DiffScreen
from tui.screens.export import ExportDialog
from tui.screens.group_members import GroupScreen
from tui.screens.groups import GroupsScreen
from tui.screens.run import RunScreen
from tui.widgets.run.group_table import GroupTable, first_line_text, members_text
from tui.widgets.run.run_table import RunTable

CANARY = "CANARY-93c1d0aa-tui-export"

TWO_OUTPUTS = {
    "m001": Scenario(stdout=b"checking\n/dev/sda1 100%\n", stderr=b"disk full\n", exit_code=1),
    "m003": Scenario(stdout=b"checking\n/dev/sda1 100%\n", stderr=b"disk full\n", exit_code=1),
}
"""Five machines: m000, m002 and m004 print the default ``ok``; m001 and m003 fail alike."""


def rows(table: DataTable[Text | str]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def log_text(widget: Log | RichLog) -> str:
    return "\n".join(str(line.text) if hasattr(line, "text") else str(line)
                     for line in widget.lines)


async def open_groups(pilot: Pilot[None], app: App[None], count: int) -> GroupsScreen:
    """g on the run screen: the groups view, once its table shows ``count`` groups."""
    await pilot.press("g")
    await until(pilot, lambda: isinstance(app.screen, GroupsScreen), "the groups view")
    screen = app.screen
    assert isinstance(screen, GroupsScreen)
    table = screen.query_one(GroupTable)
    await until(pilot, lambda: table.row_count == count, f"{count} groups drawn")
    return screen


async def finished_run(tmp_path: Path, from_history: bool = False) -> RunSession:
    journal = Journal(tmp_path / "journal.sqlite3")
    backend = FakeBackend(TWO_OUTPUTS)
    session = RunSession.plan([(m, Command(CommandId.SHELL, "check", timeout=0))
                               for m in machines(5)], lambda _m: backend, journal=journal,
                              runs_root=tmp_path)
    await session.execute()
    if from_history:
        return RunSession.recorded(journal.get_run(session.run.run_id), runs_root=tmp_path)
    return session


@pytest.mark.parametrize("from_history", [False, True], ids=["live", "history"])
async def test_g_shows_each_group_of_identical_output_with_its_count(
        tmp_path: Path, from_history: bool) -> None:
    session = await finished_run(tmp_path, from_history)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_groups(pilot, app, 2)
        table = screen.query_one(GroupTable)
        (first, second) = rows(table)
        assert first[:3] == ["1", "3", "0"] and second[:3] == ["2", "2", "1"]
        assert first[3].strip() == "✓ Succeeded 3" and second[3].strip() == "✗ Failed 2"
        assert first[4] == "m000, m002, m004" and second[4] == "m001, m003"
        assert first[5] == "baseline · ok" and second[5] == "checking"
        status = str(screen.query_one("#groups-status", Static).render())
        assert status.startswith("2 groups of identical output across 5 machines · final")

        await pilot.press("down")
        preview = screen.query_one("#group-preview", Log)
        await until(pilot, lambda: "disk full" in log_text(preview), "group 2's tail shown")
        assert log_text(preview).startswith("checking\n/dev/sda1 100%\n── stderr ──\ndisk full")

        await pilot.press("enter")
        group_screen = app.screen
        assert isinstance(group_screen, GroupScreen)
        members = group_screen.query_one("#members", DataTable)
        assert [r[1] for r in rows(members)] == ["m001", "m003"]
        output = log_text(group_screen.query_one("#group-output", Log))
        assert output.startswith("checking\n/dev/sda1 100%\n── stderr ──\ndisk full")

        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("g")  # g again: back to the machines
        assert isinstance(app.screen, RunScreen)


async def test_groups_follow_a_live_run(tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {"m001": Scenario(stdout=b"working\n", hang=True)},
                                 count=4)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sum(mr.state.terminal for mr in
                                       session.run.machines.values()) == 3, "three ended")
        table = (await open_groups(pilot, app, 2)).query_one(GroupTable)
        assert [r[:4] for r in rows(table)][1] == ["2", "1", "—", "▶ Running 1 "]
        assert "live" in str(app.screen.query_one("#groups-status", Static).render())

        session.fanout.cancel("m001")  # the run goes on behind the groups view
        await until(pilot, lambda: "Canceled" in rows(table)[1][3], "the cancel shows")
        await until(pilot, lambda: "final" in str(
            app.screen.query_one("#groups-status", Static).render()), "the run's end shows")
        assert session.run.machines["m001"].state is RunState.CANCELED


async def test_d_diffs_a_group_against_the_largest(tmp_path: Path) -> None:
    session = await finished_run(tmp_path)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        run_screen = app.screen
        await pilot.press("d")  # m000 is in the largest group: nothing to diff
        await pilot.pause()
        assert app.screen is run_screen

        run_screen.query_one(RunTable).move_cursor(row=3)  # m003
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff opens")
        diff = app.screen.query_one(RichLog)
        await until(pilot, lambda: diff.lines, "the diff is drawn")
        shown = log_text(diff).splitlines()
        assert shown[:4] == ["--- m000 stdout", "+++ m003 stdout", "@@ -1 +1,2 @@", "-ok"]
        assert "+checking" in shown and "+/dev/sda1 100%" in shown
        assert "--- m000 stderr" in shown and "+disk full" in shown
        title = str(app.screen.query_one("#diff-title", Static).render())
        assert "exit codes differ: 0 → 1" in title
        await pilot.press("escape")
        assert app.screen is run_screen

        await open_groups(pilot, app, 2)
        await pilot.press("down", "d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff opens")
        diff = app.screen.query_one(RichLog)
        await until(pilot, lambda: diff.lines, "the diff is drawn")
        assert "+disk full" in log_text(diff).splitlines()


async def test_d_says_when_a_big_output_was_only_partly_diffed(tmp_path: Path) -> None:
    big = b"".join(b"progress %07d\n" % i for i in range(100_000))  # ~1.6 MB alike
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=big + b"done\n" + big, chunks=20),
        "m001": Scenario(stdout=big + b"done\n" + big, chunks=20),
        "m002": Scenario(stdout=big + b"FAILED\n" + big, chunks=20),
    }, count=3)
    await session.execute()
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(RunTable).move_cursor(row=2)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff opens")
        diff = app.screen.query_one(RichLog)
        await until(pilot, lambda: diff.lines, "the diff is drawn")
        shown = log_text(diff).splitlines()
        assert "-done" in shown and "+FAILED" in shown
        assert "@@ -99998,7 +99998,7 @@" in shown
        notes = str(app.screen.query_one("#diff-notes", Static).render())
        assert "the first 99,997 lines" in notes and "are identical and not shown" in notes
        assert "bytes of each output were diffed from there" in notes


async def test_e_writes_the_chosen_format_to_the_chosen_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    secret = Command(CommandId.SHELL, "check", timeout=0,
                     parameters=(Parameter("TOKEN", CANARY, protected=True),))
    session, _, _ = make_session(tmp_path / "runs", TWO_OUTPUTS,
                                 commands={f"m00{i}": secret for i in range(5)})
    await session.execute()
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        path_input = dialog.query_one("#export-path", Input)
        run_id = session.run.run_id
        assert path_input.value == f"fleetrun-{run_id}.md"  # in the current directory

        await pilot.press("down", "enter")  # Markdown (the default) → JSON, chosen
        assert path_input.value == f"fleetrun-{run_id}.json"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not isinstance(app.screen, ExportDialog), "written")
        written = tmp_path / f"fleetrun-{run_id}.json"
        doc = json.loads(written.read_text())
        assert [(g["size"], g["exit_code"]) for g in doc["groups"]] == [(3, 0), (2, 1)]
        assert CANARY not in written.read_text()

        # A path typed by hand is kept; an existing file is replaced only when asked twice.
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        path_input = dialog.query_one("#export-path", Input)
        path_input.value = str(written)
        path_input.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "exists" in str(dialog.query_one("#export-message", Static).render())
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExportDialog), "replaced")
        report = written.read_text()
        assert report.startswith(f"# fleetrun run {run_id}: 2 failed of 5 machines")
        assert "### Group 2: 2 machines, exit 1 (2 Failed)" in report
        assert CANARY not in report

        await pilot.press("e", "escape")  # canceled: nothing written
        assert isinstance(app.screen, RunScreen)
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
            "fleetrun-" + run_id + ".json"]


def test_new_bindings_have_ids() -> None:
    ids = set(keymap.all_binding_ids())
    assert {"run.groups", "run.diff", "run.export", "groups.open", "groups.diff",
            "groups.back", "group.diff", "diff.back", "export.write", "export.cancel"} <= ids


def test_a_group_row_shows_what_sets_its_output_apart() -> None:
    def group(stdout: bytes, stderr: bytes = b"", size: int = 1) -> OutputGroup:
        ids = tuple(f"m{i:03d}" for i in range(size))
        return OutputGroup(0, ids, stdout, stderr, (0, stdout, stderr))

    largest = group(b"disk check\n/ 41% used\n", size=5)
    assert str(first_line_text(largest, largest)) == "disk check"
    assert str(first_line_text(group(b"disk check\n/ 97% full\n"), largest)) == "… / 97% full"
    only_stderr = first_line_text(group(b"disk check\n/ 41% used\n", b"warning\n"), largest)
    assert str(only_stderr) == "warning" and only_stderr.style == "red"
    assert str(first_line_text(group(b""), largest)) == "(no output)"


async def test_member_names_are_cut_to_fit_with_a_count(tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {}, count=12)
    await session.execute()
    (everyone,) = session.output.groups(session.run.machines.values())
    assert members_text(everyone, session.run, width=30) == "m000, m001, m002, m003 +8"
    assert members_text(everyone, session.run, width=40) == (
        "m000, m001, m002, m003, m004, m005 +6")
    assert members_text(everyone, session.run, width=100) == ", ".join(
        f"m{i:03d}" for i in range(12))
    # A first name longer than the room (an 80-column terminal): cut with an ellipsis,
    # the cell still fits, and the count says how many more.
    assert members_text(everyone, session.run, width=7) == "m0… +11"
    assert len(members_text(everyone, session.run, width=7)) <= 7
