"""A Uniform scale set's instance calls itself by its computer name (``queue-ss000000``), not
by its resource name (``queue-ss/0``): modulo noise, that name is the machine's own too."""

from __future__ import annotations

from core.model import ORCHESTRATION_TAG, SCALE_SET_TAG, Machine, MachineKind, OsType
from core.output_noise import machine_names, normalize_noise
from core.scale_set_names import base36_instance, computer_names, uniform_computer_name

SET_ID = ("/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-queue"
          "/providers/Microsoft.Compute/virtualMachineScaleSets/queue-ss")


def instance(n: int, scale_set: str = "queue-ss", os_type: OsType = OsType.LINUX,
             orchestration: str = "Uniform") -> Machine:
    return Machine(f"{SET_ID.replace('queue-ss', scale_set)}/virtualMachines/{n}",
                   f"{scale_set}/{n}", MachineKind.VM, os_type,
                   tags={SCALE_SET_TAG: scale_set, ORCHESTRATION_TAG: orchestration})


def test_the_instance_id_is_six_base36_digits() -> None:
    assert [base36_instance(n) for n in (0, 9, 10, 35, 36, 1295)] == [
        "000000", "000009", "00000a", "00000z", "000010", "0000zz"]


def test_the_computer_name_is_the_prefix_and_the_digits() -> None:
    assert uniform_computer_name("queue-ss", 0, OsType.LINUX) == "queue-ss000000"
    assert uniform_computer_name("queue-ss", 10, OsType.LINUX) == "queue-ss00000a"
    # A long set name: the prefix is cut to 9; Windows keeps NetBIOS's 15 characters.
    assert uniform_computer_name("ingest_workers", 3, OsType.LINUX) == "ingestwor000003"
    assert uniform_computer_name("ingest-windows-pool", 3, OsType.WINDOWS) == "ingest-wi000003"


def test_an_instance_knows_its_computer_names() -> None:
    assert computer_names(instance(0)) == ("queue-ss000000",)
    long = instance(12, "ingest-workers")
    assert computer_names(long) == ("ingest-wo00000c", "ingest-workers00000c")
    # The inventory's own computer name wins over a derived one.
    told = Machine("/x/vm-1", "vm-1", MachineKind.VM, OsType.LINUX, computer_name="web-prod-7")
    assert computer_names(told) == ("web-prod-7",)
    assert computer_names(instance(0, orchestration="Flexible")) == ()
    assert computer_names(Machine("/x/lab-1", "lab-1", MachineKind.ARC, OsType.LINUX)) == ()


def test_hostname_output_of_a_scale_set_normalizes_equal() -> None:
    outputs = {
        normalize_noise(f"{computer_names(m)[0]}\n", machine_names(m))
        for m in (instance(0), instance(1), instance(35))
    }
    assert outputs == {"<host>\n"}
    two = instance(2)
    assert normalize_noise("Welcome to QUEUE-SS000002!\n", machine_names(two)) == \
        "Welcome to <host>!\n"
    # Another instance's name is not this machine's own: it stays.
    assert normalize_noise("peer queue-ss000001\n", machine_names(two)) == "peer queue-ss000001\n"
