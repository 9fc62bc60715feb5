"""Run options: timeout, concurrency, error budget, run-as user and password."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label

from core.fanout import FanoutOptions
from core.validate import Limit, Problem, ValidationError, parse_limit

DEFAULT_TIMEOUT = 3600


@dataclass(frozen=True, slots=True)
class OptionValues:
    """What the options form holds, parsed."""

    timeout: int
    fanout: FanoutOptions
    run_as_user: str = ""
    run_as_password: str = field(default="", repr=False)


class OptionsForm(Horizontal):
    """The option fields, side by side, each under its label."""

    DEFAULT_CSS = """
    OptionsForm { height: 4; }
    OptionsForm > Vertical { width: 1fr; height: 4; }
    OptionsForm Label { padding: 0 1; color: $text-muted; }
    """

    FIELDS = (
        ("timeout", "timeout (s, 0 = none)", str(DEFAULT_TIMEOUT), "3600", False),
        ("concurrency", "concurrency (N or N%)", "", "all at once", False),
        ("max_errors", "error budget (N or N%)", "", "no limit", False),
        ("run_as_user", "run-as user", "", "the agent's account", False),
        ("run_as_password", "run-as password", "", "none", True),
    )
    NARROW_FIELDS = {
        "timeout": ("timeout (s)", "3600"),
        "concurrency": ("concurrency", "all"),
        "max_errors": ("error budget", "no limit"),
        "run_as_user": ("run-as user", "agent's"),
        "run_as_password": ("run-as pass", "none"),
    }
    """Label and placeholder of each field when a field has less room than its wide label
    (80 columns): whole words, never one cut in the middle."""

    def compose(self) -> ComposeResult:
        for key, label, value, placeholder, secret in self.FIELDS:
            with Vertical():
                yield Label(label, id=f"{key}-label")
                yield Input(value, placeholder=placeholder, password=secret, id=key)

    def on_resize(self) -> None:
        room = self.size.width // len(self.FIELDS) - 4  # a field's padding and borders
        for key, label, _, placeholder, _ in self.FIELDS:
            if len(label) > room or len(placeholder) > room:
                label, placeholder = self.NARROW_FIELDS[key]
            self.query_one(f"#{key}-label", Label).update(label)
            self.query_one(f"#{key}", Input).placeholder = placeholder

    def _text(self, key: str) -> str:
        return self.query_one(f"#{key}", Input).value

    def set_timeout(self, seconds: int | None) -> None:
        """Show ``seconds`` as the timeout (None: the default)."""
        self.query_one("#timeout", Input).value = str(
            DEFAULT_TIMEOUT if seconds is None else seconds)

    def timeout(self) -> tuple[int, list[Problem]]:
        """The timeout in seconds, or the default and the problem with what is typed."""
        text = self._text("timeout").strip()
        try:
            return (int(text) if text else DEFAULT_TIMEOUT), []
        except ValueError:
            return DEFAULT_TIMEOUT, [Problem("timeout", f"{text!r} is not a whole number of "
                                             "seconds; use 0 (no limit) or more")]

    def read(self) -> tuple[OptionValues | None, list[Problem]]:
        """The parsed options, or None and the problems, each naming its field."""
        timeout, problems = self.timeout()
        limits: dict[str, Limit | None] = {}
        for key in ("concurrency", "max_errors"):
            text = self._text(key)
            try:
                # The CLI's own parser, so --concurrency and this field take the same values.
                limits[key] = parse_limit(text, field=key) if text.strip() else None
            except ValidationError as exc:
                problems += exc.problems
        if problems:
            return None, problems
        fanout = FanoutOptions(concurrency=limits["concurrency"], max_errors=limits["max_errors"])
        return OptionValues(timeout, fanout, self._text("run_as_user").strip(),
                            self._text("run_as_password")), []
