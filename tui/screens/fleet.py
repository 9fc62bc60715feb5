"""The fleet screen: every machine, filtered with the ``--target`` language, marked for a run."""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Static

from core.azure.action_commands import BuiltinCommand
from core.backends.base import HostKeyCheckingBackend
from core.backends.host_keys import HostKeyProblem, KeyVerdict
from core.fleet.routing import Backends
from core.health_cache import HealthCache, with_cached_health
from core.library import SavedCommand
from core.model import Machine, MachineKind
from core.query import QueryError, filter_machines, parse_query
from tui import keymap
from tui.run_request import RunRequest
from tui.screens.compose import ComposeScreen
from tui.screens.host_key_review import (
    HostKeyReview,
    files_text,
    health_notes,
    record_files,
    review_items,
)
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.fleet.machine_details import MachineDetails
from tui.widgets.fleet.machine_table import MachineTable

AGE_REFRESH_SECONDS = 30.0
"""How often the "checked" column's ages ("2 min ago") are said again."""


class FleetScreen(Screen[None]):
    """The machines of the open fleet.

    Args:
        machines: The fleet's machines, health as the inventory knows it.
        backends: What reaches them (for health checks).
        fleet_name: Shown in the header: which fleet this is.
        host_keys: The fleet's backend that checks host keys (SSH's), if it has one: the
            keys it refused get reviewed.
        health_cache: Where each machine's last checked health is kept: shown at once on
            opening (with its age) while a fresh check runs; every check updates it.
    """

    BINDINGS = keymap.FLEET
    DEFAULT_CSS = """
    FleetScreen #filter { display: none; }
    FleetScreen #filter.-open { display: block; }
    FleetScreen #status-bar { height: 1; }
    FleetScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, machines: list[Machine], backends: Backends, fleet_name: str, *,
                 host_keys: HostKeyCheckingBackend | None = None,
                 health_cache: HealthCache | None = None) -> None:
        super().__init__()
        self._machines = machines
        self._health_cache = health_cache
        self._checking = False
        self._check_generation = 0
        self._backends = backends
        self._host_keys = host_keys
        self._warned: set[str] = set()
        """StrictHostKeyChecking-no warnings already shown (each once a session)."""
        self.fleet_name = fleet_name
        self._query = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: text name:web-* tag:env=prod os:linux health:bad "
                    "!kind:arc (enter keeps it, esc clears)", id="filter")
        yield MachineTable(id="machines")
        with Horizontal(id="status-bar"):
            yield Static(id="status")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.sub_title = self.fleet_name
        if self._health_cache is not None:
            # A small file: read here so the first frame already shows the last check.
            self._machines = with_cached_health(self._machines, self._health_cache.load())
        self._apply("")
        self.query_one(MachineTable).focus()
        # The inventory does not know every agent's state; the backends decide what a check
        # costs (Azure checks large fleets from the inventory alone). In a worker: the
        # screen never waits for it.
        self._refresh_health()
        self.set_interval(AGE_REFRESH_SECONDS, self.query_one(MachineTable).refresh_ages)

    # -- filter ---------------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-open")
        box.value = self._query
        # Focused now, not after the keys already queued (`focus()` waits its turn): what is
        # typed right after / goes into the box, not to the table's bindings.
        self.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("-open")
        box.value = ""
        self._apply("")
        self.query_one(MachineTable).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._apply(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_kept(self, event: Input.Submitted) -> None:
        box = self.query_one("#filter", Input)
        if not event.value.strip():
            box.remove_class("-open")
        self.query_one(MachineTable).focus()

    def _apply(self, text: str) -> None:
        """Show what ``text`` selects; a query still being typed keeps the last good view."""
        try:
            query = parse_query(text)
        except QueryError as exc:
            self._status(error=str(exc))
            return
        self._query = text
        self.query_one(MachineTable).show(filter_machines(self._machines, query))
        self._status()

    def _status(self, *, error: str = "") -> None:
        table = self.query_one(MachineTable)
        text = (f"{len(self._machines)} machines · {len(table.shown)} shown · "
                f"{len(table.marked)} marked")
        if self._query:
            text += f" · filter: {self._query}"
        if self._checking:
            text += " · checking health…"
        if error:
            text += f" · [red]{error}[/]"
        self.query_one("#status", Static).update(text)

    # -- marks ----------------------------------------------------------------------------

    def action_mark(self) -> None:
        self.query_one(MachineTable).toggle_mark()

    def action_mark_shown(self) -> None:
        self.query_one(MachineTable).mark_shown()

    def action_invert_marks(self) -> None:
        self.query_one(MachineTable).invert_shown()

    @on(MachineTable.MarksChanged)
    def _marks_changed(self) -> None:
        self._status()

    # -- health and details ---------------------------------------------------------------

    def action_refresh_health(self) -> None:
        self.notify(f"Checking {len(self.query_one(MachineTable).shown)} machines…")
        self._refresh_health()

    @work(exclusive=True, group="health")
    async def _refresh_health(self) -> None:
        # r cancels a check still running (exclusive): only the newest one says it is done.
        self._check_generation += 1
        generation = self._check_generation
        self._checking = True
        self._status()
        try:
            checked = await self._check(list(self.query_one(MachineTable).shown))
        finally:
            if generation == self._check_generation:
                self._checking = False
        if not self.is_attached:
            return
        self._status()
        bad = sum(1 for m in checked if not m.health.runnable)
        self.notify(f"Health checked: {len(checked) - bad} ready, {bad} not")
        self._report_host_keys()

    async def _check(self, machines: list[Machine]) -> list[Machine]:
        """Check these machines' health and show it; the machines as checked."""
        checked = {m.id: m for m in await self._backends.refresh_health(machines)}
        self._machines = [checked.get(m.id, m) for m in self._machines]
        if self._health_cache is not None:
            await asyncio.to_thread(self._health_cache.save, list(checked.values()))
        if not self.is_attached:  # the app closed while the check ran: nothing to draw on
            return list(checked.values())
        if self._host_keys is not None:
            self.query_one(MachineTable).set_health_notes(
                health_notes(self._host_keys.host_key_problems(), self._machines))
        self._apply(self._query)
        return list(checked.values())

    # -- SSH host keys --------------------------------------------------------------------

    def _report_host_keys(self) -> None:
        """Say which hosts were refused for their keys; offer the review of unknown ones."""
        if self._host_keys is None:
            return
        fresh = [w for w in self._host_keys.host_key_warnings() if w not in self._warned]
        self._warned.update(fresh)
        for warning in fresh:
            # Not a refusal, but a key nothing vouched for: as loud as a changed key.
            self.notify(warning, title="Host key not checked", severity="warning", timeout=30)
        verdicts = [p.verdict for p in self._host_keys.host_key_problems().values()]
        changed = verdicts.count(KeyVerdict.CHANGED)
        unknown = verdicts.count(KeyVerdict.UNKNOWN)
        if changed:
            self.notify(f"{changed} SSH host(s) refused: the host key CHANGED since known_hosts "
                        "recorded it (K shows both fingerprints)", severity="error", timeout=20)
        if unknown:
            self.notify(f"{unknown} SSH host(s) held back: known_hosts has no key for them "
                        "(K reviews them)", severity="warning", timeout=10)
            if self.is_current:  # once per check, and never over another screen
                self.action_review_host_keys()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "review_host_keys":
            return self._host_keys is not None  # hidden on fleets without host keys to check
        if action == "filter":
            # The binding has priority; in the box itself "/" is a character of the query.
            return self.focused is not self.query_one("#filter", Input)
        return True

    def action_review_host_keys(self) -> None:
        """Review, in one batch, the keys of hosts refused because of them."""
        if self._host_keys is None:
            return
        names = {m.id: m.name for m in self._machines}
        items = review_items(self._host_keys.host_key_problems(), names)
        if not items:
            self.notify("No host keys to review: known_hosts vouches for every SSH host "
                        "checked")
            return
        self.app.push_screen(HostKeyReview(items, self._host_keys.known_hosts_path),
                             self._reviewed)

    def _reviewed(self, trusted: list[HostKeyProblem] | None) -> None:
        if trusted:
            self._trust(trusted)

    @work(group="host-keys")
    async def _trust(self, trusted: list[HostKeyProblem]) -> None:
        """Record the trusted keys in known_hosts, then check their hosts again."""
        if self._host_keys is None:
            return
        path = files_text(record_files(trusted, self._host_keys.known_hosts_path))
        try:
            # A file write: off the event loop.
            await asyncio.to_thread(self._host_keys.trust_host_keys, trusted)
        except OSError as exc:
            self.notify(f"Cannot record the keys in {path}: {exc.strerror or exc}",
                        severity="error", timeout=20)
            return
        hosts = {(p.host, p.port) for p in trusted}
        problems = self._host_keys.host_key_problems()
        again = [m for m in self._machines
                 if (p := problems.get(m.id)) is not None and (p.host, p.port) in hosts]
        self.notify(f"Trusted {len(trusted)} host key(s), recorded in {path}; checking "
                    f"{len(again)} machine(s) again")
        checked = await self._check(again)
        ready = sum(1 for m in checked if m.health.runnable)
        self.notify(f"Checked again: {ready} ready, {len(checked) - ready} not",
                    severity="information" if ready == len(checked) else "warning")

    @property
    def backends(self) -> Backends:
        return self._backends

    def compose_builtin(self, builtin: BuiltinCommand) -> str | None:
        """Open the composer for the Azure VMs of ``builtin``'s OS among :meth:`targets`,
        with it loaded; why not, or None."""
        machines = [m for m in self.targets()
                    if m.kind is MachineKind.VM and m.os is builtin.os]
        if not machines:
            return (f"{builtin.id} is a {builtin.os.value} built-in: mark {builtin.os.value} "
                    "Azure VMs to run it (the action API has no other machines)")
        self.app.push_screen(ComposeScreen(machines, builtin=builtin), self._composed)
        return None

    def targets(self) -> list[Machine]:
        """What a run is composed for: the marked machines, else the one under the cursor."""
        table = self.query_one(MachineTable)
        marked = [m for m in self._machines if m.id in table.marked]
        current = table.current_machine()
        return marked or ([current] if current is not None else [])

    def action_compose(self) -> None:
        """Compose a command for the marked machines, else the one under the cursor."""
        why = self.compose_saved(None)
        if why is not None:
            self.notify(why, severity="warning")

    def compose_saved(self, saved: SavedCommand | None) -> str | None:
        """Open the composer for :meth:`targets`, with ``saved`` loaded; why not, or None.

        The composer opens over whatever screen is current (the palette and ``:run`` work
        from the run and history screens too); the run it asks for starts from here.
        """
        machines = self.targets()
        if not machines:
            return "No machine to run on: mark some with space"
        self.app.push_screen(ComposeScreen(machines, saved), self._composed)
        return None

    def set_filter(self, text: str) -> str | None:
        """Filter the machines with ``text`` (``:target``); the error, or None when shown."""
        try:
            parse_query(text)
        except QueryError as exc:
            return str(exc)
        box = self.query_one("#filter", Input)
        box.value = text  # its Changed event applies it
        box.set_class(bool(text.strip()), "-open")
        self._apply(text)
        self.query_one(MachineTable).focus()
        return None

    def _composed(self, request: RunRequest | None) -> None:
        if request is not None:
            self.post_message(self.RunRequested(request))

    class RunRequested(Message):
        """The user composed and confirmed a run."""

        def __init__(self, request: RunRequest) -> None:
            self.request = request
            super().__init__()

    def action_history(self) -> None:
        from tui.screens.history import HistoryScreen  # the journal opens only when asked

        self.app.push_screen(HistoryScreen())

    def action_details(self) -> None:
        machine = self.query_one(MachineTable).current_machine()
        if machine is not None:
            self.app.push_screen(MachineDetails(machine))

    @on(MachineTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_details()

    @property
    def machines(self) -> list[Machine]:
        return list(self._machines)
