"""The output of the machine under the cursor: its 4 KB tail beside its full output.

The full output is a :class:`~tui.widgets.run.file_view.FileView` over the machine's
stdout file (``s`` switches to stderr): it reads only the lines on screen, follows the
file as it grows and searches it with ``/``, so a 100 MB output costs no more than a small
one. The screen calls :meth:`OutputPanes.show` on every redraw; that costs a ``stat`` of
the file and the reading of what it gained, never the whole file.
"""

from __future__ import annotations

import textwrap

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input, Log, Static

from core.file_search import Matcher, SearchTextError
from core.model import MachineRun, Stream
from core.output import OutputStore
from core.terminal_text import inert, inert_bytes
from tui.widgets.border_titles import set_titles
from tui.widgets.run.file_view import FileView
from tui.widgets.run.search_bar import SearchBar
from tui.widgets.style_per_pass import StylePerPass


class TailPane(StylePerPass, Log):
    """The machine's last 4 KB of stdout, then of stderr (as the instance view reports).

    A machine with no output at all but an error (a script that never started, a refused
    run) shows the error here: the state column has room for a word, not the reason.
    """

    # Tab goes from the machine table straight to the full output: this pane is short.
    can_focus = False

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    """As Textual's, without a layout of the whole screen at each write (this pane's size
    does not depend on what it holds)."""

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: tuple[bytes, bytes, str, int] | None = None

    def show(self, stdout: bytes, stderr: bytes, error: str = "") -> None:
        # Log never wraps, and an error is one long line: wrapped here, again on a resize.
        width = max(20, self.scrollable_content_region.width - 1) if error else 0
        if self._shown == (stdout, stderr, error, width):
            return
        self._shown = (stdout, stderr, error, width)
        self.clear()
        if not stdout and not stderr and error:
            wrapped = textwrap.fill(inert(error), width, break_on_hyphens=False)
            self.write("── error ──\n" + wrapped)
            return
        # Shown, never obeyed: Log replaces only some control characters, not ESC.
        self.write(inert_bytes(stdout))
        if stderr:
            if stdout and not stdout.endswith(b"\n"):
                self.write("\n")
            self.write("── stderr ──\n" + inert_bytes(stderr))


class FullOutput(Vertical):
    """The full-output pane: the file view, its title, and its search bar; full screen
    (``z``, or ``enter`` on a machine), the machine's whole error above its output."""

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    FullOutput {
        width: 1fr;
        /* The border (with the status as its title) is the file view's own, not this
           container's: retitled at every key, a container is repainted whole, under its
           children too (a sixth of a frame while keys move between machines). */
        & > FileView { border: round $primary-darken-2; border-subtitle-align: left; }
        & > FileView:focus { border: round $accent; }
        & > #full-error {
            display: none; height: auto; max-height: 10; padding: 0 1;
            color: $text-error; background: $error-muted;
        }
        &.-maximized > #full-error.-has-error { display: block; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="full-error", markup=False)
        yield FileView(id="full-view")
        yield SearchBar(id="full-search")

    def on_mount(self) -> None:
        self.view.search_asked = self._ask

    @property
    def view(self) -> FileView:
        return self.query_one(FileView)

    def show(self, mr: MachineRun | None) -> None:
        """Show ``mr``'s output files (and keep up with them); None shows nothing."""
        error = inert(mr.error) if mr is not None else ""
        for line in self.query("#full-error").results(Static):
            if str(line.content) != error:
                line.update(error)
                line.set_class(bool(error), "-has-error")
        if mr is None:
            self.show_files("", "", "")
        else:
            self.show_files(inert(mr.machine.name), mr.stdout_file, mr.stderr_file)

    def show_files(self, name: str, stdout: str, stderr: str) -> None:
        """Show these files of machine ``name``, from what was shown or, if new, following."""
        views = self.query(FileView)
        if not views:  # a timer's last tick while the app shuts down: the children went first
            return
        view = views.first()
        view.open(name, stdout, stderr)
        view.poll()
        self._retitle()

    def _retitle(self) -> None:
        view = self.view
        set_titles(view, view.status(), view.hint())

    @on(FileView.StatusChanged)
    def _status_changed(self) -> None:
        self._retitle()

    @on(FileView.SearchAsked)
    def _ask(self) -> None:
        self.query_one(SearchBar).open()

    @on(Input.Submitted, "#full-search Input")
    def _search(self, event: Input.Submitted) -> None:
        event.stop()
        bar = self.query_one(SearchBar)
        try:
            matcher = Matcher(event.value, regex=bar.regex)
        except SearchTextError as exc:
            self.notify(str(exc), severity="error")
            return
        bar.close()
        self.view.focus()
        self.view.find(matcher)

    @on(SearchBar.Closed)
    def _search_closed(self) -> None:
        self.view.focus()


class OutputPanes(Horizontal):
    """Tail and full output of one machine, side by side."""

    DEFAULT_CSS = """
    OutputPanes { height: 1fr; }
    OutputPanes > TailPane {
        width: 1fr; border: round $primary-darken-2;
        /* No scrollbars: the pane shows the end of the output and cannot take focus (its
           title says it is the last 4 KB; the wheel still scrolls it). Its two scrollbars
           were a tenth of each frame's CPU while keys moved between machines. */
        scrollbar-size: 0 0;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.machine_id = ""

    def compose(self) -> ComposeResult:
        yield TailPane(id="tail")
        yield FullOutput(id="full")

    def show(self, mr: MachineRun | None, output: OutputStore) -> None:
        """Show (or keep up to date) the output of ``mr``; None clears the panes."""
        tail, full = self.query_one(TailPane), self.query_one(FullOutput)
        if mr is None:
            self.machine_id = ""
            tail.show(b"", b"")
            full.show(None)
            return
        self.machine_id = mr.machine_id
        tail.show(output.tail(mr.machine_id, Stream.STDOUT),
                  output.tail(mr.machine_id, Stream.STDERR), mr.error)
        masked = f" · {mr.masked} masked" if mr.masked else ""
        set_titles(tail, f"last 4 KB · {inert(mr.machine.name)}{masked}")
        full.show(mr)
