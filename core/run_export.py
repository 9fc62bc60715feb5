"""A run written out for others: JSON, CSV (a row per machine), a Markdown incident report.

What ran is always the command's redacted form (protected parameter values and run-as
passwords are ``***``), and what the machines said was masked as it arrived
(:mod:`core.redaction`); each machine says how many occurrences were masked. Text that a
person reads in a viewer (CSV cells, the Markdown report) has its control characters made
visible (:mod:`core.terminal_text`); the JSON keeps the text as JSON strings, whose escaping
already makes it inert. The report itself is :mod:`core.incident_report`.

Exporting a live run writes what is known so far; a run opened from history has its
output files read once to group identical outputs.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from core.errors import FleetrunError
from core.incident_report import markdown_report
from core.model import MachineRun, Run, Stream, utc_now
from core.output import OutputStore, decode_tail
from core.run_view import RunView, last_line
from core.terminal_text import inert, json_text

ExportFormat = Literal["json", "csv", "md"]

FORMATS: dict[ExportFormat, str] = {
    "json": "JSON",
    "csv": "CSV",
    "md": "Markdown incident report",
}
"""Every format, with its name for people."""

CSV_COLUMNS = (
    "machine", "machine_id", "kind", "os", "state", "exit_code", "error", "started", "ended",
    "elapsed_seconds", "stdout_bytes", "stderr_bytes", "group", "stdout_last_line",
    "stderr_last_line", "masked",
)


class ExportError(FleetrunError):
    """The export cannot be written; the message says why and where, for a person."""


def parse_format(value: str) -> ExportFormat:
    """A format name (``json``, ``csv``, ``md``; ``markdown`` too), or ExportError."""
    name = value.strip().lower()
    name = "md" if name == "markdown" else name
    for fmt in FORMATS:
        if fmt == name:
            return fmt
    raise ExportError(f"format: {value!r} is not one of {', '.join(FORMATS)}")


def default_path(run_id: str, fmt: ExportFormat, directory: Path | None = None) -> Path:
    """``fleetrun-<run id>.<format>`` in ``directory`` (the current one by default)."""
    return (directory if directory is not None else Path.cwd()) / f"fleetrun-{run_id}.{fmt}"


def render(run: Run, output: OutputStore, fmt: ExportFormat, *,
           now: datetime | None = None) -> str:
    """The run as text in ``fmt``.

    Args:
        run: The run (live or recorded).
        output: Its output store: tails and groups come from there.
        fmt: ``json``, ``csv`` or ``md``.
        now: When the export is made (a live run's elapsed times run up to it).
    """
    view = RunView(run, output, now or utc_now())
    if fmt == "json":
        return json_text(view.scrub_tree(_document(view)), indent=2) + "\n"
    if fmt == "csv":
        return _csv(view)
    return markdown_report(view)


def write(run: Run, output: OutputStore, fmt: ExportFormat, path: Path, *,
          now: datetime | None = None) -> Path:
    """Render the run and write it to ``path`` (replaced whole, readable by its owner only).

    Returns the absolute path written.

    Raises:
        ExportError: the file cannot be written (no such directory, no permission, …).
    """
    text = render(run, output, fmt, now=now)
    target = path.expanduser().absolute()
    partial = target.with_name(f".{target.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _document(view: RunView) -> dict[str, Any]:
    """The run, its groups and every machine, ready for ``json.dumps``."""
    run = view.run
    names = {mid: mr.machine.name for mid, mr in run.machines.items()}
    commands = view.commands()
    return {
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "status": "finished" if run.finished else "running",
        "created": _iso(run.created),
        "ended": _iso(run.ended),
        "exported": _iso(view.now),
        "fleet": run.fleet,
        "target": run.target,
        "stop_reason": run.stop_reason,
        "command": commands[0] if commands else None,
        "commands": commands,
        "summary": view.counts(),
        "masked": view.masked(),
        "groups": [
            {
                "group": number,
                "size": group.size,
                "exit_code": group.exit_code,
                "machines": [names[mid] for mid in group.machine_ids],
                "stdout_tail": view.scrub(decode_tail(group.stdout_tail)),
                "stderr_tail": view.scrub(decode_tail(group.stderr_tail)),
            }
            for number, group in enumerate(view.groups, start=1)
        ],
        "machines": [_machine(view, mr) for mr in run.machines.values()],
    }


def _machine(view: RunView, mr: MachineRun) -> dict[str, Any]:
    return {
        "machine": mr.machine.name,
        "machine_id": mr.machine_id,
        "kind": mr.machine.kind.value,
        "os": mr.machine.os.value,
        "state": mr.state.value,
        "exit_code": mr.exit_code,
        "error": view.scrub(mr.error),
        "started": _iso(mr.started),
        "ended": _iso(mr.ended),
        "elapsed_seconds": view.elapsed(mr),
        "stdout_bytes": mr.stdout_bytes,
        "stderr_bytes": mr.stderr_bytes,
        "group": view.group_of.get(mr.machine_id),
        "stdout_tail": view.tail(mr, Stream.STDOUT),
        "stderr_tail": view.tail(mr, Stream.STDERR),
        "masked": mr.masked,
    }


def _csv(view: RunView) -> str:
    """A header row, then a row per machine in the run's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for mr in view.run.machines.values():
        elapsed = view.elapsed(mr)
        group = view.group_of.get(mr.machine_id)
        writer.writerow([
            _cell(view.scrub(mr.machine.name)), _cell(view.scrub(mr.machine_id)),
            mr.machine.kind.value, mr.machine.os.value, mr.state.value,
            "" if mr.exit_code is None else mr.exit_code, _cell(view.scrub(mr.error)),
            _iso(mr.started) or "", _iso(mr.ended) or "",
            "" if elapsed is None else elapsed, mr.stdout_bytes, mr.stderr_bytes,
            "" if group is None else group,
            _cell(last_line(view.tail(mr, Stream.STDOUT))),
            _cell(last_line(view.tail(mr, Stream.STDERR))), mr.masked,
        ])
    return buffer.getvalue()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _cell(value: str) -> str:
    """A CSV text cell a spreadsheet shows as text, never runs as a formula nor as controls.

    Machine output and names can start with ``=``, ``+``, ``-`` or ``@``, which Excel and
    LibreOffice evaluate (CSV injection); such cells get a leading ``'``. Control characters
    are made visible (a CSV is often looked at with ``cat``).
    """
    value = inert(value)
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t") else value
