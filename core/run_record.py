"""The run record: a run, and each machine's part in it, as the JSON every front end writes.

``fleetrun run -o json``, ``show``, ``history -o json``, ``attach``, ``export`` (JSON, and
CSV as a flat projection of the machine record) and the app's export all build it here, from
one :class:`~core.run_view.RunView`, so they cannot disagree on a field's name or value, and
every string in it passes through the run's mask once (:meth:`RunView.scrub_tree`), whatever
the front end. Its shape is documented, for scripts, in ``docs/run-record.schema.json``
(checked against real outputs by the tests); a change to it changes :data:`RUN_SCHEMA`'s
version when it could break a script.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.journal_store import RunRecord
from core.model import MachineRun, Stream
from core.output import decode_tail
from core.run_view import RunView

RUN_SCHEMA = "fleetrun.run/1"
"""The ``schema`` of a run document: its shape and version."""

LISTED_RUN_SCHEMA = "fleetrun.run-summary/1"
"""The ``schema`` of a run as ``history -o json`` lists it (no machines, groups or output)."""

MACHINE_FIELDS = (
    "machine", "machine_id", "kind", "os", "state", "exit_code", "error", "started", "ended",
    "elapsed_seconds", "stdout_bytes", "stderr_bytes", "group", "stdout", "stderr", "masked",
    "command_id", "stdout_file", "stderr_file",
)
"""A machine record's fields, in order: the CSV's columns are these (see
:data:`CSV_COLUMN_OF`); the ones a CSV had before ``command_id`` come first, in its order."""

CSV_COLUMN_OF = {"stdout": "stdout_last_line", "stderr": "stderr_last_line"}
"""The fields a CSV cell cannot hold whole: a cell has their last line, in this column."""


def run_record(view: RunView) -> dict[str, Any]:
    """The run document: the run, its groups of identical output and every machine."""
    run = view.run
    names = {mid: mr.machine.name for mid, mr in run.machines.items()}
    doc = _run_fields(
        RUN_SCHEMA, view.run.run_id, run.parent_run_id, view.status, run.created, view.ended,
        run.fleet, run.target, run.stop_reason, view.commands(), view.counts(),
        len(run.machines), run.source_group)
    doc |= {
        "exported": _iso(view.now),
        "masked": view.masked(),
        "groups": [
            {
                "group": number,
                "size": group.size,
                "exit_code": group.exit_code,
                "machines": [names[mid] for mid in group.machine_ids],
                "stdout": decode_tail(group.stdout_tail),
                "stderr": decode_tail(group.stderr_tail),
            }
            for number, group in enumerate(view.groups, start=1)
        ],
        "machines": [_machine_fields(view, mr, full_output=False)
                     for mr in run.machines.values()],
    }
    scrubbed: dict[str, Any] = view.scrub_tree(doc)
    return scrubbed


def machine_record(view: RunView, mr: MachineRun, *, full_output: bool = False
                   ) -> dict[str, Any]:
    """One machine's part in the run, as the run document holds it.

    ``full_output``: ``stdout`` and ``stderr`` hold everything stored, not the last 4 KB
    (``fleetrun show RUN MACHINE --full -o json``).
    """
    scrubbed: dict[str, Any] = view.scrub_tree(_machine_fields(view, mr, full_output=full_output))
    return scrubbed


def listed_run_record(record: RunRecord) -> dict[str, Any]:
    """A run as history lists it: the run document's own fields, without machines.

    From the journal's row alone (a listing reads no machine and no output file); the journal
    never had a protected value, so there is nothing to mask.
    """
    return _run_fields(
        LISTED_RUN_SCHEMA, record.run_id, record.parent_run_id, record.status, record.created,
        record.ended, record.fleet, record.target, record.stop_reason, list(record.commands),
        dict(record.summary), record.machine_count, record.source_group)


def _run_fields(schema: str, run_id: str, parent_run_id: str, status: str, created: datetime,
                ended: datetime | None, fleet: str, target: str, stop_reason: str,
                commands: list[dict[str, Any]], summary: dict[str, int],
                machine_count: int, source_group: str) -> dict[str, Any]:
    """What a run document and a listed run share, under the same names."""
    saved = next((c for c in commands if c.get("saved_command")), None)
    return {
        "schema": schema,
        "run_id": run_id,
        "parent_run_id": parent_run_id,
        # The parent's output group(s) its machines were chosen from, with the line that set
        # each apart, as the journal keeps it; empty when it is no rerun of groups.
        "source_group": source_group,
        "status": status,
        "created": _iso(created),
        "ended": _iso(ended),
        "fleet": fleet,
        "target": target,
        "stop_reason": stop_reason,
        "command": commands[0] if commands else None,
        "commands": commands,
        "summary": summary,
        "machine_count": machine_count,
        # The saved command it ran (as its commands record it), or null for an ad-hoc one.
        "saved_command": None if saved is None else {
            "name": saved["saved_command"], "hash": saved.get("saved_hash", "")},
    }


def _machine_fields(view: RunView, mr: MachineRun, *, full_output: bool) -> dict[str, Any]:
    return {  # in MACHINE_FIELDS's order
        "machine": mr.machine.name,
        "machine_id": mr.machine_id,
        "kind": mr.machine.kind.value,
        "os": mr.machine.os.value,
        "state": mr.state.value,
        "exit_code": mr.exit_code,
        "error": mr.error,
        "started": _iso(mr.started),
        "ended": _iso(mr.ended),
        "elapsed_seconds": view.elapsed(mr),
        "stdout_bytes": mr.stdout_bytes,
        "stderr_bytes": mr.stderr_bytes,
        "group": view.group_of.get(mr.machine_id),
        "stdout": _output_text(view, mr, Stream.STDOUT, full_output),
        "stderr": _output_text(view, mr, Stream.STDERR, full_output),
        "masked": mr.masked,
        "command_id": mr.command.command_id.value,
        # No file is made for a stream that printed nothing (core.output).
        "stdout_file": mr.stdout_file if mr.stdout_bytes else None,
        "stderr_file": mr.stderr_file if mr.stderr_bytes else None,
    }


def _output_text(view: RunView, mr: MachineRun, stream: Stream, full_output: bool) -> str:
    if not full_output:
        return view.tail(mr, stream)
    path = mr.stdout_file if stream is Stream.STDOUT else mr.stderr_file
    try:
        with open(path, "rb") as kept:
            return kept.read().decode("utf-8", errors="replace")
    except OSError:  # nothing printed, or removed since (retention)
        return ""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
