"""The Markdown incident report of a run: what an on-call engineer pastes into a ticket.

What ran (the command redacted), when and where, machines per state, each group of
identical output with an excerpt, and every machine that did not succeed with its error.

Everything from a machine or an inventory is placed so that it reads as the text it is,
whatever viewer shows the report: control characters are made visible
(:func:`core.terminal_text.inert`), output goes in code fences no line can close, and text
in tables and lists has Markdown and HTML escaped (an HTML comment would hide what follows
it, a link could disguise where it goes, an entity could spell a bidi override).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from core.model import REDACTED, Command, MachineId, MachineRun, RunState, Stream
from core.output import OutputGroup, decode_tail
from core.run_view import RunView, last_line
from core.terminal_text import inert

EXCERPT_LINES = 15
"""Lines of a group's output quoted (its last ones: where errors are)."""

MEMBERS_SHOWN = 20
"""Machine names listed per group before ``and N more``."""

FAILURES_SHOWN = 200
"""Failing machines listed; the JSON and CSV exports have every one."""

SCRIPT_LINES = 60
"""Script lines quoted."""


def markdown_report(view: RunView) -> str:
    """The report of ``view``'s run, every value from the run scrubbed of its secrets."""
    # Every field is scrubbed as it is placed; the whole text once more in case a value was
    # split by Markdown's escaping.
    return view.scrub(_Report(view).render())


class _Report:
    """The report's sections, from one :class:`RunView`."""

    def __init__(self, view: RunView) -> None:
        self.view = view

    def render(self) -> str:
        run = self.view.run
        machines = list(run.machines.values())
        parts = [f"# fleetrun run {run.run_id}: {self._headline()}", ""]
        when = f"{_when(run.created)} → " + (
            f"{_when(run.ended)} ({_duration((run.ended - run.created).total_seconds())})"
            if run.ended else f"still running at {_when(self.view.now)}")
        parts += [f"- **When:** {when}",
                  f"- **Where:** {self._where(machines)}"]
        if run.target:
            parts.append(f"- **Target:** `{_inline(run.target)}`")
        if run.parent_run_id:
            parts.append(f"- **Rerun of:** {run.parent_run_id}")
        if run.stop_reason:
            parts.append(f"- **Stopped early:** {_inline(run.stop_reason)}")
        parts += ["", "## What ran", ""]
        for command in run.commands():
            parts += self._command_section(command)
        parts += ["## Outcome", "", "| State | Machines |", "| --- | ---: |"]
        parts += [f"| {state} | {count} |" for state, count in self.view.counts().items()]
        parts += ["", "## Output groups", ""]
        if not self.view.groups:
            parts += ["No machine has produced output yet.", ""]
        names = {mr.machine_id: mr.machine.name for mr in machines}
        for number, group in enumerate(self.view.groups, start=1):
            parts += self._group_section(number, group, names)
        parts += self._failures_section(machines)
        masked = self.view.masked()
        masked_text = (f"; {masked} occurrence{'s' if masked != 1 else ''} of protected values "
                       f"{'were' if masked != 1 else 'was'} masked in what the machines said"
                       if masked else "")
        parts += [f"_Exported by fleetrun at {_when(self.view.now)}. Protected parameter values "
                  f"are shown as `{REDACTED}`{masked_text}._", ""]
        return "\n".join(parts)

    def _headline(self) -> str:
        counts = self.view.counts()
        total = len(self.view.run.machines)
        if not total:
            return "no machines"
        if counts.get(RunState.SUCCEEDED.value) == total:
            return f"all {total} machines succeeded"
        bad = [f"{n} {state.lower()}" for state, n in counts.items()
               if state != RunState.SUCCEEDED.value]
        running = "" if self.view.run.finished else " (still running)"
        return f"{', '.join(bad)} of {total} machines{running}"

    def _where(self, machines: Sequence[MachineRun]) -> str:
        kinds: dict[str, int] = {}
        for mr in machines:
            kinds[mr.machine.kind.value] = kinds.get(mr.machine.kind.value, 0) + 1
        kinds_text = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        fleet = f"fleet `{_inline(self.view.run.fleet)}`, " if self.view.run.fleet else ""
        return f"{fleet}{len(machines)} machines ({kinds_text})"

    def _command_section(self, command: Command) -> list[str]:
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
                lines.append(f"| {_text_md(name)} | `{_inline(value)}` |")
            lines.append("")
        script = inert(self.view.scrub(shown["script"])).splitlines()
        language = "powershell" if shown["command_id"] == "RunPowerShellScript" else "sh"
        excerpt = "\n".join(script[:SCRIPT_LINES])
        lines += _fenced(excerpt, language)
        if len(script) > SCRIPT_LINES:
            lines.append(f"_… {len(script) - SCRIPT_LINES} more script lines._")
        lines.append("")
        return lines

    def _group_section(self, number: int, group: OutputGroup,
                      names: dict[MachineId, str]) -> list[str]:
        states: dict[str, int] = {}
        for mid in group.machine_ids:
            state = self.view.run.machines[mid].state.value
            states[state] = states.get(state, 0) + 1
        exit_text = "no exit code" if group.exit_code is None else f"exit {group.exit_code}"
        state_text = ", ".join(f"{n} {state}" for state, n in states.items())
        members = [names[mid] for mid in group.machine_ids]
        shown = ", ".join(_text_md(m) for m in members[:MEMBERS_SHOWN])
        if len(members) > MEMBERS_SHOWN:
            shown += f" and {len(members) - MEMBERS_SHOWN} more"
        machines = f"{group.size} machine{'s' if group.size != 1 else ''}"
        lines = [f"### Group {number}: {machines}, {exit_text} ({state_text})",
                 "", f"Machines: {shown}", ""]
        first = self.view.run.machines[group.machine_ids[0]]
        for label, tail, size in (("stdout", group.stdout_tail, first.stdout_bytes),
                                  ("stderr", group.stderr_tail, first.stderr_bytes)):
            if not tail:
                continue
            excerpt, more = _last_lines(inert(self.view.scrub(decode_tail(tail))),
                                        EXCERPT_LINES)
            if more or size > len(tail):
                label += f" (the last {excerpt.count(chr(10)) + 1} lines of {size:,} bytes)"
            lines.append(f"{label}:")
            lines += [*_fenced(excerpt, "text"), ""]
        if not group.stdout_tail and not group.stderr_tail:
            lines += ["_(no output)_", ""]
        return lines

    def _failures_section(self, machines: Sequence[MachineRun]) -> list[str]:
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
            last = (last_line(self.view.tail(mr, Stream.STDERR))
                    or last_line(self.view.tail(mr, Stream.STDOUT)))
            group = self.view.group_of.get(mr.machine_id)
            lines.append(
                f"| {_text_md(mr.machine.name)} | {mr.state.value} | "
                f"{'' if mr.exit_code is None else mr.exit_code} | "
                f"{'' if group is None else group} | {_text_md(self.view.scrub(mr.error))} | "
                f"{_text_md(last)} |")
        if len(failing) > FAILURES_SHOWN:
            lines.append(f"\n_… and {len(failing) - FAILURES_SHOWN} more; the JSON or CSV "
                         "export lists every machine._")
        lines.append("")
        return lines


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _last_lines(text: str, count: int) -> tuple[str, bool]:
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[-count:]), len(lines) > count


_MARKDOWN = re.compile(r"([\\`\[\]<>|&])")
"""What could hide or disguise text in running Markdown (HTML, links, entities, code spans,
a cell's end), escaped with a backslash; emphasis only styles, and stays readable."""


def _text_md(value: str) -> str:
    """Text for running text or a table cell: one line, inert, Markdown and HTML escaped."""
    return _MARKDOWN.sub(r"\\\1", " ".join(inert(value).split()))


def _inline(value: str) -> str:
    """Text for inline code: one line, inert, no backticks to end the span."""
    return " ".join(inert(value).split()).replace("`", "'")


def _fenced(text: str, language: str) -> list[str]:
    """``text`` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", text, fence]
