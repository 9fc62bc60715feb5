"""Every key binding of the app, as data: an id per binding so users can remap it.

Bindings are declared here, grouped by where they act, and screens take theirs from this
module. ``[keymap]`` in config.toml maps binding ids to other keys (Textual's keymap:
``"fleet.mark" = "m"``); :func:`load_keymap` reads and checks it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.binding import Binding, BindingType

APP: list[BindingType] = [
    Binding("question_mark", "help", "Keys", id="app.help", tooltip="List every key"),
    Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    # Declared here, not left to Textual, so that it has an id like every other key.
    Binding("ctrl+p", "command_palette", "Palette", id="app.palette", priority=True, show=False,
            tooltip="Open the command palette"),
]

FLEET: list[BindingType] = [
    Binding("slash", "filter", "Filter", id="fleet.filter",
            tooltip="Filter machines with the --target query language"),
    Binding("escape", "clear_filter", "Clear filter", id="fleet.clear_filter", show=False),
    Binding("space", "mark", "Mark", id="fleet.mark", tooltip="Mark or unmark this machine"),
    Binding("a", "mark_shown", "Mark shown", id="fleet.mark_shown",
            tooltip="Mark every machine the filter shows"),
    Binding("asterisk", "invert_marks", "Invert", id="fleet.invert_marks",
            tooltip="Invert the marks of the machines shown"),
    Binding("r", "refresh_health", "Refresh health", id="fleet.refresh_health",
            tooltip="Check the agents (or hosts) of the machines shown again"),
    Binding("enter", "details", "Details", id="fleet.details", show=False),
    Binding("c", "compose", "Compose", id="fleet.compose",
            tooltip="Write a command for the marked machines (or the one under the cursor)"),
    Binding("H", "history", "History", id="fleet.history", tooltip="Past runs"),
    Binding("K", "review_host_keys", "Host keys", id="fleet.review_host_keys",
            tooltip="Review the SSH host keys known_hosts does not vouch for"),
]

HOST_KEYS: list[BindingType] = [
    Binding("space", "toggle_mark", "Mark", id="hostkeys.mark",
            tooltip="Mark or unmark the key under the cursor for trusting"),
    Binding("a", "mark_all", "Mark all", id="hostkeys.mark_all",
            tooltip="Mark every unknown key (again: unmark them all)"),
    # priority: the key table would take enter for itself.
    Binding("enter", "trust_marked", "Trust marked", id="hostkeys.trust", priority=True,
            tooltip="Record the marked keys in known_hosts and check those hosts again"),
    Binding("escape", "leave", "Leave untrusted", id="hostkeys.leave",
            tooltip="Close; the hosts stay unhealthy and are skipped by runs"),
]

HISTORY: list[BindingType] = [
    Binding("escape", "back", "Back", id="history.back"),
    Binding("ctrl+l", "reload", "Reload", id="history.reload", tooltip="Read the journal again"),
]

DETAILS: list[BindingType] = [
    Binding("escape,q", "dismiss", "Close", id="details.close"),
]

RUN: list[BindingType] = [
    Binding("x", "cancel_machine", "Cancel machine", id="run.cancel_machine",
            tooltip="Cancel the machine under the cursor"),
    Binding("X", "cancel_run", "Cancel run", id="run.cancel_run",
            tooltip="Cancel the whole run (asks first)"),
    Binding("R", "rerun", "Rerun failed", id="run.rerun",
            tooltip="Run again the failed, timed-out and not-started machines"),
    Binding("g", "groups", "Groups", id="run.groups",
            tooltip="Group the machines whose outputs and exit codes are identical"),
    Binding("d", "diff", "Diff", id="run.diff",
            tooltip="Diff the output of this machine's group against the largest group's"),
    Binding("e", "export", "Export", id="run.export",
            tooltip="Write the run as JSON, CSV or a Markdown incident report"),
    Binding("escape", "back", "Back", id="run.back",
            tooltip="Leave this screen; the run goes on"),
]

# Moving through the run's machine table.
TABLE: list[BindingType] = [
    Binding("up", "cursor_up", "Up", id="table.up", show=False),
    Binding("down", "cursor_down", "Down", id="table.down", show=False),
    Binding("pageup", "page_up", "Page up", id="table.page_up", show=False),
    Binding("pagedown", "page_down", "Page down", id="table.page_down", show=False),
    Binding("home", "first", "First machine", id="table.first", show=False),
    Binding("end", "last", "Last machine", id="table.last", show=False),
]

# The groups of identical output (g on the run screen).
GROUPS: list[BindingType] = [
    # priority: the group table would take enter for itself (and hide it from the footer).
    Binding("enter", "open_group", "Machines", id="groups.open", priority=True,
            tooltip="The machines of this group and their output"),
    Binding("d", "diff", "Diff", id="groups.diff",
            tooltip="Diff this group's output against the largest group's"),
    Binding("e", "export", "Export", id="groups.export",
            tooltip="Write the run as JSON, CSV or a Markdown incident report"),
    Binding("escape,g", "back", "Back", id="groups.back", tooltip="Back to the machines"),
]

GROUP: list[BindingType] = [
    Binding("d", "diff", "Diff", id="group.diff",
            tooltip="Diff this group's output against the largest group's"),
    Binding("escape", "back", "Back", id="group.back", tooltip="Back to the groups"),
]

DIFF: list[BindingType] = [
    Binding("escape,q", "back", "Back", id="diff.back"),
]

EXPORT: list[BindingType] = [
    Binding("ctrl+s", "write", "Write", id="export.write", priority=True,
            tooltip="Write the file (enter in the file name does too)"),
    Binding("escape", "cancel", "Cancel", id="export.cancel"),
]

# The full-output pane of the run screen, while it has focus (tab into it); keys as in less.
OUTPUT: list[BindingType] = [
    Binding("slash", "search", "Search", id="output.search",
            tooltip="Find a text in this output (n next, N previous)"),
    Binding("n", "next_match", "Next match", id="output.next_match", show=False),
    Binding("N", "previous_match", "Previous match", id="output.previous_match", show=False),
    Binding("f", "toggle_follow", "Follow", id="output.follow",
            tooltip="Follow new output, or stop following"),
    Binding("g,home", "top", "Top", id="output.top", show=False),
    Binding("G,end", "bottom", "End", id="output.bottom", show=False,
            tooltip="Go to the end and follow new output"),
    Binding("s", "switch_stream", "stdout/stderr", id="output.stream",
            tooltip="Show the other stream of this machine"),
    Binding("j", "scroll_down", "Down", id="output.down", show=False),
    Binding("k", "scroll_up", "Up", id="output.up", show=False),
]

OUTPUT_SEARCH: list[BindingType] = [
    Binding("escape", "close", "Close", id="output.search_close"),
    Binding("ctrl+r", "toggle_regex", "Regex/plain", id="output.search_regex",
            tooltip="Search with a regular expression, or plain text"),
]

ASK: list[BindingType] = [
    Binding("y", "confirm", "Yes", id="ask.yes"),
    Binding("n,escape", "refuse", "No", id="ask.no"),
]

COMPOSE: list[BindingType] = [
    # ctrl+r too: many terminals cannot send ctrl+enter.
    Binding("ctrl+enter,ctrl+r", "run", "Run", id="compose.run", priority=True,
            tooltip="Check the command and ask to confirm the run"),
    Binding("escape", "cancel", "Cancel", id="compose.cancel",
            tooltip="Leave without running (in the script editor, esc first leaves it)"),
    Binding("ctrl+n", "add_parameter", "Add parameter", id="compose.add_parameter",
            priority=True),
    Binding("ctrl+o", "remove_parameter", "Remove parameter", id="compose.remove_parameter",
            priority=True, tooltip="Remove the parameter row that has focus"),
]

COMPOSE_CONFIRM: list[BindingType] = [
    Binding("enter", "confirm", "Run", id="compose.confirm_run"),
    Binding("escape", "cancel", "Back", id="compose.confirm_back"),
]


KEY_SHEET: list[BindingType] = [
    Binding("escape,q,question_mark", "dismiss", "Close", id="keys.close"),
]


def contexts() -> list[tuple[str, list[Binding]]]:
    """Every group of bindings declared in this module (``FLEET``, ``RUN``…), in order.

    Read from the module itself: a group added here is on the key sheet and accepted in a
    user's keymap without being listed anywhere else.
    """
    return [(name, value) for name, value in globals().items()
            if name.isupper() and isinstance(value, list) and value
            and all(isinstance(b, Binding) for b in value)]


def all_binding_ids() -> list[str]:
    """Every binding id, for the key sheet and for checking a user's keymap."""
    return [b.id for _, group in contexts() for b in group if b.id]


class KeymapError(ValueError):
    """A ``[keymap]`` entry that names no binding, or gives no key."""


def load_keymap(path: Path) -> dict[str, str]:
    """The ``[keymap]`` table of ``path`` (binding id → keys); empty if there is none.

    Raises:
        KeymapError: an unknown binding id or a value that is not a key string.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise KeymapError(f"{path}: not valid TOML: {exc}") from None
    table = data.get("keymap", {})
    if not isinstance(table, dict):
        raise KeymapError(f"{path}: keymap: must be a table of binding id = \"keys\"")
    known = set(all_binding_ids())
    keymap: dict[str, str] = {}
    for binding_id, keys in table.items():
        if binding_id not in known:
            raise KeymapError(f"{path}: keymap.{binding_id}: no such binding; known: "
                              f"{', '.join(sorted(known))}")
        if not isinstance(keys, str) or not keys.strip():
            raise KeymapError(f"{path}: keymap.{binding_id}: give the keys as a string, "
                              "e.g. \"m\" or \"ctrl+m,m\"")
        keymap[binding_id] = keys
    return keymap
