"""A machine's whole output, read from its file only where it is looked at.

:class:`FileView` is a line-API widget over a :class:`core.line_index.LineIndex`: it draws
the lines on screen by reading just their bytes, so a 100 MB output costs what a small
one does. The index grows with the file — on the event loop for a refresh's worth of new
bytes, in a thread for more (opening a big file) — and searches run in a thread too, so
neither freezes the screen.

It behaves like ``less +F``: it follows new output while it is at the end; scrolling up
pauses that, ``G``/``end``/``f`` resume it. ``/`` asks for a text (the enclosing pane shows
the search bar), ``n``/``N`` find the next and previous lines with it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.segment import Segment
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive, var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.file_search import Found, Matcher, search
from core.line_index import MAX_LINE_BYTES, Line, LineIndex
from core.model import Stream
from tui import keymap
from tui.widgets.run.cells import size_text
from tui.widgets.run.match_count import MatchLines, matching_lines
from tui.widgets.run.wrap_layout import wrapped_rows
from tui.widgets.style_per_pass import StylePerPass

SYNC_BYTES = 1 << 20
"""New bytes indexed right away on a refresh; more go to a thread."""

THREAD_STEP = 8 << 20
"""Bytes a thread indexes between two updates of the screen."""

MORE = "\u203a"
"""Drawn in the last column of a line that goes on past the pane's edge."""


class FileView(StylePerPass, ScrollView, can_focus=True):
    """The lines of one output file (stdout, or stderr), followed as it grows."""

    BINDINGS = keymap.OUTPUT
    COMPONENT_CLASSES = {"file-view--match", "file-view--current", "file-view--cut"}
    DEFAULT_CSS = """
    FileView {
        background: $surface;
        overflow-x: hidden;
        overflow-y: scroll;
        &:focus { background-tint: $foreground 5%; }
        & > .file-view--match { background: $warning 80%; color: $text; text-style: bold; }
        & > .file-view--current { background: $primary 35%; }
        & > .file-view--cut { color: $text-muted; }
    }
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)
    """As Textual's, without a layout of the whole screen at each change (this pane's size
    does not depend on it): only the scrollbars follow."""

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)

    following: var[bool] = var(True)
    """New output scrolls into view (turned off by scrolling up)."""

    wrap: var[bool] = var(False)
    """Long lines go on over the next rows (else they are cut at the pane's edge)."""

    class StatusChanged(Message):
        """What the pane's title says changed (following, stream, search, indexing)."""

    class SearchAsked(Message):
        """``/`` was pressed: the pane should ask for a search text."""

    class IndexGrew(Message, bubble=False):
        """A thread indexed more of the file (``done``: and stopped)."""

        def __init__(self, index: LineIndex, done: bool) -> None:
            self.index = index
            self.done = done
            super().__init__()

    class SearchDone(Message, bubble=False):
        """A search thread ended (``job`` tells which search it was)."""

        def __init__(self, job: int, found: Found | None, error: str = "",
                     counted: MatchLines | None = None) -> None:
            self.job = job
            self.found = found
            self.error = error
            self.counted = counted
            super().__init__()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.name_shown = ""
        """The machine whose output this is."""
        self.search_asked: Callable[[], None] | None = None
        """Opens the search bar at ``/`` instead of :class:`SearchAsked` (which reaches the
        pane a loop turn later): the keys typed right after ``/`` go into the bar."""
        self.paths: dict[Stream, str] = {}
        self.stream = Stream.STDOUT
        self.index: LineIndex | None = None
        self._indexes: dict[Stream, LineIndex] = {}
        self._indexing: LineIndex | None = None
        self._line_count = 0
        self.h_offset = 0
        """Columns scrolled right (long lines are cut at the pane's edge)."""
        self.matcher: Matcher | None = None
        self.match_line: int | None = None
        self.search_status = ""
        self._search_job = 0
        self._strips: LRUCache[tuple[int, int, int], Strip] = LRUCache(1024)
        self._counted: MatchLines | None = None
        """The matching lines of the last search (kept while the file has not grown)."""
        self._wrapped: tuple[tuple[object, ...], list[tuple[int, Strip]]] | None = None
        """The rows on screen when wrapping, and what they were laid out for."""

    # -- which file -----------------------------------------------------------------------

    def open(self, name: str, stdout: str, stderr: str) -> None:
        """Show machine ``name``'s stdout file, following it; nothing if it is shown already."""
        paths = {Stream.STDOUT: stdout, Stream.STDERR: stderr}
        if paths == self.paths and name == self.name_shown:
            return
        self.name_shown, self.paths = name, paths
        self._indexes = {}
        self._show_stream(Stream.STDOUT)

    def _show_stream(self, stream: Stream) -> None:
        self.stream = stream
        path = self.paths.get(stream, "")
        self.index = self._indexes.setdefault(stream, LineIndex(path)) if path else None
        self._indexing = None  # a thread indexing another file stops at its next step
        self._search_job += 1
        self.match_line = None
        if self.search_status:
            self.search_status = f"/{self.matcher.text}" if self.matcher else ""
        self.h_offset = 0
        self._strips.clear()
        self._line_count = self.index.line_count if self.index else 0
        self.virtual_size = Size(0, self._line_count)
        self.following = True
        self.poll()
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()
        self.post_message(self.StatusChanged())

    # -- growth ---------------------------------------------------------------------------

    def poll(self) -> None:
        """Index what the file gained since the last poll: O(new bytes), never O(file)."""
        index = self.index
        if index is None or self._indexing is index:
            return
        new = index.file_size() - index.indexed
        if new <= 0:
            return
        if new <= SYNC_BYTES:
            index.extend()
            self._grew()
            return
        self._indexing = index
        self.run_worker(partial(self._index_in_thread, index), thread=True,
                        group="file-view-index", exit_on_error=False)
        self.post_message(self.StatusChanged())

    def _index_in_thread(self, index: LineIndex) -> None:
        try:
            while index is self._indexing and index.extend(THREAD_STEP):
                self.post_message(self.IndexGrew(index, done=False))
        finally:
            self.post_message(self.IndexGrew(index, done=True))

    def on_file_view_index_grew(self, message: IndexGrew) -> None:
        if message.index is not self.index:
            return
        if message.done and self._indexing is message.index:
            self._indexing = None
        self._grew()
        self.post_message(self.StatusChanged())

    def _grew(self) -> None:
        index = self.index
        if index is None:
            return
        before, self._line_count = self._line_count, index.line_count
        self.virtual_size = Size(0, self._line_count)
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        # Draw what changed on screen: the last line (it may have been unfinished) and the
        # new ones, but only those in view (a million new lines are not a million refreshes).
        if self.wrap:  # rows are not lines: a grown line may take more of them
            self.refresh()
            return
        top = self.scroll_offset.y
        first = max(before - 1, top, 0)
        last = min(self._line_count, top + self.scrollable_content_region.height)
        if first < last:
            self.refresh_lines(first, last - first)

    @property
    def indexing(self) -> bool:
        """A thread is indexing the file (it grew by more than a refresh's worth)."""
        return self._indexing is not None

    # -- following ------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Up means pause; a clamp to a shorter file or a taller pane lands at the end.
        if self.following and new_value < old_value and round(new_value) < self.max_scroll_y:
            self.following = False

    def on_resize(self) -> None:
        if self.following:  # a shorter pane (the search bar opened) still shows the end
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True,
                                    x_axis=False)

    def watch_following(self) -> None:
        self.post_message(self.StatusChanged())

    def action_top(self) -> None:
        self.following = False
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_bottom(self) -> None:
        self.following = True
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def action_toggle_follow(self) -> None:
        if self.following:
            self.following = False
        else:
            self.action_bottom()

    def action_switch_stream(self) -> None:
        if self.paths:
            other = Stream.STDERR if self.stream is Stream.STDOUT else Stream.STDOUT
            self._show_stream(other)

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap

    def watch_wrap(self) -> None:
        self.h_offset = 0
        self._wrapped = None
        self.refresh()
        self.post_message(self.StatusChanged())

    def action_scroll_left(self) -> None:
        self.h_offset = max(0, self.h_offset - max(8, self.size.width // 2))
        self.refresh()

    def action_scroll_right(self) -> None:
        self.h_offset = min(MAX_LINE_BYTES, self.h_offset + max(8, self.size.width // 2))
        self.refresh()

    # -- search ---------------------------------------------------------------------------

    def action_search(self) -> None:
        if self.search_asked is not None:
            self.search_asked()
        else:
            self.post_message(self.SearchAsked())

    def find(self, matcher: Matcher, *, backward: bool = False,
             from_line: int | None = None) -> None:
        """Look for ``matcher`` from the top line shown (or ``from_line``), in a thread."""
        if matcher is not self.matcher:
            self.matcher = matcher
            self.match_line = None
            self._strips.clear()
            self.refresh()
        index = self.index
        if index is None:
            self.search_status = f"/{matcher.text}: no output to search"
            self.post_message(self.StatusChanged())
            return
        start = self.scroll_offset.y if from_line is None else from_line
        self._search_job += 1
        job = self._search_job
        self.search_status = f"/{matcher.text}: searching…"
        self.post_message(self.StatusChanged())
        self.run_worker(partial(self._search_in_thread, job, index, matcher, start, backward),
                        thread=True, group="file-view-search", exit_on_error=False)

    def _search_in_thread(self, job: int, index: LineIndex, matcher: Matcher, start: int,
                          backward: bool) -> None:
        def cancelled() -> bool:
            return job != self._search_job

        try:
            found = search(index, matcher, start, backward=backward, cancelled=cancelled)
            counted = self._counted
            if found is not None and (counted is None or counted.matcher is not matcher
                                      or counted.path != index.path
                                      or counted.indexed != index.indexed):
                counted = matching_lines(index, matcher, cancelled)
        except OSError as exc:
            self.post_message(self.SearchDone(job, None, f"cannot read the output: {exc}"))
        else:
            self.post_message(self.SearchDone(job, found, counted=counted))

    def on_file_view_search_done(self, message: SearchDone) -> None:
        if message.job != self._search_job or self.matcher is None:
            return  # a search made stale by another one, or by another file
        text = self.matcher.text
        found = message.found
        if found is None:
            self.search_status = f"/{text}: {message.error or 'no match'}"
            self.notify(message.error or f"Nothing matches {text!r} in {self.stream}",
                        severity="warning")
        else:
            self.following = False
            self.match_line = found.line
            self._strips.clear()
            height = self.scrollable_content_region.height
            if not self._shows(found.line):
                self.scroll_to(y=max(0, found.line - height // 3), animate=False,
                               immediate=True)
            self.refresh()
            counted = message.counted
            self._counted = counted
            where = (f" · {counted.describe(found.line)}"
                     if counted is not None and found.line in counted.lines else "")
            self.search_status = (f"/{text}: line {found.line + 1:,}{where}"
                                  + (" (wrapped)" if found.wrapped else ""))
        self.post_message(self.StatusChanged())

    def _shows(self, line: int) -> bool:
        top = self.scroll_offset.y
        return top <= line < top + self.scrollable_content_region.height

    def _next_from(self, backward: bool) -> int:
        if self.match_line is not None and self._shows(self.match_line):
            return self.match_line if backward else self.match_line + 1
        return self.scroll_offset.y

    def action_next_match(self) -> None:
        if self.matcher is None:
            self.notify("Search first: / then a text")
            return
        self.find(self.matcher, from_line=self._next_from(backward=False))

    def action_previous_match(self) -> None:
        if self.matcher is None:
            self.notify("Search first: / then a text")
            return
        self.find(self.matcher, backward=True, from_line=self._next_from(backward=True))

    # -- status ---------------------------------------------------------------------------

    def status(self) -> str:
        """The pane title: stream, machine, following or paused, lines and bytes."""
        parts = [str(self.stream), self.name_shown]
        indexed = self.index.indexed if self.index else 0
        if self.following:
            parts += ["following", f"{self._line_count:,} lines"]
        else:
            top = min(self.scroll_offset.y + 1, self._line_count)
            parts += ["paused", f"line {top:,} of {self._line_count:,}"]
        parts.append(size_text(indexed))
        if self.wrap:
            parts.append("wrapped")
        if self.index is not None and self._indexing is self.index:
            size = self.index.file_size()
            parts.append(f"indexing {100 * indexed // max(1, size)}%")
        return " · ".join(part for part in parts if part)

    def hint(self) -> str:
        """The pane's subtitle: the search's state, or how to follow again."""
        if self.search_status:
            return self.search_status
        return "" if self.following else "G or f follows"

    def visible_lines(self) -> list[str]:
        """The text of the lines on screen (as shown, before cutting to the pane's width)."""
        return [line.text for line in self._read(self.scroll_offset.y,
                                                 self.scrollable_content_region.height)]

    # -- drawing --------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def _read(self, first: int, count: int) -> list[Line]:
        if self.index is None:
            return []
        count = max(0, min(count, self._line_count - first))
        try:
            return self.index.read_lines(first, count)
        except OSError:  # the run's directory removed under us: show nothing, not a crash
            return []

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        style = self.rich_style
        if self.wrap:
            rows = self._wrapped_rows()
            if y >= len(rows):
                return Strip.blank(width, style)
            return rows[y][1].crop_extend(0, width, style)
        number = self.scroll_offset.y + y
        lines = self._read(number, 1)
        if not lines:
            return Strip.blank(width, style)
        strip = self._line_strip(number, lines[0])
        fitted = strip.crop_extend(self.h_offset, self.h_offset + width, style)
        if strip.cell_length > self.h_offset + width and width > 1:
            more = Strip([Segment(MORE, self.get_component_rich_style("file-view--cut"))], 1)
            fitted = Strip.join([fitted.crop(0, width - 1), more])
        return fitted

    def _line_strip(self, number: int, line: Line) -> Strip:
        key = (number, len(line.raw), line.cut)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render_text(number, line)
        return strip

    def _wrapped_rows(self) -> list[tuple[int, Strip]]:
        """The rows on screen, wrapped: from the top line shown, or (at the end of the
        file) up to its last line."""
        width = max(1, self.scrollable_content_region.width)
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        at_end = self.following or top >= self.max_scroll_y
        first = max(0, self._line_count - height) if at_end else top
        indexed = self.index.indexed if self.index else 0
        layout = (first, width, height, at_end, indexed, self._line_count, self.matcher,
                  self.match_line, self.stream, self.name_shown)
        if self._wrapped is not None and self._wrapped[0] == layout:
            return self._wrapped[1]
        lines = self._read(first, height)
        strips = [self._line_strip(number, line) for number, line in enumerate(lines, first)]
        rows = wrapped_rows(first, strips, width, height, from_bottom=at_end)
        self._wrapped = (layout, rows)
        return rows

    def _render_text(self, number: int, line: Line) -> Strip:
        text = Text(line.text, no_wrap=True, end="")
        text.stylize(self.rich_style)  # as a span: Text.render ignores a base style
        if number == self.match_line:
            text.stylize(self.get_component_rich_style("file-view--current"))
        if self.matcher is not None:
            match_style = self.get_component_rich_style("file-view--match")
            for start, end in self.matcher.spans(line.text):
                text.stylize(match_style, start, end)
        if line.cut:
            text.append(f" … {line.cut:,} more bytes",
                        self.get_component_rich_style("file-view--cut"))
        return Strip(text.render(self.app.console), text.cell_len)
