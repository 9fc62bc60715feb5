"""The action API's body and result as data: no server needed."""

from __future__ import annotations

import pytest

from core.azure.action_commands import (
    BuiltinCommand,
    InvalidActionResult,
    action_body,
    parse_result,
    split_linux_message,
)
from core.model import Command, CommandId, OsType, Parameter


def linux(message: str) -> dict[str, object]:
    return {"value": [{"code": "ProvisioningState/succeeded", "level": "Info",
                       "displayStatus": "Provisioning succeeded", "message": message}]}


def test_linux_message_splits_at_its_markers() -> None:
    out = parse_result(linux("Enable succeeded: \n[stdout]\nhello\n\n[stderr]\noops\n"))
    assert (out.stdout, out.stderr) == (b"hello\n", b"oops\n")


def test_linux_message_with_empty_streams() -> None:
    assert split_linux_message("Enable succeeded: \n[stdout]\n\n[stderr]\n") == ("", "")


def test_linux_message_without_stderr_is_all_stdout() -> None:
    assert split_linux_message("Enable succeeded: \n[stdout]\nonly out\n") == ("only out\n", "")


def test_linux_message_without_stdout_is_all_stderr() -> None:
    assert split_linux_message("Enable succeeded: \n[stderr]\nonly err") == ("", "only err")


def test_linux_message_without_markers_keeps_everything() -> None:
    assert split_linux_message("Enable succeeded: something else") == (
        "Enable succeeded: something else", "")


def test_windows_statuses_are_the_two_streams() -> None:
    body = {"value": [
        {"code": "ComponentStatus/StdOut/succeeded", "message": "This is a sample"},
        {"code": "ComponentStatus/StdErr/succeeded", "message": ""}]}
    out = parse_result(body)
    assert (out.stdout, out.stderr) == (b"This is a sample", b"")


def test_the_operation_status_form_carries_the_result_in_properties_output() -> None:
    body = {"status": "Succeeded", "properties": {"output": linux("[stdout]\nx\n[stderr]\ny")}}
    out = parse_result(body)
    assert (out.stdout, out.stderr) == (b"x", b"y")


def test_each_stream_is_cut_to_its_last_4096_bytes() -> None:
    out = parse_result(linux("[stdout]\n" + "a" * 5000 + "b\n[stderr]\n"))
    assert len(out.stdout) == 4096 and out.stdout.endswith(b"b")
    # Cut at a character boundary, never inside one.
    out = parse_result(linux("[stdout]\n" + "✓" * 2000))
    assert out.stdout == "✓".encode() * 1365


def test_a_result_without_value_is_refused() -> None:
    with pytest.raises(InvalidActionResult, match="'value'"):
        parse_result({"status": "Succeeded"})


def test_body_has_script_lines_and_names_unnamed_values_as_az_does() -> None:
    command = Command(CommandId.SHELL, "echo a\necho b", parameters=(
        Parameter("", "one"), Parameter("X", "x"), Parameter("", "two"),
        Parameter("S", "secret", protected=True)))
    assert action_body(command) == {
        "commandId": "RunShellScript", "script": ["echo a", "echo b"],
        "parameters": [{"name": "arg1", "value": "one"}, {"name": "X", "value": "x"},
                       {"name": "arg2", "value": "two"}, {"name": "S", "value": "secret"}]}


def test_a_builtin_body_names_the_builtin_and_sends_no_script() -> None:
    command = Command(CommandId.POWERSHELL, "", parameters=(Parameter("RDPPort", "3390"),),
                      builtin="SetRDPPort")
    assert action_body(command) == {"commandId": "SetRDPPort",
                                    "parameters": [{"name": "RDPPort", "value": "3390"}]}


def test_builtin_document_is_read_with_its_parameters() -> None:
    found = BuiltinCommand.parse({
        "id": "SetRDPPort", "osType": "Windows", "label": "Set Remote Desktop port",
        "description": "d", "script": [],
        "parameters": [{"name": "RDPPort", "type": "string", "defaultValue": "3389"}]}, "x")
    assert found.os is OsType.WINDOWS and found.parameters[0].default == "3389"
    with pytest.raises(InvalidActionResult, match="osType"):
        BuiltinCommand.parse({"id": "x", "osType": "Plan9"}, "x")
