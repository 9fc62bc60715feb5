"""A run written out for others: JSON, CSV (a row per machine), a Markdown incident report.

What ran is always the command's redacted form (protected parameter values and run-as
passwords are ``***``). While the run is in memory, the values themselves are also
blanked out of anything the machines said (tails, errors): a script that echoed its secret
must not leak it into a ticket. A run read back from history cannot do that (the journal
never had the values), so what a machine printed is exported as it was stored.

Exporting a live run writes what is known so far; a run opened from history has its
output files read once to group identical outputs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from core.model import REDACTED, Command, MachineId, MachineRun, Run, RunState, Stream, utc_now
from core.output import OutputGroup, OutputStore, decode_tail

ExportFormat = Literal["json", "csv", "md"]

FORMATS: dict[ExportFormat, str] = {
    "json": "JSON",
    "csv": "CSV",
    "md": "Markdown incident report",
}
"""Every format, with its name for people."""

EXCERPT_LINES = 15
"""Lines of a group's output quoted in the report (its last ones: where errors are)."""

MEMBERS_SHOWN = 20
"""Machine names listed per group in the report before ``and N more``."""

FAILURES_SHOWN = 200
"""Failing machines listed in the report; the JSON and CSV exports have every one."""

SCRIPT_LINES = 60
"""Script lines quoted in the report."""

CSV_COLUMNS = (
    "machine", "machine_id", "kind", "os", "state", "exit_code", "error", "started", "ended",
    "elapsed_seconds", "stdout_bytes", "stderr_bytes", "group", "stdout_last_line",
    "stderr_last_line",
)


class ExportError(Exception):
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
    view = _RunView(run, output, now or utc_now())
    if fmt == "json":
        return json.dumps(view.scrub.tree(view.document()), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return view.csv()
    # Every field from the run is scrubbed as it is placed; the whole text once more in
    # case a value was split by Markdown's escaping.
    return view.scrub(view.markdown())


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


class _Scrubber:
    """Blanks a run's secret values out of text the machines produced."""

    def __init__(self, commands: Iterable[Command]) -> None:
        values = {v for c in commands for v in c.secret_values() if v and v != REDACTED}
        # Longest first: a secret that contains another is replaced whole.
        ordered = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def tree(self, value: Any) -> Any:
        """Every string inside a JSON-ready value, scrubbed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.tree(item) for item in value]
        return value


class _RunView:
    """One run, read once, in the shapes every format needs."""

    def __init__(self, run: Run, output: OutputStore, now: datetime) -> None:
        self.run = run
        self.output = output
        self.now = now
        self.end = run.ended or now
        self.scrub = _Scrubber(run.commands())
        self.groups = output.groups(run.machines.values())
        self.group_of: dict[MachineId, int] = {
            mid: number for number, group in enumerate(self.groups, start=1)
            for mid in group.machine_ids}

    # -- shared pieces --------------------------------------------------------------------

    def tail(self, mr: MachineRun, stream: Stream) -> str:
        return self.scrub(decode_tail(self.output.tail(mr.machine_id, stream)))

    def elapsed(self, mr: MachineRun) -> float | None:
        seconds = mr.elapsed(self.end)
        return round(seconds, 3) if seconds is not None else None

    def counts(self) -> dict[str, int]:
        summary = self.run.summary()
        return {state.value: summary[state.value] for state in RunState if state.value in summary}

    def commands(self) -> list[dict[str, Any]]:
        return [c.redacted() for c in self.run.commands()]

    # -- JSON -----------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        run = self.run
        names = {mid: mr.machine.name for mid, mr in run.machines.items()}
        commands = self.commands()
        return {
            "run_id": run.run_id,
            "parent_run_id": run.parent_run_id,
            "status": "finished" if run.finished else "running",
            "created": _iso(run.created),
            "ended": _iso(run.ended),
            "exported": _iso(self.now),
            "fleet": run.fleet,
            "target": run.target,
            "stop_reason": run.stop_reason,
            "command": commands[0] if commands else None,
            "commands": commands,
            "summary": self.counts(),
            "groups": [
                {
                    "group": number,
                    "size": group.size,
                    "exit_code": group.exit_code,
                    "machines": [names[mid] for mid in group.machine_ids],
                    "stdout_tail": self.scrub(decode_tail(group.stdout_tail)),
                    "stderr_tail": self.scrub(decode_tail(group.stderr_tail)),
                }
                for number, group in enumerate(self.groups, start=1)
            ],
            "machines": [self.machine(mr) for mr in run.machines.values()],
        }

    def machine(self, mr: MachineRun) -> dict[str, Any]:
        return {
            "machine": mr.machine.name,
            "machine_id": mr.machine_id,
            "kind": mr.machine.kind.value,
            "os": mr.machine.os.value,
            "state": mr.state.value,
            "exit_code": mr.exit_code,
            "error": self.scrub(mr.error),
            "started": _iso(mr.started),
            "ended": _iso(mr.ended),
            "elapsed_seconds": self.elapsed(mr),
            "stdout_bytes": mr.stdout_bytes,
            "stderr_bytes": mr.stderr_bytes,
            "group": self.group_of.get(mr.machine_id),
            "stdout_tail": self.tail(mr, Stream.STDOUT),
            "stderr_tail": self.tail(mr, Stream.STDERR),
        }

    # -- CSV ------------------------------------------------------------------------------

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for mr in self.run.machines.values():
            elapsed = self.elapsed(mr)
            group = self.group_of.get(mr.machine_id)
            writer.writerow([
                _cell(self.scrub(mr.machine.name)), _cell(self.scrub(mr.machine_id)),
                mr.machine.kind.value, mr.machine.os.value, mr.state.value,
                "" if mr.exit_code is None else mr.exit_code, _cell(self.scrub(mr.error)),
                _iso(mr.started) or "", _iso(mr.ended) or "",
                "" if elapsed is None else elapsed, mr.stdout_bytes, mr.stderr_bytes,
                "" if group is None else group,
                _cell(_last_line(self.tail(mr, Stream.STDOUT))),
                _cell(_last_line(self.tail(mr, Stream.STDERR))),
            ])
        return buffer.getvalue()

    # -- Markdown -------------------------------------------------------------------------

    def markdown(self) -> str:
        run = self.run
        machines = list(run.machines.values())
        parts = [f"# fleetrun run {run.run_id}: {self.headline()}", ""]
        when = f"{_when(run.created)} → " + (
            f"{_when(run.ended)} ({_duration((run.ended - run.created).total_seconds())})"
            if run.ended else f"still running at {_when(self.now)}")
        parts += [f"- **When:** {when}",
                  f"- **Where:** {self.where(machines)}"]
        if run.target:
            parts.append(f"- **Target:** `{_inline(run.target)}`")
        if run.parent_run_id:
            parts.append(f"- **Rerun of:** {run.parent_run_id}")
        if run.stop_reason:
            parts.append(f"- **Stopped early:** {_inline(run.stop_reason)}")
        parts += ["", "## What ran", ""]
        for command in run.commands():
            parts += self.command_section(command)
        parts += ["## Outcome", "", "| State | Machines |", "| --- | ---: |"]
        parts += [f"| {state} | {count} |" for state, count in self.counts().items()]
        parts += ["", "## Output groups", ""]
        if not self.groups:
            parts += ["No machine has produced output yet.", ""]
        names = {mr.machine_id: mr.machine.name for mr in machines}
        for number, group in enumerate(self.groups, start=1):
            parts += self.group_section(number, group, names)
        parts += self.failures_section(machines)
        parts += [f"_Exported by fleetrun at {_when(self.now)}. Protected parameter values "
                  f"are shown as `{REDACTED}`._", ""]
        return "\n".join(parts)

    def headline(self) -> str:
        counts = self.counts()
        total = len(self.run.machines)
        if not total:
            return "no machines"
        if counts.get(RunState.SUCCEEDED.value) == total:
            return f"all {total} machines succeeded"
        bad = [f"{n} {state.lower()}" for state, n in counts.items()
               if state != RunState.SUCCEEDED.value]
        running = "" if self.run.finished else " (still running)"
        return f"{', '.join(bad)} of {total} machines{running}"

    def where(self, machines: Sequence[MachineRun]) -> str:
        kinds: dict[str, int] = {}
        for mr in machines:
            kinds[mr.machine.kind.value] = kinds.get(mr.machine.kind.value, 0) + 1
        kinds_text = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        fleet = f"fleet `{_inline(self.run.fleet)}`, " if self.run.fleet else ""
        return f"{fleet}{len(machines)} machines ({kinds_text})"

    def command_section(self, command: Command) -> list[str]:
        shown = command.redacted()
        details = [f"`{shown['command_id']}`"]
        if shown["script_path"]:
            details.append(f"from `{_inline(shown['script_path'])}`")
        details.append(f"timeout {shown['timeout']} s" if shown["timeout"] else "no timeout")
        if shown["run_as_user"]:
            details.append(f"as `{_inline(shown['run_as_user'])}`")
        lines = [", ".join(details), ""]
        if shown["parameters"]:
            lines += ["| Parameter | Value |", "| --- | --- |"]
            for param in shown["parameters"]:
                name = param["name"] or "(positional)"
                value = REDACTED if param["protected"] else param["value"]
                lines.append(f"| {_cell_md(name)} | `{_inline(value)}` |")
            lines.append("")
        script = self.scrub(shown["script"]).splitlines()
        language = "powershell" if shown["command_id"] == "RunPowerShellScript" else "sh"
        excerpt = "\n".join(script[:SCRIPT_LINES])
        lines += _fenced(excerpt, language)
        if len(script) > SCRIPT_LINES:
            lines.append(f"_… {len(script) - SCRIPT_LINES} more script lines._")
        lines.append("")
        return lines

    def group_section(self, number: int, group: OutputGroup,
                      names: dict[MachineId, str]) -> list[str]:
        states: dict[str, int] = {}
        for mid in group.machine_ids:
            state = self.run.machines[mid].state.value
            states[state] = states.get(state, 0) + 1
        exit_text = "no exit code" if group.exit_code is None else f"exit {group.exit_code}"
        state_text = ", ".join(f"{n} {state}" for state, n in states.items())
        members = [names[mid] for mid in group.machine_ids]
        shown = ", ".join(_inline(m) for m in members[:MEMBERS_SHOWN])
        if len(members) > MEMBERS_SHOWN:
            shown += f" and {len(members) - MEMBERS_SHOWN} more"
        machines = f"{group.size} machine{'s' if group.size != 1 else ''}"
        lines = [f"### Group {number}: {machines}, {exit_text} ({state_text})",
                 "", f"Machines: {shown}", ""]
        first = self.run.machines[group.machine_ids[0]]
        for label, tail, size in (("stdout", group.stdout_tail, first.stdout_bytes),
                                  ("stderr", group.stderr_tail, first.stderr_bytes)):
            if not tail:
                continue
            excerpt, more = _last_lines(self.scrub(decode_tail(tail)), EXCERPT_LINES)
            if more or size > len(tail):
                label += f" (the last {excerpt.count(chr(10)) + 1} lines of {size:,} bytes)"
            lines.append(f"{label}:")
            lines += [*_fenced(excerpt, "text"), ""]
        if not group.stdout_tail and not group.stderr_tail:
            lines += ["_(no output)_", ""]
        return lines

    def failures_section(self, machines: Sequence[MachineRun]) -> list[str]:
        failing = [mr for mr in machines if mr.state is not RunState.SUCCEEDED
                   and (mr.state.terminal or mr.state is RunState.UNKNOWN)]
        lines = ["## Machines that did not succeed", ""]
        if not failing:
            still = sum(1 for mr in machines if not mr.state.terminal)
            lines += [f"None{f' so far ({still} still going)' if still else ''}.", ""]
            return lines
        lines += ["| Machine | State | Exit | Group | Error | Last output line |",
                  "| --- | --- | ---: | ---: | --- | --- |"]
        for mr in failing[:FAILURES_SHOWN]:
            last = (_last_line(self.tail(mr, Stream.STDERR))
                    or _last_line(self.tail(mr, Stream.STDOUT)))
            group = self.group_of.get(mr.machine_id)
            lines.append(
                f"| {_cell_md(mr.machine.name)} | {mr.state.value} | "
                f"{'' if mr.exit_code is None else mr.exit_code} | "
                f"{'' if group is None else group} | {_cell_md(self.scrub(mr.error))} | "
                f"{_cell_md(last)} |")
        if len(failing) > FAILURES_SHOWN:
            lines.append(f"\n_… and {len(failing) - FAILURES_SHOWN} more; the JSON or CSV "
                         "export lists every machine._")
        lines.append("")
        return lines


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _last_line(text: str) -> str:
    lines = text.rstrip("\n").rsplit("\n", 1)
    return lines[-1].strip() if lines else ""


def _last_lines(text: str, count: int) -> tuple[str, bool]:
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[-count:]), len(lines) > count


def _cell(value: str) -> str:
    """A CSV text cell a spreadsheet shows as text, never runs as a formula.

    Machine output and names can start with ``=``, ``+``, ``-`` or ``@``, which Excel and
    LibreOffice evaluate (CSV injection); such cells get a leading ``'``.
    """
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _cell_md(value: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped."""
    flat = " ".join(value.split())
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def _inline(value: str) -> str:
    """Text for inline code or a list item: one line, no backticks to end the span."""
    return " ".join(value.split()).replace("`", "'")


def _fenced(text: str, language: str) -> list[str]:
    """``text`` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text, fence]
