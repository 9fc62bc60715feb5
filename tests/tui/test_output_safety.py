"""What the app draws of a machine's output: protected values masked, escape sequences
shown and never sent to the terminal as they came (tail, full output, groups, diff)."""

from __future__ import annotations

import re
from pathlib import Path

from textual.app import App

from core.model import Command, CommandId, Parameter
from tests.fakes import Scenario
from tests.tui.test_groups_diff_export import open_groups
from tests.tui.test_run_screen import SIZE, RunApp, make_session, until
from tui.screens.diff import DiffScreen
from tui.screens.group_members import GroupScreen
from tui.widgets.run.file_view import FileView

SECRET = "Tui-canary-3f9a51c0-protected"
COMMAND = Command(CommandId.SHELL, "check", timeout=0,
                  parameters=(Parameter("TOKEN", SECRET, protected=True),))
PRINTED = (b"token " + SECRET.encode() + b" used\n"
           b"\xc2\x9b c1 \xe2\x80\xae bidi title \x1b]0;pwned\x07 clip \x1b]52;c;ZXZpbA==\x07 "
           b"clear \x1b[2J\x1b[H red \x1b[31mred\x1b[0m\n")
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FRAGMENTS = (SECRET, SECRET[:12], SECRET[12:])


def drawn(app: App[None]) -> str:
    """Everything the screen would send to the terminal now, as text, one row a line.

    The compositor's strips are what Textual's driver writes (plus its own cursor moves
    and colours, which are not in a segment's text).
    """
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def assert_safe(app: App[None], where: str) -> str:
    text = drawn(app)
    unsafe = [UNSAFE.findall(row) for row in text.split("\n") if UNSAFE.search(row)]
    assert not unsafe, (where, unsafe, text)
    assert not [f for f in FRAGMENTS if f in text], (where, text)
    return text


async def test_tail_full_output_groups_and_diff_draw_output_inert_and_masked(
        tmp_path: Path) -> None:
    # m000 prints its secret and escape sequences a byte at a time; the others print "ok".
    session, _, _ = make_session(
        tmp_path, {"m000": Scenario(stdout=PRINTED, chunks=len(PRINTED), exit_code=1)},
        count=3, commands={f"m00{i}": COMMAND for i in range(3)})
    await session.execute()
    stored = Path(session.run.machines["m000"].stdout_file).read_bytes()
    assert stored == PRINTED.replace(SECRET.encode(), b"***")  # escapes kept as they came
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        view = app.screen.query_one(FileView)
        await until(pilot, lambda: view.index is not None and view.index.line_count == 2,
                    "the full output read")
        await pilot.pause()
        text = assert_safe(app, "run screen: tail and full output")
        assert "token *** used" in text and "␛]0;pwned␇" in text and "<U+202E>" in text
        assert "last 4 KB · m000 · 1 masked" in text

        await open_groups(pilot, app, 2)
        await pilot.press("down")
        await pilot.pause()
        text = assert_safe(app, "groups")
        assert "␛]52;c;ZXZpbA==␇" in text

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GroupScreen), "the group opened")
        await pilot.pause()
        text = assert_safe(app, "one group's output")
        assert "token *** used" in text

        await pilot.press("escape", "d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff opened")
        await until(pilot, lambda: "+token *** used" in drawn(app), "the diff drawn")
        assert_safe(app, "diff")
