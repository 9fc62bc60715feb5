"""How the headless CLI shows runs: rich progress and tables, and JSON lines as they happen.

Text from machines is printed inert (:func:`core.terminal_text.inert`): their escape
sequences are shown, never obeyed. The JSON shapes are :mod:`core.run_record`'s and
:mod:`tui.cli.json_shapes`'s. Protected values were masked before any of it was stored
(:mod:`core.redaction`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from core.journal_store import MachineRecord, RunRecord
from core.live_counts import LIVE_ORDER, LiveState, is_done, live_counts
from core.model import TAIL_BYTES, Machine, MachineRun, Run
from core.node_sets import compact
from core.output import OutputStore
from core.runner import RunSession
from core.terminal_text import InertStream, inert, inert_bytes, json_text
from tui.cli import json_shapes
from tui.cli.inputs import InputError
from tui.cli.line_output import follow_lines
from tui.states import LIVE_STATES

GLYPHS: dict[LiveState, tuple[str, str]] = {
    state: (look.glyph, look.tone.value) for state, look in LIVE_STATES.items()
}
"""Each state's glyph and style: the TUI's (:data:`tui.states.LIVE_STATES`)."""

REFRESH_HZ = 10
TAIL_LINES = 20

# Piped output is read by people and grep alike: wide enough that ids never wrap.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


def state_text(state: LiveState) -> Text:
    glyph, style = GLYPHS[state]
    return Text(f"{glyph} {state.value}", style=style)


def counts_text(counts: dict[str, int]) -> Text:
    """``·4 ⋯16 ‖2 ▶6 ✓12``: machines per state (a run's summary, or a live run's counts
    with Queued and Throttled beside Pending), zero counts left out."""
    text = Text()
    for state in LIVE_ORDER:
        n = counts.get(state.value, 0)
        if n:
            glyph, style = GLYPHS[state]
            text.append(f"{glyph}{n} ", style=style)
    return text


def progress_counts(run: Run) -> tuple[int, Text]:
    """How many machines ended, and the live counts the progress shows: ``·4 ⋯16 ‖2 ▶6``
    (Queued and Throttled apart from Pending and Running while Azure's budget holds start
    requests back)."""
    live = live_counts(run.machines.values())
    done = sum(n for state, n in live.items() if is_done(state))
    return done, counts_text({state.value: n for state, n in live.items()})


def budget_text() -> str:
    """Azure's throttle budget as it stands (machines queued for a write token, throttled
    scopes, what is left, the ETA); empty without Azure machines."""
    if "core.azure.budget" not in sys.modules:
        return ""  # no Azure client was made, so there is no budget (an SSH-only run)
    from core.azure.budget import live_states
    from core.azure.budget_view import budget_line

    return inert(budget_line(live_states()))


# -- following a run ----------------------------------------------------------------------


async def follow_run(session: RunSession, output: str) -> None:
    """Execute the run while showing it: JSON lines, or a live progress display."""
    if output == "jsonl":
        await _follow_jsonl(session)
    elif output == "lines":
        await follow_lines(session)
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
            batch.append(json_text(json_shapes.event_json(event, names)))
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


class RunProgress(Progress):
    """The run's progress bar and live counts on one line, Azure's budget on the next.

    The counts (how many machines are Queued, Throttled, Running) must stay whole at 80
    columns; a budget line in the same row crowded them out, so it has a line of its own,
    cut with an ellipsis where the terminal ends.
    """

    def __init__(self, console: Console) -> None:
        self.budget = ""  # before Progress's own init, which may draw
        super().__init__(
            TextColumn("[bold]{task.fields[run_id]}", table_column=Column(no_wrap=True)),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}", table_column=Column(no_wrap=True)),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            refresh_per_second=REFRESH_HZ,
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self.budget:
            yield Text(self.budget, style="dim", no_wrap=True, overflow="ellipsis")


async def _follow_progress(session: RunSession) -> None:
    run = session.run
    progress = RunProgress(err)
    task_id = progress.add_task("run", total=len(run.machines), run_id=run.run_id, counts="")

    async def ticker() -> None:
        while True:
            done, counts = progress_counts(run)
            progress.budget = budget_text()
            progress.update(task_id, completed=done, counts=counts)
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


def run_report(run: Run, output: OutputStore, *, noise: bool = False) -> None:
    """Identical outputs grouped (largest first; modulo noise with ``noise``), then one row
    per machine."""
    names = {mid: mr.machine.name for mid, mr in run.machines.items()}
    for group in output.groups(run.machines.values(), noise=noise):
        members = compact([names[mid] for mid in group.machine_ids])
        body = [Text(_last_lines(group.stdout_tail))] if group.stdout_tail else []
        if group.stderr_tail:
            body.append(Text(_last_lines(group.stderr_tail), style="red"))
        code = "no exit code" if group.exit_code is None else f"exit {group.exit_code}"
        title = Text(inert(f"{group.size} machine(s), {code}"
                           f"{', modulo noise' if noise else ''}: {members}"))
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
        if m.health.remedy:
            health.append(f"; to lift it: {m.health.remedy_line}", style="dim")
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
            rec.saved_label() or (script[0][:40] if script else ""),
        )
    out.print(table)


def show_run(rec: RunRecord) -> None:
    created = rec.created.astimezone()
    out.print(f"[bold]run {rec.run_id}[/]  {rec.status}  created {created:%Y-%m-%d %H:%M:%S}")
    if rec.parent_run_id:
        origin = f"from run {rec.parent_run_id}"
        if rec.source_group:
            origin += f", {rec.source_group}"
        out.print(Text(inert(origin), style="cyan"))
    if rec.saved_command:
        out.print(Text(inert(f"saved command {rec.saved_command} ({rec.saved_hash})")))
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


def file_tail(path: str) -> bytes:
    """The last 4 KB of a stored output file; nothing if it is gone (or was never made)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - TAIL_BYTES))
            return handle.read()
    except OSError:
        return b""


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
        tail = file_tail(path)
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
