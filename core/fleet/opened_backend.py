"""What opening a backend for a fleet gives, and the shape of the functions that do it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from core.backends.base import Backend
from core.fleet.options import FleetOptions
from core.fleet.source import FleetError, nothing_to_close
from core.model import MachineKind

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OpenedBackend:
    """A backend the fleet opened, and what closes it (in the event loop that used it)."""

    backend: Backend
    aclose: Callable[[], Awaitable[None]] = nothing_to_close


@dataclass(frozen=True, slots=True)
class SourceReach:
    """What one source needs for a kind of machine (``FleetSource.reach``), and its name."""

    spec: str
    reach: object


class BackendOpener(Protocol):
    """Opens the one backend of a machine kind for every source that brings such machines."""

    def __call__(self, reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
        ...


def only_one(kind: MachineKind, reaches: Sequence[SourceReach], of_type: type[T]) -> T:
    """The single ``of_type`` value the sources share for ``kind``.

    Raises:
        FleetError: two sources bring such machines through different means (two Azure
            sessions), which one backend cannot serve.
    """
    values = [r.reach for r in reaches]
    first = values[0]
    for reach, value in zip(reaches, values, strict=True):
        if value is not first:
            raise FleetError(
                f"fleet: {reaches[0].spec!r} and {reach.spec!r} both bring {kind.value} "
                "machines; use one of them per run")
    if not isinstance(first, of_type):
        raise TypeError(f"{reaches[0].spec!r}: {kind.value} machines need a "
                        f"{of_type.__name__}, not {type(first).__name__}")
    return first
