"""The computer name of a Uniform scale set's instance: what ``hostname`` prints on it.

Azure names the instance resource ``SET/N`` (``queue-ss/0``), but the guest's computer name is
the set's computerNamePrefix followed by the instance id in 6 base-36 digits
(``queue-ss000000``, ``queue-ss00000a`` for instance 10); the prefix is the set's name unless
it was given, and a Windows computer name is cut to NetBIOS's 15 characters. Output
normalized modulo noise (:mod:`core.output_noise`) needs it to see the machine's own name.
"""

from __future__ import annotations

from core.model import ORCHESTRATION_TAG, SCALE_SET_TAG, Machine, OsType

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
PREFIX_CHARS = 9
"""How much of the set's name a derived prefix keeps (the sandbox, like Azure's tools)."""


def base36_instance(instance_id: int) -> str:
    """The 6 base-36 digits an instance id becomes in a computer name (``10`` → ``00000a``)."""
    digits = ""
    number = instance_id
    while len(digits) < 6:
        number, digit = divmod(number, 36)
        digits = _DIGITS[digit] + digits
    return digits


def uniform_computer_name(scale_set: str, instance_id: int, os_type: OsType, *,
                          prefix_chars: int | None = PREFIX_CHARS) -> str:
    """The computer name Azure derives for instance ``instance_id`` of ``scale_set``."""
    prefix = "".join(c for c in scale_set if c.isalnum() or c == "-")
    if prefix_chars is not None:
        prefix = prefix[:prefix_chars]
    name = prefix + base36_instance(instance_id)
    return name[:15] if os_type is OsType.WINDOWS else name


def computer_names(machine: Machine) -> tuple[str, ...]:
    """The names ``machine``'s guest may call itself beyond its resource name: the computer
    name the inventory gave, else, for a Uniform scale set's instance, the derived one (with
    the set's whole name as the prefix too, in case it was not cut)."""
    if machine.computer_name:
        return (machine.computer_name,)
    scale_set = machine.tags.get(SCALE_SET_TAG, "")
    if not scale_set or machine.tags.get(ORCHESTRATION_TAG, "").lower() != "uniform":
        return ()
    instance = machine.id.rstrip("/").rpartition("/")[2]
    if not instance.isdigit():
        instance = machine.name.rpartition("/")[2]
    if not instance.isdigit():
        return ()
    number = int(instance)
    return tuple(dict.fromkeys(
        uniform_computer_name(scale_set, number, machine.os, prefix_chars=chars)
        for chars in (PREFIX_CHARS, None)))
