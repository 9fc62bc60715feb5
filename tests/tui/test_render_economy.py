"""What keeps the run screen's frames cheap: nothing repainted that did not change."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.dom import DOMNode
from textual.widgets import Log, Static

from tui.widgets.border_titles import set_titles
from tui.widgets.run.output_panes import TailPane


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("pane", id="pane")
        yield TailPane(id="tail")
        yield Log(id="log")


async def test_the_same_border_title_again_repaints_nothing() -> None:
    app = PaneApp()
    async with app.run_test() as pilot:
        pane = app.query_one("#pane", Static)
        set_titles(pane, "last 4 KB · web-01", "following")
        await pilot.pause()
        repaints: list[object] = []
        refresh = pane.refresh

        def counting(*args: object, **kwargs: object) -> object:
            repaints.append(args)
            return refresh(*args, **kwargs)  # type: ignore[arg-type]

        pane.refresh = counting  # type: ignore[method-assign]
        for _ in range(10):  # ten ticks of the run screen's redraw, nothing new
            set_titles(pane, "last 4 KB · web-01", "following")
        assert repaints == []
        set_titles(pane, "last 4 KB · web-02")
        assert len(repaints) == 1
        assert str(pane.border_title) == "last 4 KB · web-02"
        assert str(pane.border_subtitle) == "following"


async def test_the_tail_pane_is_styled_as_a_log_and_its_lines_as_always() -> None:
    """The tail works its style out once per render pass, and is still a Log to the CSS
    (Textual takes a widget's CSS from its first base that is a DOM node)."""
    app = PaneApp()
    async with app.run_test() as pilot:
        tail, log = app.query_one(TailPane), app.query_one("#log", Log)
        tail.write_line("hello")
        log.write_line("hello")
        app.set_focus(None)  # the tail never takes focus; a focused Log is tinted
        await pilot.pause()
        assert tail.styles.background == log.styles.background
        assert DOMNode.rich_style.fget(tail) == DOMNode.rich_style.fget(log)  # type: ignore[attr-defined]
        strip = tail.render_lines(tail.region.reset_offset)[0]
        assert strip.text.startswith("hello")
        assert strip == log.render_lines(log.region.reset_offset)[0]
