"""The run screen's staples: j/k/G, sorting by value, full screen, wrap, copy, match counts."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from tests.fakes import Scenario
from tests.tui.test_run_screen import RunApp, make_session, until
from tui.screens.run import RunScreen
from tui.widgets.run.file_view import FileView
from tui.widgets.run.output_panes import FullOutput, TailPane
from tui.widgets.run.run_table import RunTable
from tui.widgets.vim_table import VimTable

SIZE = (160, 40)


def shown(view: FileView) -> list[str]:
    return [view.render_line(y).text.rstrip()
            for y in range(view.scrollable_content_region.height)]


async def ended_screen(pilot: object, app: RunApp) -> RunScreen:
    await until(pilot, lambda: app.session.run.finished, "the run's end")
    screen = app.screen
    assert isinstance(screen, RunScreen)
    table = screen.query_one(RunTable)
    await until(pilot, lambda: all(
        str(table.get_cell(mid, "state")).endswith(mr.state.value)
        for mid, mr in app.session.run.machines.items()), "every end drawn")
    return screen


def current(screen: RunScreen) -> str | None:
    return screen.query_one(RunTable).current_machine_id()


async def test_j_k_and_G_move_the_run_tables_cursor(tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {}, count=6)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ended_screen(pilot, app)
        await pilot.press("j", "j")
        assert current(screen) == "m002"
        await pilot.press("k")
        assert current(screen) == "m001"
        await pilot.press("G")
        assert current(screen) == "m005"
        await pilot.press("home")
        assert current(screen) == "m000"


async def test_o_sorts_by_value_stably_and_keeps_the_cursor_on_its_machine(
        tmp_path: Path) -> None:
    # By text "1000 B" sorts before "200 B"; by value it comes after. Ties keep run order.
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=b"x" * 999 + b"\n"),
        "m001": Scenario(stdout=b"y" * 199 + b"\n", exit_code=2),
        "m002": Scenario(stdout=b"z" * 199 + b"\n"),
        "m003": Scenario(stdout=b"w" * 9 + b"\n", exit_code=10),
    }, count=4)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ended_screen(pilot, app)
        table = screen.query_one(RunTable)
        await pilot.press("j")  # m001
        # o: state (Succeeded before Failed), elapsed, exit, out.
        await pilot.press("o")
        assert table.row_order.column == "state"
        assert table.machine_ids() == ["m000", "m002", "m001", "m003"]
        assert current(screen) == "m001"  # the cursor went with its machine
        await pilot.press("o", "o")
        assert table.row_order.column == "exit"
        assert table.machine_ids() == ["m000", "m002", "m001", "m003"]  # 0, 0, 2, 10
        await pilot.press("o")
        assert table.row_order.column == "out"
        assert table.machine_ids() == ["m003", "m001", "m002", "m000"]  # 10, 200, 200, 1000
        await pilot.press("O")
        assert table.machine_ids() == ["m000", "m001", "m002", "m003"]  # ties in run order
        assert "out ▼" in table.render_line(0).text
        await pilot.press("o", "o")  # machine, then the run's order
        assert table.row_order.column is None
        assert table.machine_ids() == ["m000", "m001", "m002", "m003"]
        # The rows drawn follow the order.
        await pilot.click(RunTable, offset=(table.column_left("exit") + 1, 0))
        assert table.row_order.column == "exit"
        await pilot.click(RunTable, offset=(table.column_left("exit") + 1, 0))
        assert table.row_order.descending
        assert table.machine_ids()[0] == "m003"
        assert table.render_line(1).text.split()[2] == "m003"


async def test_x_cancels_the_machine_under_the_cursor_in_a_sorted_table(
        tmp_path: Path) -> None:
    session, backend, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=b"a" * 500 + b"\n", hang=True),
        "m001": Scenario(stdout=b"b\n", hang=True),
        "m002": Scenario(stdout=b"c" * 50 + b"\n", hang=True),
    }, count=3)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: all(mr.stdout_bytes for mr in session.run.machines.values()),
                    "every machine printed")
        table = screen.query_one(RunTable)
        await pilot.press("o", "o", "o", "o")  # out, ascending: m001, m002, m000
        assert table.machine_ids() == ["m001", "m002", "m000"]
        await pilot.press("home", "j", "x")  # the cursor went with m000 to the last row
        await until(pilot, lambda: bool(backend.canceled), "a machine canceled")
        assert backend.canceled == ["m002"]


async def test_enter_opens_the_machines_error_and_output_full_screen_and_esc_returns(
        tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=b"fine\n"),
        "m001": Scenario(stdout=b"disk check\n", stderr=b"no space\n", exit_code=3,
                         error="exit status=3: /var is full " + "and then some " * 12),
    }, count=2)
    app = RunApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ended_screen(pilot, app)
        await pilot.press("j", "enter")
        full = screen.query_one(FullOutput)
        assert screen.maximized is full
        assert screen.query_one(FileView).has_focus
        error = screen.query_one("#full-error")
        await until(pilot, lambda: error.display and error.region.height > 1,
                    "the whole error shown, wrapped")
        assert "and then some" in str(error.render())
        await until(pilot, lambda: shown(screen.query_one(FileView))[0] == "disk check",
                    "the output")
        assert screen.query_one(RunTable).region.height == 0  # hidden behind it
        await pilot.press("escape")
        assert screen.maximized is None and isinstance(app.screen, RunScreen)
        await until(pilot, lambda: screen.query_one(RunTable).has_focus, "the table's focus")
        await pilot.press("z")
        assert screen.maximized is full
        await pilot.press("z")
        assert screen.maximized is None
        await pilot.press("q")
        await until(pilot, lambda: not isinstance(app.screen, RunScreen), "q went back")


async def test_w_wraps_long_lines_and_the_tail_says_it_is_the_last_4_kb(
        tmp_path: Path) -> None:
    long_line = "".join(f"{n:04d}," for n in range(60))  # 300 characters
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=f"{long_line}\nshort\n".encode()),
    }, count=1)
    app = RunApp(session)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ended_screen(pilot, app)
        view = screen.query_one(FileView)
        assert screen.query_one(TailPane).border_title == "last 4 KB · m000"
        await until(pilot, lambda: shown(view)[1] == "short", "the output, cut")
        assert len(shown(view)[0]) <= view.size.width
        await pilot.press("w")
        await until(pilot, lambda: view.wrap, "wrapping")
        await pilot.pause()
        rows = shown(view)
        short_at = rows.index("short")
        assert short_at > 2
        assert "".join(rows[:short_at]) == long_line
        await pilot.press("w")
        await until(pilot, lambda: shown(view)[1] == "short", "cut again")


async def test_y_copies_the_output_inert_by_osc52_and_to_a_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=b"fine\n"),
        "m001": Scenario(stdout=b"evil \x1b]52;c;aGk=\x07 title\n", stderr=b"warn\n"),
    }, count=2)
    app = RunApp(session)
    copied: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", copied.append)
    async with app.run_test(size=SIZE) as pilot:
        await ended_screen(pilot, app)
        await pilot.press("j", "y")
        await until(pilot, lambda: bool(copied), "the copy")
        assert "\x1b" not in copied[0] and "\x07" not in copied[0]
        assert copied[0] == "evil ␛]52;c;aGk=␇ title\n--- stderr ---\nwarn\n"
        files = list((tmp_path / "data" / "copies").iterdir())
        assert [f.read_text() for f in files] == [copied[0]]
        assert "m001" in files[0].name
        await until(pilot, lambda: any(str(files[0]) in str(n.message)
                                       for n in app._notifications), "says where")


async def test_search_says_which_match_of_how_many(tmp_path: Path) -> None:
    lines = b"".join((b"ERROR %d\n" if n % 3 == 0 else b"ok %d\n") % n for n in range(51))
    session, _, _ = make_session(tmp_path, {"m000": Scenario(stdout=lines)}, count=1)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ended_screen(pilot, app)
        full = screen.query_one(FullOutput)
        view = screen.query_one(FileView)
        await until(pilot, lambda: view.index is not None and view.index.line_count == 51,
                    "the output indexed")
        await pilot.press("tab", "home", "slash")
        await pilot.press(*"error", "enter")
        await until(pilot, lambda: "match 1 of 17" in str(full.view.border_subtitle), "match 1")
        await pilot.press("n", "n")
        await until(pilot, lambda: "match 3 of 17" in str(full.view.border_subtitle), "match 3")
        assert "line 7" in str(full.view.border_subtitle)
        await pilot.press("N")
        await until(pilot, lambda: "match 2 of 17" in str(full.view.border_subtitle), "match 2")


class Tables(App[None]):
    def compose(self) -> ComposeResult:
        table: VimTable[str] = VimTable(cursor_type="row")
        table.add_column("n")
        for n in range(20):
            table.add_row(str(n))
        yield table


async def test_every_table_on_the_vim_base_takes_j_k_g_G() -> None:
    app = Tables()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(VimTable)
        table.focus()
        await pilot.press("j", "j", "j", "k")
        assert table.cursor_row == 2
        await pilot.press("G")
        assert table.cursor_row == 19
        await pilot.press("g")
        assert table.cursor_row == 0


async def test_at_80x24_the_footer_keeps_back_and_keys_and_cuts_no_key(
        tmp_path: Path) -> None:
    from textual.widgets._footer import FooterKey

    from tui.widgets.fitting_footer import FittingFooter

    session, _, _ = make_session(tmp_path, {}, count=3)
    app = RunApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ended_screen(pilot, app)
        footer = screen.query_one(FittingFooter)

        def shown() -> list[FooterKey]:
            return [k for k in footer.query(FooterKey) if k.display]

        for keys in ((), ("enter",)):  # the table, then the output full screen
            await pilot.press(*keys)
            await until(pilot, lambda: any(k.action == "back" for k in shown())
                        and any(not k.display for k in footer.query(FooterKey)),
                        "back shown, keys that do not fit hidden")
            await pilot.pause()
            for key in shown():
                assert key.region.right <= 80, (key.description, key.region)
