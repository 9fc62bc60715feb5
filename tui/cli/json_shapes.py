"""What ``-o json`` and ``-o jsonl`` print that is the CLI's own: the machine listing and
the events a run streams.

A run and a machine's part in it are the run record's (:mod:`core.run_record`, documented
in ``docs/run-record.schema.json``); events name what they carry as it does. Text from
machines stays as it is, in JSON strings, whose escaping makes it inert already
(:func:`core.terminal_text.json_text`); protected values were masked before it was stored.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from core.events import (
    Event,
    Finished,
    OutputAppended,
    RunFinished,
    RunStarted,
    StateChanged,
    TailUpdated,
    WaitChanged,
)
from core.model import Machine
from core.output import decode_tail
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
            "remedy": list(machine.health.remedy),
        },
    }


def event_json(event: Event, names: dict[str, str]) -> dict[str, Any]:
    if isinstance(event, RunStarted):
        return {
            "event": "run_started",
            "run_id": event.run_id,
            "machine_count": event.machine_count,
            "machines": event.machine_count,  # the name before the run record's; kept for scripts
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
    if isinstance(event, WaitChanged):
        # A Pending machine's start request waiting on Azure's budget (null: sent).
        return {
            "event": "wait",
            **base,
            "waiting": event.waiting.value if event.waiting is not None else None,
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
