"""How the headless CLI shows runs: rich progress and tables, JSON, JSON lines.

Text from machines is printed inert (:func:`core.terminal_text.inert`): their escape
sequences are shown, never obeyed. JSON keeps the text, in JSON strings, whose escaping
makes it inert already (:func:`core.terminal_text.json_text`). Protected values were masked
before any of it was stored (:mod:`core.redaction`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from core.events import (
    Event,
    Finished,
    OutputAppended,
    RunFinished,
    RunStarted,
    StateChanged,
    TailUpdated,
)
from core.journal import MachineRecord, RunRecord
from core.model import TAIL_BYTES, Machine, MachineRun, Run, RunState, Stream
from core.output import OutputStore, decode_tail
from core.runner import RunSession
from core.terminal_text import InertStream, inert, inert_bytes, json_text
from tui.cli_input import InputError
from tui.states import RUN_STATES

GLYPHS: dict[RunState, tuple[str, str]] = {
    state: (look.glyph, look.tone.value) for state, look in RUN_STATES.items()
}
"""Each state's glyph and style: the TUI's (:data:`tui.states.RUN_STATES`)."""

REFRESH_HZ = 10
TAIL_LINES = 20

# Piped output is read by people and grep alike: wide enough that ids never wrap.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def print_json(obj: Any) -> None:
    sys.stdout.write(json_text(obj, indent=2) + "\n")


def state_text(state: RunState) -> Text:
    glyph, style = GLYPHS[state]
    return Text(f"{glyph} {state.value}", style=style)


def counts_text(counts: dict[str, int]) -> Text:
    text = Text()
    for state in RunState:
        n = counts.get(state.value, 0)
        if n:
            glyph, style = GLYPHS[state]
            text.append(f"{glyph}{n} ", style=style)
    return text


# -- JSON shapes --------------------------------------------------------------------------


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


def _file_tail(path: str) -> bytes:
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
            return decode_tail(_file_tail(path))
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


# -- following a run ----------------------------------------------------------------------


async def follow_run(session: RunSession, output: str) -> None:
    """Execute the run while showing it: JSON lines, or a live progress display."""
    if output == "jsonl":
        await _follow_jsonl(session)
    elif output == "table" and err.is_terminal:
        await _follow_progress(session)
    else:
        await session.execute()


async def _follow_jsonl(session: RunSession) -> None:
    names = {mid: mr.machine.name for mid, mr in session.run.machines.items()}
    events = session.subscribe(max_pending=2_000)

    async def pump() -> None:
        batch: list[str] = []
        async for event in events:
            batch.append(json_text(event_json(event, names)))
            if events.pending() == 0 or len(batch) >= 200:
                # A slow reader must block a thread, never the event loop.
                text = "\n".join(batch) + "\n"
                batch = []
                await asyncio.to_thread(_write_stdout, text)
        if events.dropped:
            note = {
                "event": "dropped",
                "output_events": events.dropped,
                "hint": "the reader was slow; full output is in each machine's stdout_file",
            }
            await asyncio.to_thread(_write_stdout, json_text(note) + "\n")

    writer = asyncio.create_task(pump())
    try:
        await session.execute()
    finally:
        await writer


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


async def _follow_progress(session: RunSession) -> None:
    run = session.run
    progress = Progress(
        TextColumn("[bold]{task.fields[run_id]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        refresh_per_second=REFRESH_HZ,
    )
    task_id = progress.add_task("run", total=len(run.machines), run_id=run.run_id, counts="")

    async def ticker() -> None:
        while True:
            summary = run.summary()
            done = sum(n for s, n in summary.items() if RunState(s).terminal)
            progress.update(task_id, completed=done, counts=counts_text(summary))
            await asyncio.sleep(1 / REFRESH_HZ)

    with progress:
        tick = asyncio.create_task(ticker())
        try:
            await session.execute()
        finally:
            tick.cancel()


# -- tables -------------------------------------------------------------------------------


def _elapsed(started: datetime | None, ended: datetime | None) -> str:
    if started is None or ended is None:
        return ""
    return f"{(ended - started).total_seconds():.1f}s"


def _last_lines(data: bytes, count: int = TAIL_LINES) -> str:
    lines = inert_bytes(data).rstrip("\n").split("\n")
    shown = "\n".join(lines[-count:])
    return shown if len(lines) <= count else f"… ({len(lines) - count} more lines)\n{shown}"


def results_table(rows: Iterable[tuple[str, MachineRun | MachineRecord]], title: str = "") -> Table:
    """One row per machine: a live run's or a recorded one's, which share these fields."""
    table = Table(title=title or None, title_justify="left")
    for col in ("machine", "state", "exit", "elapsed", "out", "err", "note"):
        table.add_column(col, justify="right" if col in ("exit", "out", "err") else "left")
    for name, m in rows:
        note = Text(inert(m.error))
        if m.masked:
            note.append(f"{'; ' if m.error else ''}{m.masked} masked", style="dim")
        table.add_row(
            Text(inert(name)),
            state_text(m.state),
            "" if m.exit_code is None else str(m.exit_code),
            _elapsed(m.started, m.ended),
            f"{m.stdout_bytes:,}",
            f"{m.stderr_bytes:,}",
            note,
        )
    return table


def run_report(run: Run, output: OutputStore) -> None:
    """Identical outputs grouped (largest first), then one row per machine."""
    names = {mid: mr.machine.name for mid, mr in run.machines.items()}
    for group in output.groups(run.machines.values()):
        members = ", ".join(names[mid] for mid in group.machine_ids[:8])
        if group.size > 8:
            members += f" and {group.size - 8} more"
        body = [Text(_last_lines(group.stdout_tail))] if group.stdout_tail else []
        if group.stderr_tail:
            body.append(Text(_last_lines(group.stderr_tail), style="red"))
        code = "no exit code" if group.exit_code is None else f"exit {group.exit_code}"
        title = Text(inert(f"{group.size} machine(s), {code}: {members}"))
        out.print(
            Panel(
                Group(*body) if body else Text("(no output)", style="dim"),
                title=title,
                title_align="left",
                expand=False,
            )
        )
    rows = ((mr.machine.name, mr) for mr in run.machines.values())
    out.print(results_table(rows, title=f"run {run.run_id}"))
    out.print(counts_text(run.summary()), Text(inert(run.stop_reason), style="yellow"))
    out.print(Text(f"full output: fleetrun show {run.run_id} MACHINE --full", style="dim"))


def machines_table(machines: Iterable[Machine]) -> None:
    table = Table()
    for col in ("name", "kind", "os", "health", "agent", "location", "tags"):
        table.add_column(col)
    for m in machines:
        style = "green" if m.health.runnable else "red"
        health = Text(m.health.status.value, style=style)
        if m.health.detail:
            health.append(f" {m.health.detail}", style="dim")
        tags = " ".join(f"{k}={v}" if v else k for k, v in sorted(m.tags.items()))
        table.add_row(
            Text(inert(m.name)), m.kind.value, m.os.value, health, m.health.agent_version or "",
            m.location, Text(inert(tags)),
        )
    out.print(table)


def history_table(runs: Iterable[RunRecord]) -> None:
    table = Table()
    for col in ("run", "created", "status", "machines", "results", "command"):
        table.add_column(col, no_wrap=col in ("run", "created"))
    for rec in runs:
        first = rec.commands[0] if rec.commands else {}
        script = str(first.get("script", "")).strip().splitlines()
        table.add_row(
            rec.run_id,
            rec.created.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            rec.status,
            str(rec.machine_count),
            counts_text(rec.summary),
            (script[0][:40] if script else ""),
        )
    out.print(table)


def show_run(rec: RunRecord) -> None:
    created = rec.created.astimezone()
    out.print(f"[bold]run {rec.run_id}[/]  {rec.status}  created {created:%Y-%m-%d %H:%M:%S}")
    if rec.stop_reason:
        out.print(Text(inert(rec.stop_reason), style="yellow"))
    for command in rec.commands:
        params = ", ".join(
            f"{p['name'] or '(positional)'}={p['value']}" for p in command["parameters"]
        )
        out.print(
            Panel(
                Text(inert(command["script"])),
                title=Text(inert(f"{command['command_id']}  {params}")),
                title_align="left",
                expand=False,
            )
        )
    out.print(results_table((m.name, m) for m in rec.machines))


def find_machine(rec: RunRecord, ref: str) -> MachineRecord:
    exact = [m for m in rec.machines if ref in (m.name, m.machine_id)]
    if len(exact) == 1:
        return exact[0]
    loose = [m for m in rec.machines if m.name.startswith(ref) or m.machine_id.startswith(ref)]
    if len(loose) == 1:
        return loose[0]
    if not loose:
        names = ", ".join(m.name for m in rec.machines[:10])
        raise InputError(f"MACHINE: no machine {ref!r} in run {rec.run_id}; machines: {names}")
    raise InputError(f"MACHINE: {ref!r} matches {len(loose)} machines; give the full name or id")


def show_machine(rec: RunRecord, m: MachineRecord) -> None:
    out.print(
        Text(inert(m.name), style="bold"),
        "  ",
        state_text(m.state),
        f"  exit {m.exit_code}" if m.exit_code is not None else "",
    )
    if m.error:
        out.print(Text(inert(m.error), style="yellow"))
    if m.masked:
        out.print(Text(f"masked: {m.masked} occurrence{'s' if m.masked != 1 else ''} of "
                       "protected values (shown as ***)", style="dim"))
    for label, path in (("stdout", m.stdout_file), ("stderr", m.stderr_file)):
        tail = _file_tail(path)
        out.print(
            Panel(
                Text(inert_bytes(tail)) if tail else Text("(empty)", style="dim"),
                title=Text(f"{label} (last {TAIL_BYTES} bytes)  {inert(path)}"),
                title_align="left",
            )
        )


def print_full_output(m: MachineRecord, stream: str | None, *, raw: bool = False) -> None:
    """Copy the stored output out in chunks: a 1 GB output needs no 1 GB of memory.

    stdout goes to stdout and stderr to stderr, unless ``stream`` picks one of them. A
    terminal gets the text inert; a pipe or a file (or ``raw``) the bytes as stored.
    """
    sinks = []
    if stream in (None, "stdout"):
        sinks.append((m.stdout_file, sys.stdout.buffer))
    if stream in (None, "stderr"):
        sinks.append((m.stderr_file, sys.stderr.buffer if stream is None else sys.stdout.buffer))
    for path, sink in sinks:
        inert_text = None if raw or not sink.isatty() else InertStream()
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    sink.write(chunk if inert_text is None
                               else inert_text.feed(chunk).encode("utf-8"))
            if inert_text is not None:
                sink.write(inert_text.feed(b"", final=True).encode("utf-8"))
        except FileNotFoundError:
            pass  # the stream printed nothing
        sink.flush()
