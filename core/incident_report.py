"""The Markdown incident report of a run: what an on-call engineer pastes into a ticket.

What ran (the command redacted), when and where, machines per state, each group of
identical output with an excerpt, and every machine that did not succeed with its error.
Its values are the run record's (:mod:`core.run_record`), as the JSON and CSV exports have
them: masked once, the same way.

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
from typing import Any

from core.model import REDACTED, RunState
from core.output import OutputGroup
from core.run_record import run_record
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
    # The record's values are scrubbed; the whole text once more in case a value was split
    # by Markdown's escaping.
    return view.scrub(_Report(view).render())


class _Report:
    """The report's sections, from one :class:`RunView`."""

    def __init__(self, view: RunView) -> None:
        self.view = view
        self.record = run_record(view)
        # By the run's ids, not the record's (scrubbed) ones: the record keeps the run's order.
        self.machine_of: dict[str, dict[str, Any]] = dict(
            zip(view.run.machines, self.record["machines"], strict=True))

    def render(self) -> str:
        run = self.view.run
        machines: list[dict[str, Any]] = self.record["machines"]
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
        if self.record["source_group"]:
            parts.append(f"- **Chosen from:** {_text_md(self.record['source_group'])}")
        if saved := self.record["saved_command"]:
            parts.append(f"- **Saved command:** `{_inline(saved['name'])}` "
                         f"(`{_inline(saved['hash'])}`)")
        if run.stop_reason:
            parts.append(f"- **Stopped early:** {_inline(run.stop_reason)}")
        parts += ["", "## What ran", ""]
        for command in self.record["commands"]:
            parts += self._command_section(command)
        parts += ["## Outcome", "", "| State | Machines |", "| --- | ---: |"]
        parts += [f"| {state} | {count} |" for state, count in self.record["summary"].items()]
        parts += ["", "## Output groups", ""]
        if not self.view.groups:
            parts += ["No machine has produced output yet.", ""]
        for group, shown in zip(self.view.groups, self.record["groups"], strict=True):
            parts += self._group_section(group, shown)
        parts += self._failures_section(machines)
        masked = self.record["masked"]
        masked_text = (f"; {masked} occurrence{'s' if masked != 1 else ''} of protected values "
                       f"{'were' if masked != 1 else 'was'} masked in what the machines said"
                       if masked else "")
        parts += [f"_Exported by fleetrun at {_when(self.view.now)}. Protected parameter values "
                  f"are shown as `{REDACTED}`{masked_text}._", ""]
        return "\n".join(parts)

    def _headline(self) -> str:
        counts: dict[str, int] = self.record["summary"]
        total = self.record["machine_count"]
        if not total:
            return "no machines"
        if counts.get(RunState.SUCCEEDED.value) == total:
            return f"all {total} machines succeeded"
        bad = [f"{n} {state.lower()}" for state, n in counts.items()
               if state != RunState.SUCCEEDED.value]
        running = "" if self.view.run.finished else " (still running)"
        return f"{', '.join(bad)} of {total} machines{running}"

    def _where(self, machines: Sequence[dict[str, Any]]) -> str:
        kinds: dict[str, int] = {}
        for machine in machines:
            kinds[machine["kind"]] = kinds.get(machine["kind"], 0) + 1
        kinds_text = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        fleet = f"fleet `{_inline(self.view.run.fleet)}`, " if self.view.run.fleet else ""
        return f"{fleet}{len(machines)} machines ({kinds_text})"

    def _command_section(self, shown: dict[str, Any]) -> list[str]:
        details = [f"`{shown['command_id']}`"]
        if shown.get("saved_command"):
            details.append(f"saved command `{_inline(shown['saved_command'])}` "
                           f"(`{_inline(shown.get('saved_hash', ''))}`)")
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
        script = inert(shown["script"]).splitlines()
        language = "powershell" if shown["command_id"] == "RunPowerShellScript" else "sh"
        excerpt = "\n".join(script[:SCRIPT_LINES])
        lines += _fenced(excerpt, language)
        if len(script) > SCRIPT_LINES:
            lines.append(f"_… {len(script) - SCRIPT_LINES} more script lines._")
        lines.append("")
        return lines

    def _group_section(self, group: OutputGroup, group_record: dict[str, Any]) -> list[str]:
        """``group`` as the record has it (``group_record``); its machines' states are theirs."""
        states: dict[str, int] = {}
        for mid in group.machine_ids:
            state = self.machine_of[mid]["state"]
            states[state] = states.get(state, 0) + 1
        exit_code = group_record["exit_code"]
        exit_text = "no exit code" if exit_code is None else f"exit {exit_code}"
        state_text = ", ".join(f"{n} {state}" for state, n in states.items())
        members: list[str] = group_record["machines"]
        number = group_record["group"]
        shown = ", ".join(_text_md(m) for m in members[:MEMBERS_SHOWN])
        if len(members) > MEMBERS_SHOWN:
            shown += f" and {len(members) - MEMBERS_SHOWN} more"
        machines = f"{group.size} machine{'s' if group.size != 1 else ''}"
        lines = [f"### Group {number}: {machines}, {exit_text} ({state_text})",
                 "", f"Machines: {shown}", ""]
        first = self.machine_of[group.machine_ids[0]]
        for label in ("stdout", "stderr"):
            tail: str = group_record[label]
            size: int = first[f"{label}_bytes"]
            if not tail:
                continue
            excerpt, more = _last_lines(inert(tail), EXCERPT_LINES)
            if more or size > len(group.stdout_tail if label == "stdout" else group.stderr_tail):
                label += f" (the last {excerpt.count(chr(10)) + 1} lines of {size:,} bytes)"
            lines.append(f"{label}:")
            lines += [*_fenced(excerpt, "text"), ""]
        if not group_record["stdout"] and not group_record["stderr"]:
            lines += ["_(no output)_", ""]
        return lines

    def _failures_section(self, machines: Sequence[dict[str, Any]]) -> list[str]:
        failing = [m for m in machines if m["state"] != RunState.SUCCEEDED.value
                   and (RunState(m["state"]).terminal or m["state"] == RunState.UNKNOWN.value)]
        lines = ["## Machines that did not succeed", ""]
        if not failing:
            still = sum(1 for m in machines if not RunState(m["state"]).terminal)
            lines += [f"None{f' so far ({still} still going)' if still else ''}.", ""]
            return lines
        lines += ["| Machine | State | Exit | Group | Error | Last output line |",
                  "| --- | --- | ---: | ---: | --- | --- |"]
        for m in failing[:FAILURES_SHOWN]:
            last = last_line(m["stderr"]) or last_line(m["stdout"])
            lines.append(
                f"| {_text_md(m['machine'])} | {m['state']} | "
                f"{'' if m['exit_code'] is None else m['exit_code']} | "
                f"{'' if m['group'] is None else m['group']} | {_text_md(m['error'])} | "
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
