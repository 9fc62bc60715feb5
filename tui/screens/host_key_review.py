"""One batch review of the SSH host keys known_hosts does not vouch for.

Unknown keys (a host known_hosts has no key for) are listed with their fingerprints for the
user to mark and trust; the screen only returns the chosen ones, the fleet screen records
them through the backend that checked them (a
:class:`core.backends.base.HostKeyCheckingBackend`). Changed keys (known_hosts has another
key for the host) are shown refused, with both fingerprints and the command that removes
the old key: they are never offered here.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from core.backends.host_keys import HostKeyProblem, KeyVerdict, host_pattern
from core.model import Machine, MachineId
from core.node_sets import compact
from tui import keymap
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.vim_table import VimTable

MARK = "●"

HEALTH_NOTES = {KeyVerdict.UNKNOWN: "unknown host key", KeyVerdict.CHANGED: "host key CHANGED"}
"""What the fleet table shows as the health of a host refused for its key."""


@dataclass(frozen=True, slots=True)
class KeyReviewItem:
    """One key a host presented, and the machines of the fleet that reach that host."""

    problem: HostKeyProblem
    machines: tuple[str, ...]

    @property
    def address(self) -> str:
        return f"{self.problem.host}:{self.problem.port}"

    @property
    def key_type(self) -> str:
        # key_line is a known_hosts line: "PATTERN KEYTYPE BASE64".
        fields = self.problem.key_line.split()
        return fields[1] if len(fields) > 1 else "?"


def review_items(
    problems: Mapping[MachineId, HostKeyProblem], names: Mapping[MachineId, str]
) -> list[KeyReviewItem]:
    """The problems to show, one per key presented (aliases of a host share one row), in
    the order of their machines' names."""
    grouped: dict[tuple[str, int, KeyVerdict, str], tuple[HostKeyProblem, list[str]]] = {}
    for machine_id, problem in problems.items():
        key = (problem.host, problem.port, problem.verdict, problem.fingerprint)
        grouped.setdefault(key, (problem, []))[1].append(names.get(machine_id, machine_id))
    items = [KeyReviewItem(problem, tuple(sorted(machines)))
             for problem, machines in grouped.values()]
    return sorted(items, key=lambda item: (item.machines, item.address))


def health_notes(
    problems: Mapping[MachineId, HostKeyProblem], machines: Iterable[Machine]
) -> dict[MachineId, str]:
    """What the fleet table shows instead of the status of hosts refused for their keys."""
    return {m.id: HEALTH_NOTES[problems[m.id].verdict] for m in machines
            if m.id in problems and not m.health.runnable}


def removal_commands(problem: HostKeyProblem, known_hosts: Path) -> list[str]:
    """The commands that drop a host's old keys: from each file holding them (the host's
    own known_hosts files), else from ``known_hosts``. Always with ``-f``: explicit here."""
    files = problem.old_key_files or (problem.record_file or str(known_hosts),)
    return [f"ssh-keygen -R {shlex.quote(host_pattern(problem.host, problem.port))} "
            f"-f {shlex.quote(file)}" for file in files]


def record_files(problems: Iterable[HostKeyProblem], known_hosts: Path) -> list[str]:
    """The files trusting these keys records them in (each host's first user known_hosts
    file), in order; ``known_hosts`` for problems that do not say."""
    return list(dict.fromkeys(p.record_file or str(known_hosts) for p in problems))


def files_text(files: list[str]) -> str:
    return files[0] if len(files) == 1 else f"their hosts' own files ({', '.join(files)})"


def changed_text(items: Iterable[KeyReviewItem], known_hosts: Path) -> Text:
    """The refused (changed) keys: both fingerprints, and how to clear the old one."""
    text = Text()
    text.append("Refused: these hosts presented a key other than the one known_hosts "
                "has for them.\n", style="bold red")
    text.append("That is what an impostor looks like; it is also what a reinstalled host "
                "looks like. Such keys are never trusted from here.\n")
    for item in items:
        problem = item.problem
        text.append(f"\n{', '.join(item.machines)}", style="bold")
        text.append(f"  {item.address}  {item.key_type}\n")
        text.append("  presented:        ")
        text.append(f"{problem.fingerprint}\n", style="red")
        for known in problem.known_fingerprints:
            text.append("  known_hosts has:  ")
            text.append(f"{known}\n", style="green")
        text.append("  If the change is expected (confirm the new fingerprint on the host "
                    "itself), remove the old key:\n    ")
        text.append("\n    ".join(removal_commands(problem, known_hosts)), style="bold")
        text.append("\n  then check health again (r): the host comes back here as unknown.\n")
    return text


class HostKeyReview(ModalScreen[list[HostKeyProblem] | None]):
    """Review unknown host keys in one batch; changed keys are shown refused.

    Dismissed with the unknown keys the user marked and chose to trust, or None when left
    (every key stays untrusted and its hosts stay unhealthy).

    Args:
        items: What the hosts presented (see :func:`review_items`).
        known_hosts: The file trusted keys are recorded in, to say so and for the command
            that removes a changed key's old entry.
    """

    BINDINGS = keymap.HOST_KEYS
    DEFAULT_CSS = """
    HostKeyReview { align: center middle; }
    HostKeyReview > VerticalScroll {
        width: 90%; max-width: 150; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    HostKeyReview #keys { height: auto; max-height: 20; margin: 1 0; }
    HostKeyReview #review-status { color: $text-muted; }
    HostKeyReview #changed { margin-top: 1; }
    """

    def __init__(self, items: list[KeyReviewItem], known_hosts: Path) -> None:
        super().__init__()
        self.unknown = [i for i in items if i.problem.verdict is KeyVerdict.UNKNOWN]
        self.changed = [i for i in items if i.problem.verdict is KeyVerdict.CHANGED]
        self.known_hosts = known_hosts
        self._marked: set[int] = set()

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self._intro(), id="intro")
            if self.unknown:
                yield VimTable[Text | str](cursor_type="row", zebra_stripes=True, id="keys")
                yield Static(id="review-status")
            if self.changed:
                yield Static(changed_text(self.changed, self.known_hosts), id="changed")
        yield FittingFooter()

    def _intro(self) -> Text:
        if not self.unknown:
            return Text("No unknown host keys to trust.", style="bold")
        return Text.assemble(
            f"{len(self.unknown)} SSH host(s) presented keys that known_hosts has no key "
            "for; until trusted they are skipped by runs. Trusting records them in ",
            (files_text(record_files((i.problem for i in self.unknown), self.known_hosts)),
             "bold"),
            ".\nCompare each "
            "fingerprint with the host's own (on the host: ssh-keygen -lf "
            "/etc/ssh/ssh_host_*_key.pub) before trusting it.",
        )

    def on_mount(self) -> None:
        if not self.unknown:
            return
        table = self.query_one("#keys", DataTable)
        table.add_column("", key="mark", width=1)
        # The fingerprint first: it is what the user compares, and it must stay whole on an
        # 80-column terminal; the rest may scroll.
        for label in ("fingerprint", "key type", "address", "machines"):
            table.add_column(label, key=label)
        for index, item in enumerate(self.unknown):
            table.add_row("", item.problem.fingerprint, item.key_type, item.address,
                          compact(list(item.machines), width=60), key=str(index))
        table.focus()
        self._status()

    # -- marks ----------------------------------------------------------------------------

    @property
    def marked(self) -> list[HostKeyProblem]:
        """The unknown keys marked for trusting, in the order shown."""
        return [self.unknown[i].problem for i in sorted(self._marked)]

    def action_toggle_mark(self) -> None:
        if not self.unknown:
            return
        table = self.query_one("#keys", DataTable)
        self._set_marks(self._marked ^ {table.cursor_row})
        if table.cursor_row < len(self.unknown) - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_mark_all(self) -> None:
        if not self.unknown:
            return
        every = set(range(len(self.unknown)))
        self._set_marks(set() if self._marked == every else every)

    def _set_marks(self, marked: set[int]) -> None:
        table = self.query_one("#keys", DataTable)
        for index in marked ^ self._marked:
            table.update_cell(str(index), "mark", MARK if index in marked else "")
        self._marked = marked
        self._status()

    def _status(self) -> None:
        self.query_one("#review-status", Static).update(
            f"{len(self._marked)} of {len(self.unknown)} marked to trust")

    # -- answers --------------------------------------------------------------------------

    def action_trust_marked(self) -> None:
        if not self._marked:
            what = "mark keys to trust first" if self.unknown else "nothing here can be trusted"
            self.notify(f"Nothing marked: {what} (esc leaves them untrusted)",
                        severity="warning")
            return
        self.dismiss(self.marked)

    def action_leave(self) -> None:
        self.dismiss(None)
