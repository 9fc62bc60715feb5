"""The full-output pane: a big file read lazily, followed as it grows, searched with /."""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Input

from core.model import MachineRun, Stream
from tests.tui.test_fleet_screen import type_fast
from tests.tui.test_run_screen import (
    THREE_OUTPUTS,
    RunApp,
    ended_run_screen,
    make_session,
    until,
)
from tui import keymap
from tui.widgets.run.file_view import FileView
from tui.widgets.run.output_panes import FullOutput
from tui.widgets.run.run_table import RunTable
from tui.widgets.run.search_bar import SearchBar

SIZE = (120, 30)
LINE = 64
"""Bytes per line of the big file."""
LINES = 20 * 1024 * 1024 // LINE  # 20 MB


def numbered(number: int) -> bytes:
    return f"line {number:07d} ".ljust(LINE - 1, "-").encode() + b"\n"


def write_big(path: Path, count: int = LINES) -> None:
    with path.open("wb") as out:
        for first in range(0, count, 50_000):
            out.write(b"".join(numbered(n) for n in range(first, min(count, first + 50_000))))


class Pane(App[None]):
    """The full-output pane alone, polled as the run screen polls it."""

    def __init__(self, stdout: Path, stderr: Path | None = None) -> None:
        super().__init__()
        self.stdout, self.stderr = stdout, stderr

    def compose(self) -> ComposeResult:
        yield FullOutput()

    def on_mount(self) -> None:
        self.set_interval(0.05, self.poll)
        self.poll()
        self.query_one(FileView).focus()

    def poll(self) -> None:
        # query, not query_one: the timer may fire once more while the app shuts down.
        for pane in self.query(FullOutput):
            pane.show_files("web-01", str(self.stdout), str(self.stderr or ""))


def shown(view: FileView) -> list[str]:
    """What the pane draws, row by row (the real drawing, cut to its width)."""
    return [view.render_line(y).text.rstrip()
            for y in range(view.scrollable_content_region.height)]


def following(view: FileView) -> bool:
    return view.following


def title(app: App[None]) -> str:
    return str(app.screen.query_one(FullOutput).view.border_title)


async def test_a_20_mb_output_shows_its_end_then_its_start(tmp_path: Path) -> None:
    path = tmp_path / "big.stdout"
    write_big(path)
    app = Pane(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(FileView)
        await until(pilot, lambda: view.index is not None and not view.indexing
                    and view.index.indexed == path.stat().st_size, "the file indexed")
        await pilot.pause()
        rows = shown(view)
        assert rows[-1].startswith(f"line {LINES - 1:07d} ")  # following: the end
        assert rows[0].startswith(f"line {LINES - len(rows):07d} ")
        assert "following" in title(app)
        assert f"{LINES:,} lines" in title(app) and "20.0 MB" in title(app)

        await pilot.press("home")
        await pilot.pause()
        assert shown(view)[:2] == [numbered(0).decode().strip(), numbered(1).decode().strip()]
        assert f"paused · line 1 of {LINES:,}" in title(app)
        await pilot.press("pagedown")
        await pilot.pause()
        assert shown(view)[0].startswith(f"line {len(rows):07d} ")
        await pilot.press("G")
        await pilot.pause()
        assert shown(view)[-1].startswith(f"line {LINES - 1:07d} ")
        assert "following" in title(app)


async def test_slash_finds_a_line_deep_in_the_file_and_n_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "big.stdout"
    write_big(path)
    with path.open("ab") as out:  # a second match near the end, a third at the very end
        out.write(b"here is the NEEDLE again\nneedle last\n")
    target = LINES // 3
    app = Pane(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(FileView)
        await until(pilot, lambda: view.index is not None and not view.indexing
                    and view.index.indexed == path.stat().st_size, "the file indexed")
        await pilot.press("home")
        await pilot.press("slash")
        bar = app.query_one(SearchBar)
        assert bar.has_class("-open")
        await pilot.press(*f"LINE {target:07d}")
        await pilot.press("enter")
        await until(pilot, lambda: view.match_line == target, "the match found")
        await pilot.pause()
        assert not bar.has_class("-open") and view.has_focus
        rows = shown(view)
        row = next(y for y, text in enumerate(rows) if text.startswith(f"line {target:07d} "))
        drawn = list(view.render_line(row))
        match_bg = view.get_component_rich_style("file-view--match").bgcolor
        assert [s.text for s in drawn if s.style and s.style.bgcolor == match_bg] == [
            f"line {target:07d}"]  # the match is highlighted
        current_bg = view.get_component_rich_style("file-view--current").bgcolor
        assert drawn[1].text.startswith(" ---") and drawn[1].style is not None
        assert drawn[1].style.bgcolor == current_bg != view.rich_style.bgcolor  # its line too
        other = next(iter(view.render_line(row + 1)))
        assert other.text.startswith("line") and other.style is not None
        assert other.style.bgcolor == view.rich_style.bgcolor
        assert f"line {target + 1:,}" in str(app.query_one(FullOutput).view.border_subtitle)
        assert "paused" in title(app)

        await pilot.press("slash")
        await pilot.press("ctrl+a", "ctrl+k", *"needle", "enter")
        await until(pilot, lambda: view.match_line == LINES, "the first needle")
        await pilot.press("n")
        await until(pilot, lambda: view.match_line == LINES + 1, "the next needle")
        await pilot.press("n")  # past the end: from the top again, and no other needle
        await until(pilot, lambda: "(wrapped)" in view.search_status, "the search wrapped")
        assert view.match_line == LINES
        await pilot.press("N")
        await until(pilot, lambda: view.match_line == LINES + 1, "the previous needle")

        await pilot.press("slash")
        await pilot.press("ctrl+a", "ctrl+k", *"zzz", "enter")
        await until(pilot, lambda: "no match" in view.search_status, "nothing found")
        assert any("Nothing matches" in str(n.message) for n in app._notifications)

        await pilot.press("slash", "x", "escape")  # esc closes the bar without searching
        assert not bar.has_class("-open") and view.has_focus


async def test_follow_shows_appended_lines_and_pauses_when_scrolled_up(tmp_path: Path) -> None:
    path = tmp_path / "grow.stdout"
    path.write_bytes(b"".join(numbered(n) for n in range(100)))
    app = Pane(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(FileView)
        await until(pilot, lambda: shown(view)[-1].startswith("line 0000099"), "the end")

        with path.open("ab") as out:
            out.write(numbered(100) + b"half a li")
        await until(pilot, lambda: shown(view)[-1] == "half a li", "the appended lines")
        assert shown(view)[-2].startswith("line 0000100")
        with path.open("ab") as out:
            out.write(b"ne\n")
        await until(pilot, lambda: shown(view)[-1] == "half a line", "the line completed")

        await pilot.press("up")
        await pilot.pause()
        assert not following(view) and "paused" in title(app)
        frozen = shown(view)
        with path.open("ab") as out:
            out.write(b"".join(numbered(n) for n in range(200, 210)))
        await until(pilot, lambda: "of 112" in title(app), "the new lines counted")
        assert shown(view) == frozen  # paused: nothing moves

        await pilot.press("f")
        await pilot.pause()
        assert following(view) and "following" in title(app)
        assert shown(view)[-1].startswith("line 0000209")
        with path.open("ab") as out:
            out.write(numbered(210))
        await until(pilot, lambda: shown(view)[-1].startswith("line 0000210"), "following")
        await pilot.press("slash")  # the search bar takes a row: the end stays in view
        await until(pilot, lambda: shown(view)[-1].startswith("line 0000210"), "still the end")
        await pilot.press("escape")
        assert following(view) and view.has_focus


async def test_s_shows_stderr_and_odd_bytes_are_drawn_safely(tmp_path: Path) -> None:
    out, err = tmp_path / "m.stdout", tmp_path / "m.stderr"
    out.write_bytes(b"\x1b]0;evil title\x07\x1b[31mred\x1b[0m text\tcol\r\n\xff bad\n"
                    + b"wide " * 100 + b"\n")
    err.write_bytes(b"an error\n")
    app = Pane(out, err)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(FileView)
        await until(pilot, lambda: view.index is not None and view.index.line_count == 3,
                    "stdout read")
        await pilot.pause()
        rows = shown(view)
        assert rows[:2] == ["␛]0;evil title␇␛[31mred␛[0m text        col", "\ufffd bad"]
        assert rows[2].endswith("\u203a")  # a line that goes on past the edge says so
        await pilot.press("right")  # long lines scroll sideways, as in less
        width = view.scrollable_content_region.width
        await until(pilot, lambda: view.h_offset > 0 and shown(view)[0] == "",
                    "the view scrolled sideways")  # a short line scrolled out of sight
        assert shown(view)[2] == ("wide " * 100)[view.h_offset:][:width - 1] + "\u203a"
        # The other stream is indexed in a thread: wait for it, however busy the machine.
        await pilot.press("s")
        await until(pilot, lambda: shown(view)[:1] == ["an error"]
                    and title(app).startswith("stderr · web-01"), "stderr shown")
        await pilot.press("s")
        await until(pilot, lambda: title(app).startswith("stdout · web-01"), "stdout again")


async def test_run_screen_full_pane_follows_the_machine_under_the_cursor(
        tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, THREE_OUTPUTS, count=3)
    app = RunApp(session)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await ended_run_screen(pilot, app)
        view = screen.query_one(FileView)
        await until(pilot, lambda: shown(view)[0] == "first machine", "m000's file")

        await pilot.press("down")
        await until(pilot, lambda: shown(view)[:2] == ["line one", "line two"], "m001's file")
        machine: MachineRun = session.run.machines["m001"]
        assert view.paths[Stream.STDOUT] == machine.stdout_file
        await pilot.press("tab")  # from the machine table straight to the full output
        assert view.has_focus
        await pilot.press("s")
        await until(pilot, lambda: shown(view)[0] == "a warning", "m001's stderr")

        screen.query_one(RunTable).move_cursor(row=2)  # printed nothing: no file at all
        await until(pilot, lambda: view.name_shown == session.run.machines["m002"]
                    .machine.name, "m002 shown")
        assert view.stream is Stream.STDOUT and view.following
        assert not Path(view.paths[Stream.STDOUT]).exists()
        assert shown(view)[0] == "" and "0 lines" in title(app)


def test_output_bindings_have_ids_and_are_listed() -> None:
    ids = keymap.all_binding_ids()
    assert {"output.search", "output.next_match", "output.previous_match", "output.follow",
            "output.top", "output.bottom", "output.stream", "output.search_close",
            "output.search_regex"} <= set(ids)
    assert len(ids) == len(set(ids))


async def test_a_poll_while_the_pane_is_being_torn_down_does_nothing(tmp_path: Path) -> None:
    # At shutdown Textual removes the children before the pane; a timer may tick between.
    path = tmp_path / "out.stdout"
    path.write_bytes(numbered(1))
    app = Pane(path)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(FullOutput)
        await app.query_one(FileView).remove()
        await pilot.pause()
        pane.show_files("web-01", str(path), "")  # raised NoMatches before
        assert not pane.query(FileView)


async def test_keys_typed_right_after_slash_go_into_the_search(tmp_path: Path) -> None:
    path = tmp_path / "big.stdout"
    write_big(path)
    app = Pane(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(FileView)
        await until(pilot, lambda: view.index is not None and not view.indexing, "indexed")
        following = view.following
        field = app.query_one(SearchBar).query_one(Input)
        type_fast(app, "/fsn/j")  # on the view: f follows, s switches stream, n and j move
        await until(pilot, lambda: field.value == "fsn/j", "the keys in the search box")
        assert view.following == following and view.stream is Stream.STDOUT
