"""Issue 19's incident walk in the installed ``fleetrun``, in tmux, keys only, on the
sandbox fleet: a saved shell-only command on a Linux+Windows selection (the Windows
machines are said to be left out), its output grouped, one group marked and rerun, and
both runs found in history by the saved command's name, the rerun with its chain."""

from __future__ import annotations

import re

from tests.cli.conftest import Home
from tests.tui.conftest import StartApp
from tests.tui.saved_fixtures import write_commands
from tests.tui.tmux_terminal import Terminal, line_with

NAME = "disk-triage-7q"
"""Distinctive: found by search only where the journal recorded the saved command."""

SAVED = f"""\
name = "{NAME}"
description = "Which disks are nearly full"

[scripts]
shell = '''
case "$HOSTNAME" in
  web-*) echo "disk 97% full" ;;
  *) echo "disk fine" ;;
esac
'''
"""
"""Shell only: the Windows machines have no script. Two groups of output: web-* and the rest."""

MACHINES = "web-01,web-02,db-01,win-app-01,win-app-02"
RUN_ID = r"[0-9a-f]{8,}"


def compose_saved_on_a_mixed_selection(term: Terminal) -> None:
    term.wait_for("22 machines", "Ready")
    term.keys("/")
    term.wait_for("filter: text")  # the filter box has the keyboard now
    term.keys(f"name:{MACHINES}", literal=True)
    term.keys("Enter")
    term.wait_for("5 shown")
    term.keys("a")
    term.wait_for("5 marked")
    term.keys("C-p")  # the palette opens saved commands for the marked machines
    term.wait_for("🔎")
    term.keys(NAME, literal=True)
    term.wait_for("Which disks are nearly full · linux")
    term.keys("Enter")
    term.wait_for(f"saved command {NAME}", "compose for 5 machines (3 linux, 2 windows)",
                  "2 windows · no script: left out")


def test_a_group_of_a_saved_commands_run_rerun_and_found_in_history(
        start_app: StartApp, tmux_home: Home) -> None:
    write_commands(tmux_home.config, {"disk-triage.toml": SAVED})
    term = start_app(160, 45)
    compose_saved_on_a_mixed_selection(term)

    term.keys("C-r")
    shown = term.wait_for("enter runs")
    assert f"⊘ 2 windows machine(s) left out: {NAME} has no PowerShell" in shown, shown
    assert "(win-app-01, win-app-02)" in shown, shown
    assert "3 linux machine(s) will run RunShellScript" in shown, shown
    term.keys("Enter")
    first = term.wait_for_match(rf"sandbox · run ({RUN_ID})").group(1)
    term.wait_for("✓ Succeeded 3", "3/3")

    term.keys("g")
    shown = term.wait_for("2 groups of identical output across 3 machines")
    group_row = line_with(shown, "web-01, web-02")
    assert re.match(r"\s*1\s+2\s", group_row), shown  # group 1: the 2 web machines
    term.keys("m")
    shown = term.wait_for("1 marked (2 machines)")
    assert line_with(shown, "web-01, web-02").lstrip().startswith("● 1"), shown

    term.keys("R")
    shown = term.wait_for("Rerun on 2 (y)")
    assert "again on the 2 machines of" in shown, shown
    term.keys("y")
    rerun = term.wait_for_match(rf"run ({RUN_ID}) · from run {first}").group(1)
    shown = term.wait_for("✓ Succeeded 2", "2/2")
    assert "db-01" not in shown, shown

    # Back to the fleet, one screen at a time: the rerun, the groups, the first run.
    term.keys("Escape")
    term.wait_for("1 marked (2 machines)")
    term.keys("Escape")
    term.wait_for(f"sandbox · run {first}", "✓ Succeeded 3")
    term.keys("Escape")
    term.wait_for("22 machines · ")
    term.keys("H")
    term.wait_for("fleetrun — history", "2 run(s)")

    term.keys("/")
    term.wait_for("search: command name")
    term.keys("no-such-command", literal=True)
    term.wait_for("0 of 2 run(s) match 'no-such-command'")
    term.keys("Escape")  # clears the search
    term.wait_for("2 run(s) · enter opens one")
    term.keys("/")
    term.wait_for("search: command name")
    term.keys(NAME, literal=True)
    term.keys("Enter")
    shown = term.wait_for(f"2 of 2 run(s) match '{NAME}'")
    rerun_row, first_row = line_with(shown, rerun), line_with(shown, f"{first}  ")
    assert NAME in rerun_row and NAME in first_row, shown
    assert f"↳ {first} · group 1 (2 machines, exit 0)" in rerun_row, shown
    assert "↳" not in first_row, shown
    term.keys("C-q")


def test_at_80x24_the_fleet_and_compose_footers_keep_their_keys_whole(
        start_app: StartApp) -> None:
    term = start_app(80, 24)
    # The footer is fitted to the width after its first layout: wait for its keys.
    fleet_keys = ("/ Filter", "space Mark", "c Compose", "? Keys", "^p Palette")
    shown = term.wait_for("22 machines", *fleet_keys)
    assert all(key in line_with(shown, "^p Palette") for key in fleet_keys), shown
    term.keys("a")
    term.wait_for("22 marked")
    term.keys("c")
    compose_keys = ("^⏎ Run", "esc Cancel", "^s Save", "^p Palette")
    shown = term.wait_for("compose for 22 machines (17 linux, 5 windows)", *compose_keys)
    assert all(key in line_with(shown, "^p Palette") for key in compose_keys), shown
    term.keys("C-q")
