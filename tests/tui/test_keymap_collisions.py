"""No key triggers two bindings in one place: by default, after a user's [keymap], and the
declared places (tui.keymap.CHAINS) are those the app really has."""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from tests.tui.test_fleet_screen import FLEET
from tests.tui.test_groups_diff_export import finished_run
from tests.tui.test_key_sheet import settled_fleet_screen
from tests.tui.test_run_screen import SIZE, RunApp, until
from tui import keymap
from tui.app import FleetrunApp
from tui.keymap import CHAINS, SHADOWS, Collision, binding_keys, chain_bindings, collisions
from tui.screens.diff import DiffScreen
from tui.screens.export import ExportDialog
from tui.screens.group_members import GroupScreen
from tui.screens.groups import GroupsScreen
from tui.screens.history import HistoryScreen
from tui.screens.key_sheet import KeySheet
from tui.screens.run import RunScreen
from tui.widgets.fleet.machine_details import MachineDetails
from tui.widgets.fleet.machine_table import MachineTable

GROUPS = dict(keymap.contexts())


def test_every_group_of_bindings_acts_somewhere_declared() -> None:
    declared = {name for chain in CHAINS for name in chain.groups}
    assert declared | {"APP"} == set(GROUPS)


def test_no_two_default_bindings_share_a_key_in_one_place() -> None:
    assert collisions() == []


def test_the_defaults_no_longer_give_g_two_meanings_on_the_run_screen() -> None:
    """g was the full output's top (as in less) and the run screen's groups at once."""
    assert collisions({"output.top": "g"}) == [
        Collision("g", "output.top", "run.groups", "run screen's full output")]


def test_any_override_onto_a_key_taken_in_the_same_place_collides() -> None:
    checked = 0
    for chain in CHAINS:
        for one, other in itertools.permutations(chain_bindings(chain), 2):
            if one.id == other.id or (one.id, other.id) in SHADOWS \
                    or (other.id, one.id) in SHADOWS:
                continue
            assert one.id and other.id
            key = binding_keys(other)[0]
            found = collisions({one.id: key})
            # Named with the binding that has the key first in the chain (maybe not other).
            assert any(one.id in (c.first, c.second) and c.key == key
                       for c in found), (one.id, key, other.id)
            checked += 1
    assert checked > 300


def test_app_keys_reach_a_modal_screen_only_with_priority() -> None:
    """? opens the key sheet and closes it there: the app's ? stops at the modal sheet."""
    assert collisions({"keys.close": "question_mark"}) == []
    assert collisions({"keys.close": "ctrl+q"}) == [
        Collision("ctrl+q", "keys.close", "app.quit", "key sheet")]


def test_declared_shadows_are_real_and_still_shared() -> None:
    for inner, outer in SHADOWS:
        chain = next(c for c in CHAINS if any(b.id == inner for b in chain_bindings(c)))
        bindings = {b.id: b for b in chain_bindings(chain)}
        assert outer in bindings
        assert set(binding_keys(bindings[inner])) & set(binding_keys(bindings[outer]))


# -- the user's [keymap] -----------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_an_override_that_collides_is_refused_and_the_others_apply(tmp_path: Path) -> None:
    path = write(tmp_path, '[keymap]\n"output.top" = "g"\n"fleet.mark" = "m"\n'
                           '"run.cancel_machine" = "R"\n')
    loaded = keymap.load_keymap(path)
    assert loaded.overrides == {"fleet.mark": "m"}
    assert loaded.problems == [
        f"{path}: keymap.output.top: not applied: g would trigger both output.top and "
        "run.groups (run screen's full output)",
        f"{path}: keymap.run.cancel_machine: not applied: R would trigger both "
        "run.cancel_machine and run.rerun (run screen's machine table)",
    ]


def test_two_overrides_that_swap_keys_are_both_applied(tmp_path: Path) -> None:
    path = write(tmp_path, '[keymap]\n"run.groups" = "h"\n"output.top" = "g"\n')
    assert keymap.load_keymap(path) == keymap.Keymap({"run.groups": "h", "output.top": "g"},
                                                     [])


def test_an_override_colliding_with_a_later_one_drops_the_later(tmp_path: Path) -> None:
    path = write(tmp_path, '[keymap]\n"fleet.mark" = "m"\n"fleet.compose" = "m"\n')
    loaded = keymap.load_keymap(path)
    assert loaded.overrides == {"fleet.mark": "m"}
    (problem,) = loaded.problems
    assert "keymap.fleet.compose" in problem and "fleet.mark" in problem and " m " in problem


def test_unknown_ids_and_empty_keys_are_reported_and_the_rest_apply(tmp_path: Path) -> None:
    path = write(tmp_path, '[keymap]\n"fleet.nope" = "m"\n"fleet.mark" = ""\n'
                           '"fleet.filter" = "f,,g"\n"fleet.compose" = "n"\n')
    loaded = keymap.load_keymap(path)
    assert loaded.overrides == {"fleet.compose": "n"}
    assert [p.split(": ")[1] for p in loaded.problems] == [
        "keymap.fleet.nope", "keymap.fleet.mark", "keymap.fleet.filter"]


def test_a_file_that_is_not_toml_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(keymap.KeymapError, match="not valid TOML"):
        keymap.load_keymap(write(tmp_path, "[keymap\n"))


async def test_the_app_says_which_override_it_refused_and_applies_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(
        '[keymap]\n"fleet.mark" = "m"\n"fleet.compose" = "slash"\n')
    (tmp_path / "fleet.toml").write_text(FLEET)
    app = FleetrunApp([f"sandbox:{tmp_path / 'fleet.toml'}"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled_fleet_screen(pilot, app)
        assert app.user_keymap == {"fleet.mark": "m"}
        assert any("keymap.fleet.compose: not applied: slash would trigger both "
                   "fleet.compose and fleet.filter (fleet screen)" in str(n.message)
                   for n in app._notifications)
        await pilot.press("m")  # the override that was applied
        assert len(screen.query_one(MachineTable).marked) == 1
        await pilot.press("slash")  # still the filter's, not compose's
        assert isinstance(app.focused, Input) and app.screen is screen


# -- the declared chains are the app's ----------------------------------------------------------


def groups_of(node: Widget | Screen[object]) -> tuple[str, ...]:
    """The groups of bindings of ``node`` and its ancestors up to the screen, innermost
    first (what is active while it has focus; the app's come after, in every chain)."""
    names = []
    for each in node.ancestors_with_self:
        if isinstance(each, App):
            break
        names += [name for name, group in GROUPS.items()
                  if getattr(type(each), "BINDINGS", None) is group]
    return tuple(names)


def assert_declared(screen: Screen[object], seen: set[tuple[str, ...]]) -> None:
    """Each widget of ``screen`` that can take focus acts in a chain of :data:`CHAINS`,
    modal as the screen is; the screen itself (nothing focused) in the end of one."""
    for node in [screen, *screen.query("*")]:
        if node is not screen and not node.can_focus:
            continue
        groups = groups_of(node)
        chains = [c for c in CHAINS if c.groups[len(c.groups) - len(groups):] == groups]
        if node is not screen:
            chains = [c for c in chains if c.groups == groups]
        seen.add(groups)
        assert chains, (type(screen).__name__, node, groups)
        assert all(c.modal == screen.is_modal for c in chains), (type(screen).__name__, groups)


async def test_every_place_the_run_screen_and_its_views_take_keys_is_declared(
        tmp_path: Path) -> None:
    seen: set[tuple[str, ...]] = set()
    app = RunApp(await finished_run(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        await pilot.pause()
        assert_declared(app.screen, seen)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GroupsScreen), "groups")
        assert_declared(app.screen, seen)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, GroupScreen), "a group")
        assert_declared(app.screen, seen)
        await pilot.press("escape", "escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "back")
        await pilot.press("down", "d")  # m001: not in the largest group
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        assert_declared(app.screen, seen)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "back")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog), "export")
        assert_declared(app.screen, seen)
    assert {("TABLE", "RUN"), ("OUTPUT", "RUN"), ("OUTPUT_SEARCH", "RUN")} <= seen


async def test_every_place_the_fleet_screen_and_its_views_take_keys_is_declared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "fleet.toml").write_text(FLEET)
    seen: set[tuple[str, ...]] = set()
    app = FleetrunApp([f"sandbox:{tmp_path / 'fleet.toml'}"])
    async with app.run_test(size=SIZE) as pilot:
        await settled_fleet_screen(pilot, app)
        assert_declared(app.screen, seen)
        views: list[tuple[str, type[Screen[Any]]]] = [
            ("enter", MachineDetails), ("question_mark", KeySheet), ("H", HistoryScreen)]
        for key, kind in views:
            await pilot.press(key)
            await until(pilot, partial(lambda k: isinstance(app.screen, k), kind),
                        kind.__name__)
            assert_declared(app.screen, seen)
            await pilot.press("escape")
            await pilot.pause()
    assert {("FLEET",), ("DETAILS",), ("KEY_SHEET",), ("HISTORY",)} <= seen


def test_binding_keys_are_as_textual_names_them() -> None:
    assert binding_keys(Binding("?", "help", id="x")) == ("question_mark",)
    assert binding_keys(Binding("escape,q", "x", id="y"), {"y": "ctrl+g, <"}) == \
        ("ctrl+g", "less_than_sign")
