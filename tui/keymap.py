"""Every key binding of the app, as data: an id per binding so users can remap it.

Bindings are declared here, grouped by where they act, and screens take theirs from this
module. ``[keymap]`` in config.toml maps binding ids to other keys (Textual's keymap:
``"fleet.mark" = "m"``); :func:`load_keymap` reads and checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from textual.binding import Binding, BindingType

from core.config_file import ConfigFileError, read_config
from core.field_names import shown_key

APP: list[BindingType] = [
    # f1 too: in a script editor or a text field ? is typed, and the footer hides it there.
    Binding("question_mark,f1", "help", "Keys", id="app.help", tooltip="List every key"),
    Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    # Declared here, not left to Textual, so that it has an id like every other key.
    Binding("ctrl+p", "command_palette", "Palette", id="app.palette", priority=True, show=False,
            tooltip="Open the command palette"),
    # Acts on the fleet, run and history screens only (FleetrunApp.check_action).
    Binding("colon", "command_line", "Command line", id="app.command_line", show=False,
            tooltip=":run NAME, :target QUERY, :rerun failed, :history, :theme NAME"),
]

FLEET: list[BindingType] = [
    # priority: handled before the keys typed after it are handed to the focused table, so
    # a fast "/cat" types "cat" into the box instead of composing (c) and marking all (a).
    Binding("slash", "filter", "Filter", id="fleet.filter", priority=True,
            tooltip="Filter machines with the --target query language"),
    Binding("escape", "clear_filter", "Clear filter", id="fleet.clear_filter", show=False),
    Binding("space", "mark", "Mark", id="fleet.mark", tooltip="Mark or unmark this machine"),
    # Compose early: the footer keeps keys in this order while they fit (80 columns).
    Binding("c", "compose", "Compose", id="fleet.compose",
            tooltip="Write a command for the marked machines (or the one under the cursor)"),
    Binding("a", "mark_shown", "Mark shown", id="fleet.mark_shown",
            tooltip="Mark every machine the filter shows"),
    Binding("asterisk", "invert_marks", "Invert", id="fleet.invert_marks",
            tooltip="Invert the marks of the machines shown"),
    Binding("r", "refresh_health", "Refresh", id="fleet.refresh_health",
            tooltip="Check the agents (or hosts) of the machines shown again"),
    Binding("enter", "details", "Details", id="fleet.details", show=False),
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
    # priority: as fleet.filter, so the keys typed right after it reach the box.
    Binding("slash", "search", "Search", id="history.search", priority=True,
            tooltip="Find runs by saved command, script, target, state or machine"),
    Binding("t", "today", "Today", id="history.today", tooltip="Only today's runs"),
    Binding("w", "last_week", "7 days", id="history.last_week",
            tooltip="Only the last 7 days' runs"),
    Binding("a", "all_dates", "All dates", id="history.all_dates", show=False,
            tooltip="Runs of any date"),
    Binding("o", "cycle_sort", "Sort", id="history.sort",
            tooltip="By started, status, machines, failures, command, or newest first"),
    Binding("O", "reverse_sort", "Reverse sort", id="history.reverse_sort", show=False,
            tooltip="Sort the other way round"),
]

DETAILS: list[BindingType] = [
    Binding("escape,q", "dismiss", "Close", id="details.close"),
]

RUN: list[BindingType] = [
    Binding("enter", "open_machine", "Open", id="run.open",
            tooltip="The machine's error and whole output, full screen (z again: back)"),
    Binding("z", "toggle_full_screen", "Full", id="run.full_screen",
            tooltip="The output pane full screen, or back beside the table"),
    Binding("y", "copy_output", "Copy", id="run.copy",
            tooltip="Copy this machine's output to the clipboard (OSC 52) and to a file"),
    Binding("w", "toggle_wrap", "Wrap", id="run.wrap", show=False,
            tooltip="Wrap long output lines, or cut them at the pane's edge"),
    Binding("x", "cancel_machine", "Cancel", id="run.cancel_machine",
            tooltip="Cancel the machine under the cursor"),
    Binding("g", "groups", "Groups", id="run.groups",
            tooltip="Group the machines whose outputs and exit codes are identical"),
    Binding("d", "diff", "Diff", id="run.diff",
            tooltip="Diff the output of this machine's group against the largest group's"),
    Binding("R", "rerun", "Rerun", id="run.rerun",
            tooltip="Run again some machines: failed, timed out, canceled or not started"),
    Binding("e", "export", "Export", id="run.export",
            tooltip="Write the run as JSON, CSV or a Markdown incident report"),
    Binding("X", "cancel_run", "Cancel all", id="run.cancel_run",
            tooltip="Cancel the whole run (asks first)"),
    Binding("escape,q", "back", "Back", id="run.back",
            tooltip="Leave full screen, or this screen; the run goes on"),
]

# Moving through the run's machine table.
# (g groups the outputs there, so the first machine is home only.)
TABLE: list[BindingType] = [
    Binding("up,k", "cursor_up", "Up", id="table.up", show=False),
    Binding("down,j", "cursor_down", "Down", id="table.down", show=False),
    Binding("pageup", "page_up", "Page up", id="table.page_up", show=False),
    Binding("pagedown", "page_down", "Page down", id="table.page_down", show=False),
    Binding("home", "first", "First machine", id="table.first", show=False),
    Binding("end,G", "last", "Last machine", id="table.last", show=False),
    Binding("o", "cycle_sort", "Sort", id="table.sort",
            tooltip="By state, elapsed, exit, out, machine, or none (or click a header)"),
    Binding("O", "reverse_sort", "Reverse sort", id="table.reverse_sort", show=False,
            tooltip="Sort the other way round"),
]

# Every other table (Textual's DataTable, through tui.widgets.vim_table.VimTable): as less.
VIM_TABLE: list[BindingType] = [
    Binding("j", "cursor_down", "Down", id="vim_table.down", show=False),
    Binding("k", "cursor_up", "Up", id="vim_table.up", show=False),
    Binding("g", "scroll_top", "First row", id="vim_table.first", show=False),
    Binding("G", "scroll_bottom", "Last row", id="vim_table.last", show=False),
]

# The groups view's table: as VIM_TABLE but for g, which leaves the groups view there
# (groups.back; home goes to the first group).
GROUP_TABLE: list[BindingType] = [
    Binding("j", "cursor_down", "Down", id="group_table.down", show=False),
    Binding("k", "cursor_up", "Up", id="group_table.up", show=False),
    Binding("G", "scroll_bottom", "Last group", id="group_table.last", show=False),
]

# The groups of identical output (g on the run screen).
GROUPS: list[BindingType] = [
    # priority: the group table would take enter for itself (and hide it from the footer).
    Binding("enter", "open_group", "Machines", id="groups.open", priority=True,
            tooltip="The machines of this group and their output"),
    Binding("m", "mark", "Mark", id="groups.mark", tooltip="Mark or unmark this group"),
    Binding("c", "compose", "Compose", id="groups.compose",
            tooltip="Compose a command for the marked groups' machines (else this group's)"),
    Binding("R", "rerun", "Rerun", id="groups.rerun",
            tooltip="This run's command again on the marked groups (else this one)"),
    Binding("d", "diff", "Diff", id="groups.diff",
            tooltip="Diff this group's output against the baseline group's"),
    Binding("b", "baseline", "Baseline", id="groups.baseline",
            tooltip="Diff and tell the rows apart against this group"),
    Binding("n", "toggle_noise", "Noise", id="groups.noise",
            tooltip="Group ignoring times, PIDs, addresses, ids, names"),
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
    Binding("s", "swap", "Swap sides", id="diff.swap",
            tooltip="Diff the baseline against this group instead"),
    Binding("escape,q", "back", "Back", id="diff.back"),
]

EXPORT: list[BindingType] = [
    Binding("ctrl+s", "write", "Write", id="export.write", priority=True,
            tooltip="Write the file (enter in the file name does too)"),
    Binding("escape", "cancel", "Cancel", id="export.cancel"),
]

# The full-output pane of the run screen, while it has focus (tab into it); keys as in less.
OUTPUT: list[BindingType] = [
    # priority: handled before the keys typed after it are handed to the view, so a fast
    # "/fail" searches for "fail" instead of toggling follow (f).
    Binding("slash", "search", "Search", id="output.search", priority=True,
            tooltip="Find a text in this output (n next, N previous)"),
    Binding("n", "next_match", "Next match", id="output.next_match", show=False),
    Binding("N", "previous_match", "Previous match", id="output.previous_match", show=False),
    Binding("f", "toggle_follow", "Follow", id="output.follow",
            tooltip="Follow new output, or stop following"),
    # Not g, as in less: on the run screen g groups the outputs, whatever has focus.
    Binding("home,less_than_sign", "top", "Top", id="output.top", show=False),
    Binding("G,end,greater_than_sign", "bottom", "End", id="output.bottom", show=False,
            tooltip="Go to the end and follow new output"),
    Binding("s", "switch_stream", "Stream", id="output.stream",
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
    Binding("ctrl+s", "save", "Save", id="compose.save", priority=True,
            tooltip="Save the scripts and parameters as a saved command (ctrl+p finds it)"),
    Binding("ctrl+t", "cycle_api", "Azure API", id="compose.api", priority=True, show=False,
            tooltip="Azure VMs: auto, managed or action Run Command API"),
]

# In the compose screen's script editors (tab moves focus on, as everywhere).
SCRIPT_EDITOR: list[BindingType] = [
    # ctrl+] too: without the kitty keyboard protocol (tmux, most terminals) ctrl+i is tab.
    Binding("ctrl+i,ctrl+right_square_bracket", "indent", "Indent", id="script_editor.indent",
            show=False, tooltip="Indent in the script editor (tab moves to the next field)"),
]

SAVE_COMMAND: list[BindingType] = [
    Binding("ctrl+s", "save", "Save", id="save_command.save", priority=True,
            tooltip="Save (enter in a field does too)"),
    Binding("escape", "cancel", "Cancel", id="save_command.cancel"),
]

COMMAND_LINE: list[BindingType] = [
    # Not priority: keys typed just before tab must reach the line first.
    Binding("tab", "complete", "Complete", id="command_line.complete",
            tooltip="Complete the command or name typed"),
    Binding("escape", "close", "Close", id="command_line.close"),
]

COMPOSE_CONFIRM: list[BindingType] = [
    Binding("enter", "confirm", "Run", id="compose.confirm_run"),
    Binding("escape", "cancel", "Back", id="compose.confirm_back"),
]


# The rerun dialog (R on the run screen): a checkbox per end state.
RERUN: list[BindingType] = [
    # priority: a focused checkbox would take enter to tick itself.
    Binding("enter", "confirm", "Rerun", id="rerun.confirm", priority=True,
            tooltip="Rerun the machines in the ticked states"),
    Binding("escape", "cancel", "Back", id="rerun.cancel"),
    Binding("down,j", "app.focus_next", "Next", id="rerun.next", show=False),
    Binding("up,k", "app.focus_previous", "Previous", id="rerun.previous", show=False),
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


class Chain(NamedTuple):
    """Groups of bindings active at once: a focused widget's, those of its ancestors, its
    screen's. The app's own bindings (``APP``) come last in every chain, all of them, or on
    a modal screen only those with priority (Textual stops the others at a modal screen).

    Attributes:
        where: Where this is, for messages ("the run screen's full output").
        groups: Names of groups in this module, the innermost (focused) first.
        modal: The screen is modal.
    """

    where: str
    groups: tuple[str, ...]
    modal: bool = False


CHAINS: tuple[Chain, ...] = (
    Chain("fleet screen", ("FLEET",)),
    Chain("fleet screen's machine table", ("VIM_TABLE", "FLEET")),
    Chain("host key review", ("HOST_KEYS",), modal=True),
    Chain("host key review's key table", ("VIM_TABLE", "HOST_KEYS"), modal=True),
    Chain("machine details", ("DETAILS",), modal=True),
    Chain("compose screen", ("COMPOSE",)),
    Chain("compose screen's script editor", ("SCRIPT_EDITOR", "COMPOSE")),
    Chain("run confirmation", ("COMPOSE_CONFIRM",), modal=True),
    Chain("run screen's machine table", ("TABLE", "RUN")),
    Chain("run screen's full output", ("OUTPUT", "RUN")),
    Chain("run screen's output search", ("OUTPUT_SEARCH", "RUN")),
    Chain("question", ("ASK",), modal=True),
    Chain("rerun dialog", ("RERUN",), modal=True),
    Chain("groups screen", ("GROUPS",)),
    Chain("groups screen's group table", ("GROUP_TABLE", "GROUPS")),
    Chain("group screen", ("GROUP",)),
    Chain("group screen's machine table", ("VIM_TABLE", "GROUP")),
    Chain("diff screen", ("DIFF",)),
    Chain("export dialog", ("EXPORT",), modal=True),
    Chain("history screen", ("HISTORY",)),
    Chain("history screen's run table", ("VIM_TABLE", "HISTORY")),
    Chain("key sheet", ("VIM_TABLE", "KEY_SHEET"), modal=True),
    Chain("save command dialog", ("SAVE_COMMAND",), modal=True),
    Chain("command line", ("COMMAND_LINE",), modal=True),
)
"""Every place keys are taken, with the groups of bindings active there together. Within
one chain no key may trigger two bindings (a test checks every group is in one)."""

SHADOWS: frozenset[tuple[str, str]] = frozenset({
    # esc closes the innermost thing first: the search bar, then the screen.
    ("output.search_close", "run.back"),
})
"""(inner, outer) bindings of one chain that share a key on purpose: the focused widget's
takes it first. Any other shared key is a collision."""


class Collision(NamedTuple):
    """Two bindings of one chain that one key would trigger."""

    key: str
    first: str
    second: str
    where: str

    def __str__(self) -> str:
        return f"{self.key} is the key of both {self.first} and {self.second} ({self.where})"


def binding_keys(binding: Binding, user_keymap: Mapping[str, str] | None = None
                 ) -> tuple[str, ...]:
    """The keys that trigger ``binding``, after the user's override, as Textual names them
    (``?`` is ``question_mark``)."""
    keys = (user_keymap or {}).get(binding.id or "") or binding.key
    return tuple(b.key for b in Binding.make_bindings([Binding(keys, binding.action)]))


def chain_bindings(chain: Chain) -> list[Binding]:
    """The bindings of ``chain``, innermost first, the app's last."""
    groups = dict(contexts())
    bindings = [b for name in chain.groups for b in groups[name]]
    return bindings + [b for b in APP if isinstance(b, Binding)
                       and (b.priority or not chain.modal)]


def collisions(user_keymap: Mapping[str, str] | None = None) -> list[Collision]:
    """Every key that would trigger two bindings of one chain (see :data:`CHAINS`), each
    pair once, with the user's overrides applied; none is the goal."""
    found: dict[tuple[str, str], Collision] = {}
    for chain in CHAINS:
        taken: dict[str, str] = {}
        for binding in chain_bindings(chain):
            binding_id = binding.id or binding.action
            for key in binding_keys(binding, user_keymap):
                other = taken.setdefault(key, binding_id)
                pair = (other, binding_id)
                if other != binding_id and pair not in SHADOWS and pair not in found:
                    found[pair] = Collision(key, other, binding_id, chain.where)
    return list(found.values())


class KeymapError(ValueError):
    """A config file whose ``[keymap]`` cannot be read at all."""


class Keymap(NamedTuple):
    """A user's ``[keymap]`` as applied, and what in it was not.

    Attributes:
        overrides: Binding id → keys, for every entry that is applied.
        problems: One message per entry that is not (its binding id, and why).
    """

    overrides: dict[str, str]
    problems: list[str]


def load_keymap(path: Path) -> Keymap:
    """The ``[keymap]`` table of ``path`` (binding id → keys); empty if there is none.

    An entry that names no binding, gives no key, or makes a key trigger two bindings in one
    place (:func:`collisions`) is left out with a problem naming it; the others apply.

    Raises:
        KeymapError: The file cannot be used (unreadable, not yours, not TOML), or its
            ``keymap`` is not a table.
    """
    try:
        data = read_config(path)
    except ConfigFileError as exc:
        raise KeymapError(str(exc)) from None
    table = data.get("keymap", {})
    if not isinstance(table, dict):
        raise KeymapError(f"{path}: keymap: must be a table of binding id = \"keys\"")
    known = set(all_binding_ids())
    overrides: dict[str, str] = {}
    problems: dict[str, str] = {}  # binding id → why its entry is left out
    for binding_id, keys in table.items():
        if binding_id not in known:
            problems[binding_id] = f"no such binding; known: {', '.join(sorted(known))}"
        elif not isinstance(keys, str) or any(not k.strip() for k in keys.split(",")):
            problems[binding_id] = "give the keys as a string, e.g. \"m\" or \"ctrl+m,m\""
        else:
            overrides[binding_id] = keys
    order = list(table)
    while clashes := [c for c in collisions(overrides)
                      if c.first in overrides or c.second in overrides]:
        clash = clashes[0]
        # The later of the two entries goes (the earlier may be one of a swap of keys).
        dropped = max((i for i in (clash.first, clash.second) if i in overrides),
                      key=order.index)
        kept = clash.second if dropped == clash.first else clash.first
        problems[dropped] = (f"not applied: {clash.key} would trigger both {dropped} and "
                             f"{kept} ({clash.where})")
        del overrides[dropped]
    return Keymap(overrides, [f"{path}: keymap.{shown_key(binding_id)}: {problems[binding_id]}"
                              for binding_id in order if binding_id in problems])
