"""Run ids name a run's run commands on every machine (``fleetrun-<id>``): never one twice.

A PUT under a name whose run is still going stops that run (Arc: "Update ... stops the
previous run command"), so two runs sharing an id would let the second kill the first.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import model
from core.azure.run_commands import run_command_name
from core.fanout import plan_run, rerun_assignments
from core.model import Command, CommandId, Machine, MachineKind, OsType, RunState

ARC_LINUX_NAME_LIMIT = 36


def _machine(index: int) -> Machine:
    return Machine(id=f"/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute"
                      f"/machines/m{index}", name=f"m{index}", kind=MachineKind.ARC,
                   os=OsType.LINUX, location="westeurope", subscription="s")


def test_many_runs_in_one_second_get_distinct_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model.time, "time", lambda: 1_800_000_000.5)
    names = [run_command_name(model.new_run_id()) for _ in range(5000)]
    assert len(set(names)) == len(names)
    assert all(len(name) <= ARC_LINUX_NAME_LIMIT for name in names)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["000000", "00000f", "abcdef"]), min_size=2, max_size=6))
def test_a_random_part_drawn_twice_in_one_second_is_drawn_again(draws: list[str]) -> None:
    # Whatever the random draws repeat, no id comes out twice (the last draws are fresh).
    fresh = (f"{n:06x}" for n in itertools.count(0x100000))
    source = itertools.chain(draws, fresh)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model.time, "time", lambda: 1_900_000_000.0)
        patch.setattr(model.secrets, "token_hex", lambda _: next(source))
        ids = [model.new_run_id() for _ in draws]
    assert len(set(ids)) == len(ids)


def test_a_rerun_gets_a_new_name_on_every_machine() -> None:
    command = Command(CommandId.SHELL, "sleep 600")
    first = plan_run([(_machine(i), command) for i in range(4)])
    for machine_run in first.machines.values():
        machine_run.state = RunState.RUNNING  # still going when the rerun starts
    rerun = plan_run(rerun_assignments(first, frozenset(RunState)),
                     parent_run_id=first.run_id)
    assert set(rerun.machines) == set(first.machines)
    assert rerun.parent_run_id == first.run_id
    assert run_command_name(rerun.run_id) != run_command_name(first.run_id)
