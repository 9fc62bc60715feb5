"""Host-key review is a capability a backend offers: the TUI knows only the protocol.

A backend that is not SSH but checks host keys (a pure-Python one here) gets the same
review in the fleet screen as SSH does: its refused keys are listed, the marked ones are
handed back to it to trust, and its hosts are checked again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from textual.pilot import Pilot

from core.backends.base import HostKeyCheckingBackend
from core.backends.host_keys import HostKeyProblem, KeyVerdict
from core.backends.local import LocalBackend
from core.backends.ssh import SshBackend, SshSettings
from core.events import MachineEvent
from core.fleet import Backends
from core.model import Command, Health, HealthStatus, Machine, MachineId, MachineKind, OsType
from tests.tui.snapshots.harness import ScreenApp
from tui.screens.fleet import FleetScreen
from tui.screens.host_key_review import HostKeyReview

UNKNOWN = HostKeyProblem("alpha.example", 2222, KeyVerdict.UNKNOWN, "SHA256:alpha",
                         "[alpha.example]:2222 ssh-ed25519 AAAA")
CHANGED = HostKeyProblem("beta.example", 22, KeyVerdict.CHANGED, "SHA256:beta-new",
                         "beta.example ssh-ed25519 BBBB", ("SHA256:beta-old",))


@dataclass
class KeyedBackend:
    """Hosts behind keys it checks; a host is Ready once its key is trusted."""

    problems: dict[MachineId, HostKeyProblem]
    trusted: list[HostKeyProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def known_hosts_path(self) -> Path:
        return Path("/nowhere/trusted_keys")

    def pending_host_keys(self) -> list[HostKeyProblem]:
        return [p for p in self.problems.values() if p.verdict is KeyVerdict.UNKNOWN]

    def host_key_problems(self) -> dict[MachineId, HostKeyProblem]:
        return dict(self.problems)

    def trust_host_keys(self, problems: list[HostKeyProblem]) -> None:
        self.trusted += problems

    def host_key_warnings(self) -> list[str]:
        return list(self.warnings)

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        trusted = {(p.host, p.port) for p in self.trusted}
        for machine_id, problem in list(self.problems.items()):
            if (problem.host, problem.port) in trusted:
                del self.problems[machine_id]
        return {m.id: Health(HealthStatus.NOT_READY if m.id in self.problems
                             else HealthStatus.READY) for m in machines}

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        raise AssertionError("nothing runs in these tests")
        yield  # an async generator, as the protocol's run is

    async def cancel(self, machine: Machine, run_id: str) -> None:
        pass


def machine(name: str) -> Machine:
    return Machine(f"local:{name}", name, MachineKind.LOCAL, OsType.LINUX,
                   health=Health(HealthStatus.NOT_READY))


async def until(pilot: Pilot[None], what: str, condition: Callable[[], object]) -> None:
    for _ in range(400):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


def test_ssh_offers_host_key_review_and_a_backend_without_host_keys_does_not(
    tmp_path: Path,
) -> None:
    ssh = SshBackend(SshSettings(known_hosts=tmp_path / "known_hosts", config=()))
    assert isinstance(ssh, HostKeyCheckingBackend)
    assert ssh.known_hosts_path == tmp_path / "known_hosts"
    assert not isinstance(LocalBackend(), HostKeyCheckingBackend)
    assert isinstance(KeyedBackend({}), HostKeyCheckingBackend)


async def test_a_backend_that_is_not_ssh_gets_its_refused_keys_reviewed_and_trusted() -> None:
    alpha, beta = machine("alpha"), machine("beta")
    backend = KeyedBackend({alpha.id: UNKNOWN, beta.id: CHANGED})
    backends = Backends({MachineKind.LOCAL: backend})
    app = ScreenApp(lambda: FleetScreen([alpha, beta], backends, "keyed", host_keys=backend))
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, "the review opens", lambda: isinstance(app.screen, HostKeyReview))
        await pilot.pause()
        review = app.screen
        assert isinstance(review, HostKeyReview)
        assert [i.machines for i in review.unknown] == [("alpha",)]
        assert [i.machines for i in review.changed] == [("beta",)]
        assert review.known_hosts == backend.known_hosts_path

        await pilot.press("space", "enter")
        fleet = next(s for s in app.screen_stack if isinstance(s, FleetScreen))
        await until(pilot, "alpha is checked again and turns Ready",
                    lambda: {m.name: m.health.status for m in fleet.machines}["alpha"]
                    is HealthStatus.READY)
        assert backend.trusted == [UNKNOWN]
        assert {m.name: m.health.status for m in fleet.machines}["beta"] \
            is HealthStatus.NOT_READY


async def test_the_review_is_not_offered_without_a_backend_that_checks_host_keys() -> None:
    local = LocalBackend()
    app = ScreenApp(lambda: FleetScreen([machine("alpha")],
                                        Backends({MachineKind.LOCAL: local}), "plain"))
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, "the fleet screen", lambda: isinstance(app.screen, FleetScreen))
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        assert screen.check_action("review_host_keys", ()) is False
        await pilot.press("K")
        await pilot.pause()
        assert app.screen is screen


async def test_the_review_names_each_hosts_own_known_hosts_files() -> None:
    lab = HostKeyProblem("lab.example", 22, KeyVerdict.UNKNOWN, "SHA256:lab",
                         "lab.example ssh-ed25519 CCCC", record_file="/keys/lab_known_hosts")
    prod = HostKeyProblem("prod.example", 22, KeyVerdict.UNKNOWN, "SHA256:prod",
                          "prod.example ssh-ed25519 DDDD", record_file="/keys/prod_known_hosts")
    moved = HostKeyProblem("moved.example", 2222, KeyVerdict.CHANGED, "SHA256:new",
                           "[moved.example]:2222 ssh-ed25519 EEEE", ("SHA256:old",),
                           record_file="/keys/lab_known_hosts",
                           old_key_files=("/etc/ssh/ssh_known_hosts",))
    hosts = [machine("lab"), machine("prod"), machine("moved")]
    backend = KeyedBackend({hosts[0].id: lab, hosts[1].id: prod, hosts[2].id: moved})
    app = ScreenApp(lambda: FleetScreen(hosts, Backends({MachineKind.LOCAL: backend}),
                                        "keyed", host_keys=backend))
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, "the review opens", lambda: isinstance(app.screen, HostKeyReview))
        await pilot.pause()
        review = app.screen
        intro = str(review.query_one("#intro").render())
        assert "/keys/lab_known_hosts, /keys/prod_known_hosts" in intro
        assert "/nowhere/trusted_keys" not in intro
        changed = str(review.query_one("#changed").render())
        assert ("ssh-keygen -R '[moved.example]:2222' -f /etc/ssh/ssh_known_hosts"
                in changed)

        await pilot.press("a", "enter")
        await until(pilot, "the keys are trusted", lambda: len(backend.trusted) == 2)
        await until(pilot, "the notification names both files", lambda: any(
            "/keys/lab_known_hosts, /keys/prod_known_hosts" in n.message
            for n in app._notifications))


async def test_keys_let_through_by_strict_no_are_notified_once_each() -> None:
    warning = ("[lab.example]:2222: CHANGED host key, accepted because its ssh config says "
               "StrictHostKeyChecking no: it presented SHA256:new (known_hosts has SHA256:old)")
    lab = machine("lab")
    backend = KeyedBackend({}, warnings=[warning])
    app = ScreenApp(lambda: FleetScreen([lab], Backends({MachineKind.LOCAL: backend}),
                                        "keyed", host_keys=backend))
    async with app.run_test(size=(160, 45)) as pilot:
        def shown() -> int:
            return sum(n.message == warning for n in app._notifications)
        await until(pilot, "the warning is shown", lambda: shown() == 1)
        checks = sum("Health checked" in n.message for n in app._notifications)
        await pilot.press("r")
        await until(pilot, "a second check reports", lambda: sum(
            "Health checked" in n.message for n in app._notifications) > checks)
        assert shown() == 1
