"""The CLI's live progress counts machines waiting on Azure's budget apart from Pending and
Running; a finished run's summary has none of them; `-o jsonl` streams the waits."""

from __future__ import annotations

import io

from rich.console import Console

from core.events import WaitChanged
from core.fanout import plan_run
from core.model import Command, CommandId, RunState, Waiting
from tests.fakes import machines
from tui.cli import json_shapes
from tui.cli.render import RunProgress, counts_text, progress_counts

SHELL = Command(CommandId.SHELL, "echo ok", timeout=60)


def test_the_progress_counts_queued_and_throttled_beside_pending_and_running() -> None:
    run = plan_run([(m, SHELL) for m in machines(8)])
    rows = list(run.machines.values())
    for mr in rows[:3]:
        mr.waiting = Waiting.QUEUED
    rows[3].waiting = Waiting.THROTTLED
    rows[4].state = RunState.RUNNING
    rows[5].state = RunState.SUCCEEDED
    rows[6].state, rows[6].waiting = RunState.RUNNING, None
    done, counts = progress_counts(run)
    assert done == 1
    assert counts.plain == "·1 ⋯3 ‖1 ▶2 ✓1 "
    styles = {counts.plain[span.start:span.end]: str(span.style) for span in counts.spans}
    assert styles["‖1 "] == "yellow"  # throttled needs a look, queued is just waiting
    assert styles["⋯3 "] == "dim"


def test_a_finished_runs_summary_reads_as_before() -> None:
    assert counts_text({"Succeeded": 3, "Failed": 1}).plain == "✓3 ✗1 "


def test_jsonl_streams_a_wait_and_its_end() -> None:
    (machine,) = machines(1)
    names = {machine.id: machine.name}
    assert json_shapes.event_json(WaitChanged(machine.id, Waiting.THROTTLED), names) == {
        "event": "wait", "machine": machine.name, "machine_id": machine.id,
        "waiting": "Throttled"}
    assert json_shapes.event_json(WaitChanged(machine.id, None), names)["waiting"] is None


def test_at_80_columns_the_counts_stay_whole_and_the_budget_has_its_own_line() -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=80, force_terminal=True, color_system=None)
    progress = RunProgress(console)
    progress.add_task("run", total=1000, run_id="6b159fab2c5ec3", counts=counts_text(
        {"Pending": 30, "Queued": 412, "Throttled": 25, "Running": 200, "Succeeded": 333}),
        completed=333)
    progress.budget = ("Queued 412 for a write token · Throttled writes 12 s · reads 40 left, "
                       "writes 0 left · ETA 61 s")
    console.print(progress.get_renderable())
    first, second = screen.getvalue().rstrip("\n").split("\n")
    assert "333/1000 ·30 ⋯412 ‖25 ▶200 ✓333" in first
    assert second.startswith("Queued 412 for a write token · Throttled writes 12 s")
    assert len(second) <= 80 and second.endswith("…")
