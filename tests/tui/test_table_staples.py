"""j/k/G (and g where it is free) move the cursor in every table; history sorts as the run
table does (o, O, a header click, the arrow in the header) and fits 80 columns."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncssh
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from core.backends.host_keys import HostKeyProblem, KeyVerdict
from core.fanout import plan_run
from core.journal_store import Journal
from core.model import Command, CommandId, RunState
from tests.tui.snapshots.harness import DB1, NOW, WEB1, WEB2, ScreenApp, until
from tests.tui.snapshots.test_history import fixture_journal
from tests.tui.test_fleet_screen import FLEET
from tests.tui.test_groups_diff_export import finished_run, open_groups
from tests.tui.test_key_sheet import settled_fleet_screen
from tests.tui.test_run_screen import SIZE, RunApp
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.group_members import GroupScreen
from tui.screens.groups import GroupsScreen
from tui.screens.history import HistoryScreen
from tui.screens.host_key_review import HostKeyReview, review_items
from tui.screens.key_sheet import KeySheet
from tui.screens.run import RunScreen
from tui.widgets.compose.script_editor import ScriptEditor
from tui.widgets.history_table import HistoryTable
from tui.widgets.run.group_table import GroupTable


async def moves(pilot: Pilot[None], table: DataTable[object], *, first_key: bool = True
                ) -> None:
    """j/k step, G goes to the last row, g (when ``first_key``) back to the first."""
    last = table.row_count - 1
    assert last >= 2, "a table of at least three rows"
    table.move_cursor(row=0)
    await pilot.press("j", "j")
    await until(pilot, lambda: table.cursor_row == 2, "j twice")
    await pilot.press("k")
    await until(pilot, lambda: table.cursor_row == 1, "k")
    await pilot.press("G")
    await until(pilot, lambda: table.cursor_row == last, "G: the last row")
    if first_key:
        await pilot.press("g")
        await until(pilot, lambda: table.cursor_row == 0, "g: the first row")


async def test_history_takes_j_k_g_G(tmp_path: Path) -> None:
    journal = fixture_journal(tmp_path / "journal.sqlite")
    app = ScreenApp(lambda: HistoryScreen(journal))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        table = app.screen.query_one(HistoryTable)
        await until(pilot, lambda: table.row_count == 3 and app.focused is table, "the runs")
        await moves(pilot, table)


async def test_the_group_members_and_the_groups_take_j_k_G_and_g_still_leaves(
        tmp_path: Path) -> None:
    app = RunApp(await finished_run(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        groups = (await open_groups(pilot, app, 2)).query_one(GroupTable)
        await until(pilot, lambda: app.focused is groups, "the groups focused")
        await pilot.press("j")
        await until(pilot, lambda: groups.cursor_row == 1, "j: the second group")
        await pilot.press("k", "G")
        await until(pilot, lambda: groups.cursor_row == 1, "G: the last group")
        await pilot.press("k", "enter")  # the first group: three machines
        await until(pilot, lambda: isinstance(app.screen, GroupScreen), "a group")
        members = app.screen.query_one("#members", DataTable)
        await until(pilot, lambda: members.row_count == 3, "its machines")
        members.focus()
        await moves(pilot, members)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, GroupsScreen), "back to groups")
        await pilot.press("g")  # g is the groups view's way back, not "first group"
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "g leaves the groups")


async def test_the_host_key_review_takes_j_k_g_G(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    problems = {f"ssh:{n}": HostKeyProblem("127.0.0.1", 2200 + n, KeyVerdict.UNKNOWN,
                                           f"SHA256:{n}", f"[127.0.0.1]:{2200 + n} {key}")
                for n in range(4)}
    items = review_items(problems, {f"ssh:{n}": f"web-{n}" for n in range(4)})
    app = ScreenApp(lambda: HostKeyReview(items, tmp_path / "known_hosts"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HostKeyReview), "the review")
        table = app.screen.query_one("#keys", DataTable)
        await until(pilot, lambda: table.row_count == 4, "four keys")
        table.focus()
        await moves(pilot, table)


# -- sorting and width ---------------------------------------------------------------------


def shown(table: DataTable[object]) -> list[str]:
    return [str(key.value) for key in table.rows]


def header(table: DataTable[object]) -> list[str]:
    return [str(column.label) for column in table.columns.values()]


def sorting_journal(path: Path) -> Journal:
    """Three runs: 2 machines (1 failed) oldest, 1 machine (ok), 3 machines (2 failed)
    newest; the newest was rerun from the oldest's failures (a chained run)."""
    journal = Journal(path)
    specs = [("a-old", [RunState.SUCCEEDED, RunState.FAILED], ""),
             ("b-mid", [RunState.SUCCEEDED], ""),
             ("c-new", [RunState.FAILED, RunState.TIMED_OUT, RunState.SUCCEEDED], "a-old")]
    for index, (run_id, states, parent) in enumerate(specs):
        command = Command(CommandId.SHELL, f"echo {run_id}\n")
        run = plan_run([(m, command) for m in [WEB1, WEB2, DB1][:len(states)]],
                       fleet="sandbox", run_id=run_id, parent_run_id=parent,
                       source_group="exit 1 · failed" if parent else "")
        run.created = NOW - timedelta(hours=3 - index)
        for mr, state in zip(run.machines.values(), states, strict=True):
            mr.state, mr.exit_code = state, 0 if state is RunState.SUCCEEDED else 1
        run.ended = run.created + timedelta(seconds=5)
        journal.finish_run(run)
    return journal


async def test_history_sorts_by_o_O_and_a_header_click_with_the_arrow_in_the_header(
        tmp_path: Path) -> None:
    journal = sorting_journal(tmp_path / "journal.sqlite")
    app = ScreenApp(lambda: HistoryScreen(journal))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        table = app.screen.query_one(HistoryTable)
        await until(pilot, lambda: table.row_count == 3, "the runs")
        assert shown(table) == ["c-new", "b-mid", "a-old"]  # the journal's: newest first
        table.move_cursor(row=1)  # on b-mid: the cursor stays on its run
        await pilot.press("o")
        await until(pilot, lambda: "started ▲" in header(table), "sorted by started")
        assert shown(table) == ["a-old", "b-mid", "c-new"] and table.cursor_row == 1
        await pilot.press("O")
        await until(pilot, lambda: "started ▼" in header(table), "reversed")
        assert shown(table) == ["c-new", "b-mid", "a-old"]
        await pilot.press("o", "o")  # status (all finished: the journal's order), machines
        await until(pilot, lambda: "machines ▲" in header(table), "by machines")
        assert shown(table) == ["b-mid", "a-old", "c-new"]
        await pilot.press("o")  # states: by failures
        await until(pilot, lambda: "states ▲" in header(table), "by failures")
        assert shown(table) == ["b-mid", "a-old", "c-new"]
        await pilot.press("O")
        await until(pilot, lambda: "states ▼" in header(table), "most failures first")
        assert shown(table) == ["c-new", "a-old", "b-mid"]
        await pilot.press("o", "o")  # command, then back to the journal's order
        await until(pilot, lambda: not any("▲" in h or "▼" in h for h in header(table)),
                    "the journal's order")
        assert shown(table) == ["c-new", "b-mid", "a-old"]
        await pilot.click(HistoryTable, offset=(2, 0))  # the run column's header
        await until(pilot, lambda: "run ▲" in header(table), "sorted by a click")
        assert shown(table) == ["a-old", "b-mid", "c-new"]


async def test_at_80_columns_every_history_column_is_on_screen(tmp_path: Path) -> None:
    """The chained run's "from" (its parent's start time there) is on an 80-column screen."""
    journal = sorting_journal(tmp_path / "journal.sqlite")
    app = ScreenApp(lambda: HistoryScreen(journal))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        table = app.screen.query_one(HistoryTable)
        await until(pilot, lambda: table.row_count == 3, "the runs")
        assert [str(c.key.value) for c in table.columns.values()] == [
            "started", "status", "command", "states", "from"]
        assert table.virtual_size.width <= table.scrollable_content_region.width
        parent = journal.get_run("a-old").created.astimezone().strftime("%m-%d %H:%M")
        assert str(table.get_cell("c-new", "from")).startswith(f"↳ {parent}")


async def test_in_the_script_editor_the_footer_offers_f1_for_the_keys_and_f1_opens_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """? is typed into the script, so the footer showed no way to the key sheet there."""
    from textual.widgets._footer import FooterKey

    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "fleet.toml").write_text(FLEET)
    app = FleetrunApp([f"sandbox:{tmp_path / 'fleet.toml'}"])
    async with app.run_test(size=(80, 24)) as pilot:
        await settled_fleet_screen(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                    and isinstance(app.focused, ScriptEditor), "the composer's editor")

        def help_keys() -> list[FooterKey]:
            return [k for k in app.screen.query(FooterKey) if k.action == "help"
                    and k.display]

        await until(pilot, lambda: [(k.key, k.region.right <= 80) for k in help_keys()]
                    == [("f1", True)], "f1 Keys shown whole on the 80 columns")
        await pilot.press("question_mark")  # typed into the script, as it should be
        await until(pilot, lambda: "?" in app.screen.query_one(ScriptEditor).text, "? typed")
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, KeySheet), "the key sheet")
