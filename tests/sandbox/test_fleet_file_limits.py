"""A fleet file cannot make the loader hang, crash or print megabytes: templates are checked
before they expand, strings hold no control characters, the key must be base64."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from core.sandbox.fleet import FleetFileError, load_fleet, parse_fleet

SUB = "00000000-0000-4000-8000-000000000001"
MACHINE = {"name": "web-01", "subscription": SUB, "resource_group": "rg-web",
           "location": "westeurope"}


def refusal(data: dict[str, Any]) -> str:
    started = time.monotonic()
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(data)
    # A guard against a hang or a multi-gigabyte expansion, not a speed goal.
    assert time.monotonic() - started < 30.0
    message = str(caught.value)
    assert "\n" not in message and len(message) < 500, message[:500]
    return message


@pytest.mark.parametrize("template", [
    "web-{n:>50000000}",  # 50 MB per name, before this was checked
    "web-{n:{n}}", "web-{n.real}", "web-{n[0]}", "web-{n!r}", "web-{}", "web-{m}",
    "web-{n:x<99}",
])
def test_a_name_template_beyond_the_placeholder_is_refused_unexpanded(template: str) -> None:
    message = refusal({"machines": [{**MACHINE, "name": template, "count": 2}]})
    assert message.startswith("machines[0].name: ")
    assert "{n}" in message


@pytest.mark.parametrize("template", ["web-{n}", "web-{n:02}", "web-{n:03d}", "w{n:x}-{n}"])
def test_the_usual_templates_still_expand(template: str) -> None:
    fleet = parse_fleet({"machines": [{**MACHINE, "name": template, "count": 3}]})
    assert [m.name for m in fleet.machines] == [template.format(n=n) for n in (1, 2, 3)]


@pytest.mark.parametrize(("field", "value"), [
    ("resource_group", "rg\x01web"), ("subscription", SUB + "\n"), ("location", "west\x7f"),
    ("agent_version", "1.0\x1b[31m"), ("tags", {"env": "prod\r"}), ("tags", {"e\tv": "x"}),
])
def test_control_characters_in_a_machine_string_are_refused(field: str, value: Any) -> None:
    message = refusal({"machines": [{**MACHINE, field: value}]})
    assert message.startswith(f"machines[0].{field}")
    assert "control character" in message


def test_control_characters_in_the_sandbox_table_are_refused() -> None:
    message = refusal({"sandbox": {"tenant": "t\x00"}, "machines": [MACHINE]})
    assert message.startswith("sandbox.tenant: ")


def test_simulated_output_may_hold_newlines_and_tabs() -> None:
    fleet = parse_fleet({"machines": [{**MACHINE, "executor": "simulated",
                                       "simulate": {"output": "a\tb\nc\n"}}]})
    assert fleet.machines[0].simulate.output == "a\tb\nc\n"


@pytest.mark.parametrize("key", ["not base64!", "abc", "===="])
def test_a_storage_key_that_is_not_base64_is_refused(key: str) -> None:
    message = refusal({"storage": {"key": key}, "machines": [MACHINE]})
    assert message.startswith("storage.key: ")
    assert "base64" in message


def test_a_fleet_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_bytes(b'[[machines]]\nname = "w\xff"\n')
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    assert str(caught.value).startswith(f"{path}: not UTF-8")


def test_a_fleet_path_with_an_unknown_user_is_named() -> None:
    with pytest.raises(FleetFileError) as caught:
        load_fleet(Path("~nosuchuser/fleet.toml"))
    assert "~nosuchuser: no such user" in str(caught.value)


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_fleet_file_others_may_change_is_refused(tmp_path: Path, mode: int) -> None:
    # A fleet file says what runs where (as root on this machine, by default): like an
    # inventory it must be the user's own.
    path = tmp_path / "fleet.toml"
    path.write_text('[[machines]]\n' + "".join(f'{k} = "{v}"\n' for k, v in MACHINE.items()))
    path.chmod(mode)
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: writable by ")
    assert "chmod go-w" in message
    path.chmod(0o644)
    load_fleet(path)
