"""Skipped machines grouped for the run confirmation: status words, grouping, folding."""

from __future__ import annotations

import enum

from hypothesis import given
from hypothesis import strategies as st

from core.model import Health, HealthStatus, Machine, MachineKind, OsType
from core.skip_reasons import fold_names, skip_groups, status_words


class FutureStatus(enum.StrEnum):
    """A status this module has never heard of reads as well as the known ones."""

    NOT_PERMITTED = "NotPermitted"


def test_every_status_reads_as_its_own_words() -> None:
    assert status_words(HealthStatus.AGENT_TOO_OLD) == "agent too old"
    assert status_words(HealthStatus.NOT_READY) == "not ready"
    assert status_words(HealthStatus.BLOCKED) == "blocked"
    assert status_words(FutureStatus.NOT_PERMITTED) == "not permitted"  # type: ignore[arg-type]
    assert all(status_words(s) and status_words(s) == status_words(s).lower()
               for s in HealthStatus)


def _machine(name: str, status: HealthStatus, detail: str = "", *remedy: str) -> Machine:
    return Machine(f"id/{name}", name, MachineKind.ARC, OsType.LINUX,
                   health=Health(status, detail, remedy=remedy))


def test_groups_by_status_then_by_shared_reason_largest_first() -> None:
    machines = [
        _machine("ok", HealthStatus.READY),
        _machine("unknown", HealthStatus.UNKNOWN),  # tried, not skipped
        _machine("old", HealthStatus.AGENT_TOO_OLD, "agent 1.2", "upgrade"),
        _machine("b1", HealthStatus.BLOCKED, "blocklist", "clear it"),
        _machine("b2", HealthStatus.BLOCKED, "monitor", "full mode"),
        _machine("b3", HealthStatus.BLOCKED, "blocklist", "clear it"),
    ]
    groups = skip_groups(machines)
    assert [(g.words, g.machines) for g in groups] == [
        ("blocked", ("b1", "b2", "b3")), ("agent too old", ("old",))]
    blocked = groups[0]
    assert [(r.detail, r.remedy, r.machines) for r in blocked.reasons] == [
        ("blocklist", "clear it", ("b1", "b3")), ("monitor", "full mode", ("b2",))]


@given(st.lists(st.text(alphabet="abcdefgh-0123456789", min_size=1, max_size=40),
                min_size=1, max_size=60),
       st.integers(min_value=20, max_value=120))
def test_folded_names_fit_and_say_how_many_are_left_out(names: list[str], width: int) -> None:
    folded = fold_names(names, width)
    assert len(folded) <= width
    if folded == ", ".join(names):
        return
    if len(names) > 1:
        shown = folded.rpartition(", … +")[0].split(", ")
        hidden = int(folded.rpartition("+")[2].split()[0])
        assert hidden == len(names) - len(shown)
        assert shown[:-1] == names[:len(shown) - 1]
