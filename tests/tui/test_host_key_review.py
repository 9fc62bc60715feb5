"""The TUI's batch review of SSH host keys, against real SSH servers on 127.0.0.1.

Each host is an in-process asyncssh server with its own host key that answers fleetrun's
health probe (as bash would), so a host whose key is trusted turns Ready. The app opens an
inventory of those hosts with ``$HOME`` pointed at a temporary folder: known_hosts is
``$HOME/.ssh/known_hosts``, exactly as for a user.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from core.backends.host_keys import HostKeyProblem, KeyVerdict
from core.model import HealthStatus
from tui.app import FleetrunApp
from tui.screens.fleet import FleetScreen
from tui.screens.host_key_review import HostKeyReview, review_items
from tui.widgets.fleet.machine_table import MachineTable


@dataclass
class Host:
    name: str
    port: int
    key: asyncssh.SSHKey

    @property
    def fingerprint(self) -> str:
        return self.key.get_fingerprint()

    @property
    def pattern(self) -> str:
        return f"[127.0.0.1]:{self.port}"


async def _answer(process: asyncssh.SSHServerProcess[bytes]) -> None:
    """Answers the health probe as bash would; nothing else is asked of these hosts."""
    if "echo fleetrun-ok" in (process.command or ""):
        process.stdout.write(b"fleetrun-ok\n")
    process.exit(0)


@contextlib.asynccontextmanager
async def ssh_hosts(root: Path, names: list[str]) -> AsyncIterator[tuple[list[Host], Path]]:
    """Loopback SSH servers, one host key each, and a TOML inventory of them."""
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = root / "client_key"
    client_key.write_private_key(str(key_path))
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    servers: list[asyncssh.SSHAcceptor] = []
    hosts: list[Host] = []
    try:
        for name in names:
            key = asyncssh.generate_private_key("ssh-ed25519")
            server = await asyncssh.listen(
                "127.0.0.1", 0, server_host_keys=[key], authorized_client_keys=authorized,
                process_factory=_answer, encoding=None)
            servers.append(server)
            hosts.append(Host(name, server.sockets[0].getsockname()[1], key))
        inventory = root / "hosts.toml"
        inventory.write_text("".join(
            f'[[hosts]]\nname = "{h.name}"\nhost = "127.0.0.1"\nport = {h.port}\n'
            f'user = "tester"\nidentity_file = "{key_path}"\n\n' for h in hosts))
        yield hosts, inventory
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


@pytest.fixture
def known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's known_hosts, in a home of the test's own (not created yet)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    return home / ".ssh" / "known_hosts"


async def until(pilot: Pilot[None], what: str, condition: Callable[[], object]) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


async def review_opens(pilot: Pilot[None], app: FleetrunApp) -> HostKeyReview:
    await until(pilot, "the review opens", lambda: isinstance(app.screen, HostKeyReview))
    await pilot.pause()  # its rows are added once it is mounted
    assert isinstance(app.screen, HostKeyReview)
    return app.screen


def fleet_below(app: FleetrunApp) -> FleetScreen:
    [fleet] = [s for s in app.screen_stack if isinstance(s, FleetScreen)]
    return fleet


def trusted_fingerprints(known_hosts: Path, host: Host) -> set[str]:
    keys, *_ = asyncssh.import_known_hosts(known_hosts.read_text()).match(
        "127.0.0.1", "127.0.0.1", host.port)
    return {k.get_fingerprint() for k in keys}


def health(screen: FleetScreen) -> dict[str, HealthStatus]:
    return {m.name: m.health.status for m in screen.machines}


def health_cell(screen: FleetScreen, name: str) -> str:
    return str(screen.query_one(MachineTable).get_cell(f"ssh:{name}", "health"))


async def test_unknown_keys_are_reviewed_in_one_batch_and_only_the_marked_one_is_trusted(
    tmp_path: Path, known_hosts: Path
) -> None:
    async with ssh_hosts(tmp_path, ["alpha", "beta", "gamma"]) as (hosts, inventory):
        app = FleetrunApp([str(inventory)])
        async with app.run_test(size=(160, 45)) as pilot:
            # The check on open finds three unknown keys and asks about them, once.
            review = await review_opens(pilot, app)
            fleet = fleet_below(app)
            table = review.query_one("#keys", DataTable)
            rows = {str(table.get_cell_at(Coordinate(i, 4))): [str(c) for c in table.get_row_at(i)]
                    for i in range(table.row_count)}
            assert {name: (row[3], row[2], row[1]) for name, row in rows.items()} == {
                h.name: (f"127.0.0.1:{h.port}", "ssh-ed25519", h.fingerprint) for h in hosts}
            assert any("3 SSH host(s) held back" in n.message for n in app._notifications)

            await pilot.press("escape")  # leave them all untrusted
            await pilot.pause()
            assert app.screen is fleet
            assert not known_hosts.exists()
            assert all(s is HealthStatus.NOT_READY for s in health(fleet).values())
            assert health_cell(fleet, "beta") == "✗ unknown host key"

            await pilot.press("K")  # one review again, on demand
            review = await review_opens(pilot, app)
            table = review.query_one("#keys", DataTable)
            beta = next(i for i in range(table.row_count)
                        if str(table.get_cell_at(Coordinate(i, 4))) == "beta")
            await pilot.press(*["down"] * beta, "space", "enter")
            await until(pilot, "beta turns Ready", lambda: health(fleet)["beta"]
                        is HealthStatus.READY)
            assert health_cell(fleet, "beta") == "✓ Ready"
            assert health_cell(fleet, "alpha") == "✗ unknown host key"

        beta_host = next(h for h in hosts if h.name == "beta")
        assert known_hosts.read_text().count("\n") == 1
        assert trusted_fingerprints(known_hosts, beta_host) == {beta_host.fingerprint}
        for host in hosts:
            if host is not beta_host:
                assert trusted_fingerprints(known_hosts, host) == set()
        assert health(fleet) == {"alpha": HealthStatus.NOT_READY, "beta": HealthStatus.READY,
                                 "gamma": HealthStatus.NOT_READY}
        assert not any(m.health.runnable for m in fleet.machines if m.name != "beta")


async def test_a_changed_key_is_shown_refused_with_both_fingerprints_and_never_trusted(
    tmp_path: Path, known_hosts: Path
) -> None:
    async with ssh_hosts(tmp_path, ["new-1", "moved-1"]) as (hosts, inventory):
        fresh, moved = hosts
        impostor = asyncssh.generate_private_key("ssh-ed25519")
        known_hosts.parent.mkdir()
        recorded = f"{moved.pattern} {impostor.export_public_key().decode().strip()}\n"
        known_hosts.write_text(recorded)
        app = FleetrunApp([str(inventory)])
        async with app.run_test(size=(160, 45)) as pilot:
            review = await review_opens(pilot, app)
            fleet = fleet_below(app)
            table = review.query_one("#keys", DataTable)
            # Only the unknown key is offered; the changed one is not in the table at all.
            assert [str(c) for c in table.get_row_at(0)][1:] == [
                fresh.fingerprint, "ssh-ed25519", f"127.0.0.1:{fresh.port}", "new-1"]
            assert table.row_count == 1
            refused = str(review.query_one("#changed", Static).render())
            assert "Refused" in refused and "moved-1" in refused
            assert moved.fingerprint in refused and impostor.get_fingerprint() in refused
            assert f"ssh-keygen -R '{moved.pattern}' -f {known_hosts}" in refused

            await pilot.press("a", "enter")  # everything that can be marked
            await until(pilot, "new-1 turns Ready", lambda: health(fleet)["new-1"]
                        is HealthStatus.READY)
            assert health(fleet)["moved-1"] is HealthStatus.NOT_READY
            assert health_cell(fleet, "moved-1") == "✗ host key CHANGED"
            assert any("CHANGED" in n.message for n in app._notifications)

            await pilot.press("K")  # the refused key can be looked at, never trusted
            review = await review_opens(pilot, app)
            assert not review.query("#keys")
            await pilot.press("a", "space", "enter")
            assert app.screen is review
            await pilot.press("escape")

        assert trusted_fingerprints(known_hosts, moved) == {impostor.get_fingerprint()}
        assert trusted_fingerprints(known_hosts, fresh) == {fresh.fingerprint}
        assert known_hosts.read_text().startswith(recorded)


async def test_on_an_80_column_terminal_every_fingerprint_shows_whole(
    tmp_path: Path, known_hosts: Path
) -> None:
    """The fingerprint is what the user compares with the host's own: never cut off."""
    async with ssh_hosts(tmp_path, ["alpha", "beta"]) as (hosts, inventory):
        app = FleetrunApp([str(inventory)])
        async with app.run_test(size=(80, 24)) as pilot:
            review = await review_opens(pilot, app)
            table = review.query_one("#keys", DataTable)
            columns = list(table.columns.values())
            fingerprint = next(i for i, c in enumerate(columns) if str(c.label) == "fingerprint")
            right_edge = sum(c.get_render_width(table) for c in columns[:fingerprint + 1])
            assert right_edge <= table.scrollable_content_region.width
            shown = {str(table.get_cell_at(Coordinate(i, fingerprint)))
                     for i in range(table.row_count)}
            assert shown == {h.fingerprint for h in hosts}


def test_aliases_of_one_host_share_one_row_and_rows_follow_machine_names() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()

    def unknown(port: int) -> HostKeyProblem:
        return HostKeyProblem("127.0.0.1", port, KeyVerdict.UNKNOWN, f"SHA256:{port}",
                              f"[127.0.0.1]:{port} {key}")

    items = review_items({"ssh:b": unknown(2201), "ssh:c": unknown(2200),
                          "ssh:a": unknown(2201)},
                         {"ssh:a": "web-a", "ssh:b": "web-b", "ssh:c": "web-c"})
    assert [(i.machines, i.address, i.key_type) for i in items] == [
        (("web-a", "web-b"), "127.0.0.1:2201", "ssh-ed25519"),
        (("web-c",), "127.0.0.1:2200", "ssh-ed25519"),
    ]
