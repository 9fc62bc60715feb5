"""Ad-hoc SSH hosts (``--fleet ssh:HOSTS``): names, per-host user and port, defaults,
``--target`` on them, and bad input."""

from __future__ import annotations

import pytest

from core.fleet import FleetError, FleetOptions, open_fleet, resolve_fleet
from core.fleet.ssh import SshReach
from core.inventory.errors import InventoryError
from core.inventory.host_list import HostDefaults, load_host_list
from core.model import MachineKind, SshEndpoint
from core.query import filter_machines


def test_each_name_is_a_host_with_its_own_user_and_port() -> None:
    machines = load_host_list("web[01-02].prod,root@db-[1-2]:2222")
    assert [m.name for m in machines] == [
        "root@db-1:2222", "root@db-2:2222", "web01.prod", "web02.prod"]
    assert [m.ssh for m in machines] == [
        SshEndpoint("db-1", 2222, "root"), SshEndpoint("db-2", 2222, "root"),
        SshEndpoint("web01.prod"), SshEndpoint("web02.prod")]
    assert {m.kind for m in machines} == {MachineKind.SSH}
    assert machines[2].id == "ssh:web01.prod" and machines[2].address == "web01.prod"


def test_defaults_fill_what_a_name_leaves_out_and_a_written_value_wins() -> None:
    defaults = HostDefaults(user="ops", identity_file="/keys/ops", port=2200)
    plain, written = load_host_list("a1,admin@b1:22", defaults)
    assert plain.ssh == SshEndpoint("a1", 2200, "ops", "/keys/ops")
    assert written.ssh == SshEndpoint("b1", 22, "admin", "/keys/ops")
    # Without defaults the ssh config decides (None / empty fields), as for any inventory.
    (bare,) = load_host_list("a1")
    assert bare.ssh == SshEndpoint("a1")


def test_the_same_host_on_several_ports_is_several_machines() -> None:
    machines = load_host_list("127.0.0.1:[2201-2203]")
    assert [(m.name, m.ssh.port if m.ssh else None) for m in machines] == [
        ("127.0.0.1:2201", 2201), ("127.0.0.1:2202", 2202), ("127.0.0.1:2203", 2203)]


@pytest.mark.parametrize(("text", "what"), [
    ("web1:0", "port '0': use 1 to 65535"),
    ("web1:x1", "port 'x1'"),
    ("a:1:2", "more than one ':'"),
    ("@@x", "groups (@name) are not supported"),
    ("me@", "the host takes letters"),
    ("bad user@h", "a space"),
    ("h1!h1", "no hosts are left"),
    ("n[3-1]", "goes down"),
])
def test_bad_hosts_say_what_is_wrong_and_what_is_allowed(text: str, what: str) -> None:
    with pytest.raises(InventoryError) as caught:
        load_host_list(text)
    message = str(caught.value)
    assert message.startswith(f"hosts {text!r}: "), message
    assert what in message and "\n" not in message


async def test_ssh_source_uses_the_fleet_options_and_target_works_on_it() -> None:
    options = FleetOptions(host_defaults=HostDefaults(user="ops"))
    source = resolve_fleet("ssh:web[1-3],db1", options)
    assert source.reach == {MachineKind.SSH: SshReach()}
    machines = await source.load()
    assert [m.ssh.user if m.ssh else None for m in machines] == ["ops"] * 4
    assert [m.name for m in filter_machines(machines, "name:web*")] == ["web1", "web2", "web3"]
    assert [m.name for m in filter_machines(machines, "!name:web2")] == ["db1", "web1", "web3"]
    fleet = await open_fleet(["ssh:web[1-2]", "ssh:web2,web3"], options)
    try:
        assert [m.name for m in fleet.machines] == ["web1", "web2", "web3"]
    finally:
        await fleet.aclose()


def test_a_bad_ssh_source_fails_when_resolved_before_anything_connects() -> None:
    with pytest.raises(FleetError, match=r"^hosts 'web\[1-3': at character 4: '\[' is never"):
        resolve_fleet("ssh:web[1-3")
    with pytest.raises(FleetError, match="empty node set"):
        resolve_fleet("ssh:")
