"""Checks of every starter script that do not need it to run.

There is no PowerShell here (and no internet to get it), so the PowerShell scripts are
parsed with tree-sitter's PowerShell grammar: no syntax errors, nothing newer than Windows
PowerShell 5.1 (the handler's interpreter), ASCII only (5.1 reads a BOM-less script as the
ANSI code page), and a ``param()`` block declaring exactly the table's parameters (the
handler passes ``-name value``). Shell scripts also run on the sandbox
(test_starter_commands); ``bash -n`` here also covers the branches this machine does not take.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from core.library import SavedCommand, load_library
from core.model import CommandId

STARTER = load_library(Path("/nonexistent/fleetrun-test-user-dir")).sorted()
POWERSHELL = [c for c in STARTER if CommandId.POWERSHELL in c.scripts]
SHELL = [c for c in STARTER if CommandId.SHELL in c.scripts]

# PowerShell 7 only: pipeline chains, null-coalescing and null-conditional operators.
PWSH7_TOKENS = {"&&", "||", "??", "??=", "?."}


@pytest.fixture(scope="module")
def parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def errors(node: Node, source: bytes) -> list[str]:
    return [f"line {n.start_point[0] + 1}: {source[n.start_byte:n.end_byte][:60]!r}"
            for n in walk(node) if n.type == "ERROR" or n.is_missing]


def declared_parameters(root: Node) -> list[str]:
    blocks = [n for n in root.children if n.type == "param_block"]
    names = []
    for block in blocks:
        for node in walk(block):
            if node.type == "script_parameter":
                variable = next(c for c in node.children if c.type == "variable")
                assert variable.text is not None
                names.append(variable.text.decode().lstrip("$"))
    return names


@pytest.mark.parametrize("command", POWERSHELL, ids=lambda c: c.name)
def test_powershell_script_parses_for_windows_powershell(parser: Parser,
                                                         command: SavedCommand) -> None:
    script = command.scripts[CommandId.POWERSHELL]
    assert script.strip()
    assert script.isascii(), "Windows PowerShell 5.1 reads a BOM-less script as ANSI"
    source = script.encode("utf-8")
    tree = parser.parse(source)
    assert errors(tree.root_node, source) == []
    newer = {n.type for n in walk(tree.root_node)} & PWSH7_TOKENS
    assert not newer, f"PowerShell 7 only: {newer}"


@pytest.mark.parametrize("command", POWERSHELL, ids=lambda c: c.name)
def test_powershell_param_block_matches_the_parameter_table(parser: Parser,
                                                            command: SavedCommand) -> None:
    tree = parser.parse(command.scripts[CommandId.POWERSHELL].encode("utf-8"))
    declared = declared_parameters(tree.root_node)
    assert [n.lower() for n in declared] == [p.name.lower() for p in command.parameters]


@pytest.mark.parametrize("command", SHELL, ids=lambda c: c.name)
def test_shell_script_is_valid_bash(command: SavedCommand) -> None:
    result = subprocess.run(["bash", "-n"], input=command.scripts[CommandId.SHELL],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", STARTER, ids=lambda c: c.name)
def test_every_script_documents_its_exit_codes(command: SavedCommand) -> None:
    for script in command.scripts.values():
        assert "# Exit code" in script


def test_the_checks_catch_what_they_look_for(parser: Parser) -> None:
    """The grammar flags the mistakes these tests exist for (else they could never fail)."""
    broken = b"if ($a { Write-Output 1 }"
    assert errors(parser.parse(broken).root_node, broken)
    chained = parser.parse(b"Get-Thing && Write-Output ok").root_node
    assert {n.type for n in walk(chained)} & PWSH7_TOKENS
    params = parser.parse(b"param([string]$server, $port = '1')\nWrite-Output $server").root_node
    assert declared_parameters(params) == ["server", "port"]
