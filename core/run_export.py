"""A run written out for others: JSON, CSV (a row per machine), a Markdown incident report.

What ran is always the command's redacted form (protected parameter values and run-as
passwords are ``***``), and what the machines said was masked as it arrived
(:mod:`core.redaction`); each machine says how many occurrences were masked. Text that a
person reads in a viewer (CSV cells, the Markdown report) has its control characters made
visible (:mod:`core.terminal_text`); the JSON keeps the text as JSON strings, whose escaping
already makes it inert. The JSON is the run record (:mod:`core.run_record`, documented in
``docs/run-record.schema.json``), a CSV row its machine record made flat, and the report
(:mod:`core.incident_report`) reads its values too: one shape, masked once.

Exporting a live run writes what is known so far; a run opened from history has its
output files read once to group identical outputs.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from core.atomic_files import replace_file
from core.errors import FleetrunError
from core.incident_report import markdown_report
from core.model import Run, utc_now
from core.output import OutputStore
from core.run_record import CSV_COLUMN_OF, MACHINE_FIELDS, machine_record, run_record
from core.run_view import RunView, last_line
from core.terminal_text import inert, json_text

ExportFormat = Literal["json", "csv", "md"]

FORMATS: dict[ExportFormat, str] = {
    "json": "JSON",
    "csv": "CSV",
    "md": "Markdown incident report",
}
"""Every format, with its name for people."""

CSV_COLUMNS = tuple(CSV_COLUMN_OF.get(field, field) for field in MACHINE_FIELDS)
"""A CSV row is a machine record made flat (:mod:`core.run_record`)."""


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
    return render_view(RunView(run, output, now or utc_now()), fmt)


def render_view(view: RunView, fmt: ExportFormat) -> str:
    """The run of ``view`` as text in ``fmt`` (a run from history: :meth:`RunView.from_journal`)."""
    if fmt == "json":
        return json_text(run_record(view), indent=2) + "\n"
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
    return write_view(RunView(run, output, now or utc_now()), fmt, path)


def write_view(view: RunView, fmt: ExportFormat, path: Path) -> Path:
    """Like :func:`write`, for a :class:`RunView` (a run from history: its journal's status)."""
    text = render_view(view, fmt)
    target = path.expanduser().absolute()
    try:
        replace_file(target, text)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _csv(view: RunView) -> str:
    """A header row, then a row per machine in the run's order: its machine record, flat."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for mr in view.run.machines.values():
        record = machine_record(view, mr)
        writer.writerow([_csv_value(field, record[field]) for field in MACHINE_FIELDS])
    return buffer.getvalue()


def _csv_value(field: str, value: Any) -> Any:
    if value is None:
        return ""
    if field in CSV_COLUMN_OF:
        return _cell(last_line(value))
    return _cell(value) if isinstance(value, str) else value


def _cell(value: str) -> str:
    """A CSV text cell a spreadsheet shows as text, never runs as a formula nor as controls.

    Machine output and names can start with ``=``, ``+``, ``-`` or ``@``, which Excel and
    LibreOffice evaluate (CSV injection); such cells get a leading ``'``. Control characters
    are made visible (a CSV is often looked at with ``cat``).
    """
    value = inert(value)
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t") else value
