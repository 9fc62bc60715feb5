"""What ``-o json`` and ``-o jsonl`` print: the JSON shape of machines, runs and events.

Text from machines stays as it is, in JSON strings, whose escaping makes it inert already
(:func:`core.terminal_text.json_text`); protected values were masked before it was stored.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from core.events import (
    Event,
    Finished,
    OutputAppended,
    RunFinished,
    RunStarted,
    StateChanged,
    TailUpdated,
)
from core.journal_store import MachineRecord, RunRecord
from core.model import TAIL_BYTES, Machine, MachineRun, Run, Stream
from core.output import OutputStore, decode_tail
from core.terminal_text import json_text


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def print_json(obj: Any) -> None:
    sys.stdout.write(json_text(obj, indent=2) + "\n")


def machine_json(machine: Machine) -> dict[str, Any]:
    return {
        "id": machine.id,
        "name": machine.name,
        "kind": machine.kind.value,
        "os": machine.os.value,
        "location": machine.location,
        "subscription": machine.subscription,
        "tags": dict(machine.tags),
        "health": {
            "status": machine.health.status.value,
            "detail": machine.health.detail,
            "agent_version": machine.health.agent_version,
        },
    }


def machine_run_json(mr: MachineRun, output: OutputStore) -> dict[str, Any]:
    return {
        "machine": mr.machine.name,
        "machine_id": mr.machine_id,
        "kind": mr.machine.kind.value,
        "os": mr.machine.os.value,
        "command_id": mr.command.command_id.value,
        "state": mr.state.value,
        "exit_code": mr.exit_code,
        "started": _iso(mr.started),
        "ended": _iso(mr.ended),
        "stdout": decode_tail(output.tail(mr.machine_id, Stream.STDOUT)),
        "stderr": decode_tail(output.tail(mr.machine_id, Stream.STDERR)),
        "stdout_bytes": mr.stdout_bytes,
        "stderr_bytes": mr.stderr_bytes,
        "stdout_file": mr.stdout_file,
        "stderr_file": mr.stderr_file,
        "error": mr.error,
        "masked": mr.masked,
    }


def run_json(run: Run, output: OutputStore) -> dict[str, Any]:
    commands = [c.redacted() for c in run.commands()]
    return {
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "created": _iso(run.created),
        "ended": _iso(run.ended),
        "fleet": run.fleet,
        "target": run.target,
        "stop_reason": run.stop_reason,
        "command": commands[0] if commands else None,
        "commands": commands,
        "summary": run.summary(),
        "machines": [machine_run_json(mr, output) for mr in run.machines.values()],
    }


def file_tail(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - TAIL_BYTES))
            return handle.read()
    except OSError:
        return b""


def machine_record_json(rec: MachineRecord, *, full: bool = False) -> dict[str, Any]:
    def text(path: str) -> str:
        if not full:
            return decode_tail(file_tail(path))
        try:
            return Path(path).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return ""

    return {
        "machine": rec.name,
        "machine_id": rec.machine_id,
        "kind": rec.kind,
        "os": rec.os,
        "state": rec.state.value,
        "exit_code": rec.exit_code,
        "started": _iso(rec.started),
        "ended": _iso(rec.ended),
        "stdout": text(rec.stdout_file),
        "stderr": text(rec.stderr_file),
        "stdout_bytes": rec.stdout_bytes,
        "stderr_bytes": rec.stderr_bytes,
        "stdout_file": rec.stdout_file,
        "stderr_file": rec.stderr_file,
        "error": rec.error,
        "masked": rec.masked,
    }


def run_record_json(rec: RunRecord, *, with_machines: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "run_id": rec.run_id,
        "parent_run_id": rec.parent_run_id,
        "status": rec.status,
        "created": _iso(rec.created),
        "ended": _iso(rec.ended),
        "fleet": rec.fleet,
        "target": rec.target,
        "stop_reason": rec.stop_reason,
        "command": rec.commands[0] if rec.commands else None,
        "commands": list(rec.commands),
        "summary": dict(rec.summary),
        "machine_count": rec.machine_count,
    }
    if with_machines:
        data["machines"] = [machine_record_json(m) for m in rec.machines]
    return data


def event_json(event: Event, names: dict[str, str]) -> dict[str, Any]:
    if isinstance(event, RunStarted):
        return {
            "event": "run_started",
            "run_id": event.run_id,
            "machines": event.machine_count,
            "at": _iso(event.at),
        }
    if isinstance(event, RunFinished):
        return {
            "event": "run_finished",
            "run_id": event.run_id,
            "summary": event.summary,
            "stop_reason": event.stop_reason,
            "at": _iso(event.at),
        }
    base = {
        "machine": names.get(event.machine_id, event.machine_id),
        "machine_id": event.machine_id,
    }
    if isinstance(event, StateChanged):
        return {
            "event": "state",
            **base,
            "state": event.state.value,
            "message": event.message,
            "at": _iso(event.at),
        }
    if isinstance(event, OutputAppended):
        return {
            "event": "output",
            **base,
            "stream": event.stream.value,
            "offset": event.offset,
            "data": event.data.decode("utf-8", errors="replace"),
        }
    if isinstance(event, TailUpdated):
        return {
            "event": "tail",
            **base,
            "stream": event.stream.value,
            "tail": decode_tail(event.tail),
        }
    assert isinstance(event, Finished)
    return {
        "event": "finished",
        **base,
        "state": event.state.value,
        "exit_code": event.exit_code,
        "started": _iso(event.started),
        "ended": _iso(event.ended),
        "error": event.error,
    }
