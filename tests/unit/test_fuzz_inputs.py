"""Fuzzing every input fleetrun reads: no traceback, and every error names its file and field.

Structured-but-hostile documents (right keys with wrong types, huge numbers, control
characters, ``~nosuchuser`` paths, format specs, explosive patterns, deep nesting) and plain
random bytes go to each loader: config.toml, the three inventory formats, ssh_config, saved
commands, sandbox fleet files and themes. Each may refuse its input, only with its own
documented error, in one line that starts with the file's path. Through the CLI
(``tui.cli.main`` in this process, on flags and on such files) nothing may escape: no
traceback, an exit code of 0, 1 or 2, and an error that names the file it is about.

Hypothesis runs derandomized (the same examples on every run, so CI is reproducible) with a
small example count per target: the whole module takes seconds, not minutes.
``FLEETRUN_FUZZ_EXAMPLES=2000`` hunts with that many fresh random examples per target.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import tomli_w
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.azure.settings import KEYS as AZURE_KEYS
from core.azure.settings import SettingsError, load_azure_settings
from core.config_file import ConfigFileError, read_config
from core.fleet.default_fleet import DefaultFleetError, default_fleet
from core.inventory.ansible_file import load_ansible
from core.inventory.errors import InventoryError
from core.inventory.ssh_config import load_ssh_config
from core.inventory.toml_inventory import load_toml_inventory
from core.library import LibraryError, ParameterError, read_command
from core.library.files import PARAMETER_KEYS, TOP_KEYS
from core.model import CommandId
from core.sandbox.fleet import FleetFileError, load_fleet
from tui import keymap, themes
from tui.cli import main

HUNT = int(os.environ.get("FLEETRUN_FUZZ_EXAMPLES", "0"))
"""Set it (e.g. 2000) to hunt for new crashes: that many random examples per target."""
FUZZ = settings(derandomize=not HUNT, deadline=None, max_examples=HUNT or 100, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
CLI_FUZZ = settings(FUZZ, max_examples=HUNT or 40)

# -- hostile values --------------------------------------------------------------------------

HOSTILE_TEXT = [
    "", " ", "~nosuchuser/.ssh/id", "~nosuchuser", "~/x", "~", "{n:>999999999}", "{n}",
    "{n[0]}", "{n.real}", "{}", "{{", "}", "\x00", "a\x1b[31mb", "line\nbreak", "tab\there",
    "\r", "\u202eevil", "\x7f", "^(a|a)+$", "(", "[", "[1:99999999]", "web[01:", "web[a:9]",
    "a" * 3000, "%h", "%%", "*", "!", "#", "=", ";", "ansible_host", "{{ var }}", "-1", "0",
    "65536", "sandbox", "local", "nan", "inf", "racwl", "http://x", "https://@", "sig=x",
    "00000000-0000-0000-0000-000000000000", "fleetrun-dark", "ctrl+q", "fleet.mark", "Host",
    "not base64!", "YWJj", "web-{n:02}", "web-{n:x<99}", "../../etc/passwd", "/dev/null",
]
# No surrogates: a file is written as UTF-8 (invalid UTF-8 comes from the raw bytes instead).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
STRINGS = st.one_of(st.sampled_from(HOSTILE_TEXT), TEXT)
SCALARS = st.one_of(
    STRINGS, st.booleans(), st.integers(),
    st.sampled_from([0, -1, 1, 22, 65535, 65536, 100_000, 2**31, 2**63 - 1, -(2**63), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
KEYS = st.one_of(st.sampled_from(HOSTILE_TEXT[:20]), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)

DEEP = ["a = " + "[" * 1000 + "]" * 1000, "a = " + "{b = " * 1000 + "1" + "}" * 1000]
"""Nesting past Python's stack for tomllib (PyYAML gets its own: it is slow to unwind)."""
DEEP_YAML = ["[" * 700, "{" * 700, "- " * 1500 + "x"]


def key_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document: each key of each table, each item of each list."""
    found = [prefix]
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) \
        if isinstance(doc, list) else []
    for key, value in items:
        found += key_paths(value, (*prefix, key))
    return found


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` (a good document) with one to three places replaced, removed or added to:
    the loader gets past the first field and each later one is tried too."""
    places = [path for path in key_paths(base) if path]

    def apply(edits: list[tuple[tuple[Any, ...], str, Any, str]]) -> dict[str, Any]:
        doc = copy.deepcopy(base)
        for path, how, value, key in edits:
            parent: Any = doc
            try:
                for step in path[:-1]:
                    parent = parent[step]
                if how == "replace":
                    parent[path[-1]] = value
                elif how == "remove":
                    del parent[path[-1]]
                elif isinstance(parent[path[-1]], dict):
                    parent[path[-1]][key] = value
                elif isinstance(parent[path[-1]], list):
                    parent[path[-1]].append(value)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier edit took this place away
        return doc

    edit = st.tuples(st.sampled_from(places), st.sampled_from(["replace", "remove", "add"]),
                     VALUES, KEYS)
    return st.lists(edit, min_size=1, max_size=3).map(apply)


def table(known: tuple[str, ...], values: st.SearchStrategy[Any] = VALUES
          ) -> st.SearchStrategy[dict[str, Any]]:
    """A table with some of ``known`` keys (and now and then an unknown one), hostile values."""
    return st.dictionaries(st.one_of(st.sampled_from(known), KEYS), values, max_size=6)


def dump(doc: dict[str, Any]) -> bytes:
    try:
        return tomli_w.dumps(doc).encode("utf-8")
    except (TypeError, ValueError):
        return b"# tomli-w cannot write this one\n"


def toml_text(documents: st.SearchStrategy[dict[str, Any]],
              good: dict[str, Any] | None = None) -> st.SearchStrategy[bytes]:
    """TOML written from ``documents`` or from mutations of ``good``, or broken TOML,
    random bytes or deep nesting."""
    written = [mutated(good).map(dump)] * 3 if good is not None else []
    return st.one_of(
        *written, documents.map(dump), documents.map(dump),
        st.binary(max_size=200), st.sampled_from(DEEP).map(str.encode),
        st.lists(st.sampled_from(["[", "[[hosts]]", "a = ", '"', "= 1", "\xff", "[x]"]),
                 max_size=8).map(lambda parts: "\n".join(parts).encode("utf-8", "replace")),
    )


# -- the documents, format by format ---------------------------------------------------------

FIXTURES = Path(__file__).parents[1] / "inventory" / "fixtures"
GUID = "00000000-0000-4000-8000-000000000001"
GOOD_CONFIG = {
    "fleet": ["local", "~/hosts.ini"], "theme": "fleetrun-dark",
    "keymap": {"fleet.mark": "m", "app.quit": "ctrl+q"},
    "azure": {"subscriptions": [GUID], "cleanup": "keep", "poll_interval": 2.0,
              "arm_endpoint": "https://management.azure.com", "credential": "default",
              "output_container": "", "output_identity": "system",
              "api_versions": {"compute": "2025-04-01"},
              "throttle": {"reads": {"capacity": 100, "refill_per_second": 5},
                           "reserve": 0.1}},
}
GOOD_TOML_INVENTORY = tomllib.loads((FIXTURES / "hosts.toml").read_text())
GOOD_SAVED_COMMAND = {
    "name": "tcp-check", "description": "d", "tags": ["network"], "timeout": 60,
    "dangerous": False,
    "parameters": [
        {"name": "server", "description": "host", "required": True,
         "pattern": "^[A-Za-z0-9_.:-]{1,253}$"},
        {"name": "port", "default": "443", "choices": ["22", "443"]},
        {"name": "token", "protected": True},
    ],
    "scripts": {"shell": "echo $server $port", "powershell": "param($server) $server"},
}
GOOD_FLEET = {
    "sandbox": {"flush_interval": "1s", "pickup_delay": "300ms", "agent_timeout": "20s",
                "timeouts_report_as": "Failed", "seed": 7, "tenant": GUID},
    "storage": {"account": "fleetrunsandbox", "key": "YWJjZGVmZ2hpamtsbW5vcA==",
                "containers": ["fleetrun"], "max_append_block": "4MiB"},
    "throttle": {"reads": {"capacity": 250, "refill_per_second": 25}, "graph_queries": 15,
                 "graph_window": "5s"},
    "faults": {"latency": "100ms", "error_rate": 0.02,
               "throttle_storm": {"every": "60s", "lasting": "5s"}},
    "defaults": {"subscription": GUID, "resource_group": "rg", "location": "westeurope"},
    "machines": [
        {"name": "web-{n:02}", "count": 3, "kind": "vm", "os": "linux",
         "tags": {"role": "web"}, "agent": "ready", "power": "running",
         "agent_version": "2.9.1", "faults": {"stuck": False, "disconnect_after": "5s"}},
        {"name": "arc-1", "kind": "arc", "os": "windows", "status": "connected",
         "executor": "simulated",
         "simulate": {"duration": ["1s", "2s"], "exit_code": 0, "fail_ratio": 0.5,
                      "output": "hi {machine}\n", "lines": 2, "error": ""}},
    ],
}
GOOD_THEME = {"name": "ops-dusk", "dark": True, "primary": "#3366CC", "background": "#101010",
              "success": "#66DD99", "luminosity_spread": 0.2, "text_alpha": 0.9,
              "variables": {"text-success": "#66DD99", "block-cursor-text-style": "bold"}}
GOOD_YAML = yaml.safe_load((FIXTURES / "hosts.yml").read_text())
GOOD_INI_LINES = (FIXTURES / "hosts.ini").read_text().splitlines()
GOOD_SSH_LINES = (FIXTURES / "ssh" / "config").read_text().splitlines()

CONFIG_DOCS = st.fixed_dictionaries({}, optional={
    "fleet": st.one_of(STRINGS, st.lists(STRINGS, max_size=3), VALUES),
    "theme": st.one_of(STRINGS, VALUES),
    "keymap": st.one_of(table(("fleet.mark", "app.quit", "fleet.compose"), STRINGS), VALUES),
    "azure": st.one_of(table(AZURE_KEYS), VALUES),
})
HOST_KEYS = ("name", "host", "port", "user", "identity_file", "os", "tags", "groups")
TOML_INVENTORY_DOCS = st.fixed_dictionaries({}, optional={
    "defaults": table(HOST_KEYS[2:]),
    "hosts": st.one_of(st.lists(table(HOST_KEYS), max_size=3), VALUES),
})
SAVED_COMMAND_DOCS = st.fixed_dictionaries(
    {"name": st.one_of(st.just("fuzzed"), STRINGS)},
    optional={
        **{key: VALUES for key in TOP_KEYS if key not in ("name", "parameters", "scripts")},
        "parameters": st.lists(table(PARAMETER_KEYS, st.one_of(STRINGS, VALUES)), max_size=3),
        "scripts": st.one_of(table(("shell", "powershell"), STRINGS), VALUES),
    })
MACHINE_KEYS = ("name", "count", "kind", "os", "subscription", "resource_group", "location",
                "tags", "executor", "agent", "power", "status", "agent_version", "simulate",
                "faults")
GOOD_MACHINE = {"name": "web-{n}", "count": 2, "subscription": "s", "resource_group": "rg",
                "location": "westeurope"}
FLEET_DOCS = st.fixed_dictionaries({}, optional={
    "sandbox": table(("flush_interval", "pickup_delay", "agent_timeout", "timeouts_report_as",
                      "seed", "tenant")),
    "storage": table(("account", "key", "containers", "max_append_block")),
    "faults": table(("latency", "error_rate", "drop_rate", "throttle_storm", "stuck")),
    "defaults": table(MACHINE_KEYS),
    "machines": st.one_of(
        st.lists(table(MACHINE_KEYS).map(lambda t: {**GOOD_MACHINE, **t}), max_size=2),
        VALUES),
})
THEME_DOCS = table(("name", "dark", "primary", "background", "success", "variables",
                    "luminosity_spread", "text_alpha"))

INI_LINES = st.one_of(
    st.sampled_from(["[web]", "[web:children]", "[web:vars]", "[db]", "[all:vars]", "[x:y]",
                     "[", "# comment", "; comment", "[web:children]\nnope"]),
    st.builds(lambda host, key, value: f"{host} {key}={value}",
              st.sampled_from(["web1", "web[01:03]", "db:2222", "h[1:99999999]", "a:", "x:99999"]),
              st.sampled_from(["ansible_host", "ansible_port", "ansible_user",
                               "ansible_ssh_private_key_file", "ansible_connection", "x"]),
              STRINGS.map(lambda s: s.replace("\n", " "))),
    STRINGS.map(lambda s: s.replace("\n", " ")),
)


def edited_lines(good: list[str], line: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """``good`` with one to three lines replaced by, or joined by, ``line``s."""
    edit = st.tuples(st.integers(0, len(good)), st.booleans(), line)

    def apply(edits: list[tuple[int, bool, str]]) -> bytes:
        lines = list(good)
        for at, replace, text in edits:
            lines[at:at + int(replace)] = [text]
        return "\n".join(lines).encode("utf-8")

    return st.lists(edit, min_size=1, max_size=3).map(apply)


INI_TEXT = st.one_of(st.lists(INI_LINES, max_size=8).map(lambda ls: "\n".join(ls).encode()),
                     edited_lines(GOOD_INI_LINES, INI_LINES),
                     edited_lines(GOOD_INI_LINES, INI_LINES), st.binary(max_size=200))

YAML_HOST_VARS = table(("ansible_host", "ansible_port", "ansible_user",
                        "ansible_ssh_private_key_file", "ansible_os_family"))
YAML_GROUP = st.fixed_dictionaries({}, optional={
    "hosts": st.one_of(st.dictionaries(st.one_of(st.sampled_from(["web1", "web[1:3]", "h:22"]),
                                                 KEYS), st.one_of(st.none(), YAML_HOST_VARS),
                                       max_size=3), VALUES),
    "vars": st.one_of(YAML_HOST_VARS, VALUES),
    "children": st.one_of(st.dictionaries(st.sampled_from(["web", "db", "all"]),
                                          st.none(), max_size=2), VALUES),
})


def yaml_dump(doc: object) -> bytes:
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8")
    except (yaml.YAMLError, UnicodeEncodeError):
        return b"--- {}\n"


YAML_TEXT = st.one_of(
    st.dictionaries(st.sampled_from(["all", "web", "ungrouped"]), YAML_GROUP, max_size=2)
    .map(yaml_dump),
    mutated(GOOD_YAML).map(yaml_dump), mutated(GOOD_YAML).map(yaml_dump),
    VALUES.map(yaml_dump), st.binary(max_size=200), st.sampled_from(DEEP_YAML).map(str.encode),
    st.sampled_from(["a: &x [*x]", "a: !!python/object:os.system x", "? [a]\n: b",
                     "all:\n  hosts:\n    ? [1]\n"]).map(str.encode),
)

SSH_LINES = st.builds(
    lambda keyword, sep, args: f"{keyword}{sep}{args}".replace("\n", " "),
    st.sampled_from(["Host", "Match", "Include", "HostName", "Port", "User", "IdentityFile",
                     "CanonicalizeHostname", "host", "X", "#"]),
    st.sampled_from([" ", "=", " = ", ""]),
    st.one_of(STRINGS, st.lists(STRINGS, max_size=3).map(" ".join),
              st.sampled_from(['"unclosed', "web1,web2", "!web1 *", "a b # c"])),
)
SSH_TEXT = st.one_of(st.lists(SSH_LINES, max_size=8).map(lambda ls: "\n".join(ls).encode()),
                     edited_lines(GOOD_SSH_LINES, SSH_LINES), st.binary(max_size=200))


# -- checking what a loader says -------------------------------------------------------------


def one_line_naming(message: str, path: Path) -> None:
    """A refusal is one line that starts with the file's path (and a line number, maybe),
    then what is at fault."""
    assert "\n" not in message, message
    assert message.startswith(str(path)), message
    assert re.match(r"(:\d+)?: \S", message[len(str(path)):]), message


def loads(data: bytes) -> bool:
    """Whether ``data`` is a TOML document tomllib reads (so errors must name a field)."""
    try:
        tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return False
    return True


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def written(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# -- each loader -----------------------------------------------------------------------------


@FUZZ
@given(data=toml_text(CONFIG_DOCS, GOOD_CONFIG))
def test_config_toml(folder: Path, data: bytes) -> None:
    path = written(folder, "config.toml", data)
    readers: list[tuple[Callable[[Path], object], type[Exception]]] = [
        (read_config, ConfigFileError), (load_azure_settings, SettingsError),
        (default_fleet, (DefaultFleetError, SettingsError)),  # type: ignore[list-item]
        (keymap.load_keymap, keymap.KeymapError), (themes.configured_theme, themes.ThemeError),
    ]
    for reader, refusal in readers:
        try:
            found = reader(path)
        except refusal as exc:
            one_line_naming(str(exc), path)
        else:
            if isinstance(found, keymap.Keymap):
                for problem in found.problems:
                    one_line_naming(problem, path)


@FUZZ
@given(data=toml_text(TOML_INVENTORY_DOCS, GOOD_TOML_INVENTORY))
def test_toml_inventory(folder: Path, data: bytes) -> None:
    path = written(folder, "hosts.toml", data)
    with contextlib.suppress(InventoryError):
        load_toml_inventory(path)
        return
    with pytest.raises(InventoryError) as caught:
        load_toml_inventory(path)
    one_line_naming(str(caught.value), path)


@FUZZ
@given(data=INI_TEXT)
def test_ansible_ini(folder: Path, data: bytes) -> None:
    path = written(folder, "hosts.ini", data)
    try:
        load_ansible(path, yaml=False)
    except InventoryError as exc:
        one_line_naming(str(exc), path)


@FUZZ
@given(data=YAML_TEXT)
def test_ansible_yaml(folder: Path, data: bytes) -> None:
    path = written(folder, "hosts.yml", data)
    try:
        load_ansible(path, yaml=True)
    except InventoryError as exc:
        one_line_naming(str(exc), path)


@FUZZ
@given(data=SSH_TEXT)
def test_ssh_config(folder: Path, data: bytes) -> None:
    path = written(folder, "ssh_config", data)
    try:
        load_ssh_config(path, ssh_dir=folder / "no-ssh-dir")
    except InventoryError as exc:
        one_line_naming(str(exc), path)


@FUZZ
@given(data=toml_text(SAVED_COMMAND_DOCS, GOOD_SAVED_COMMAND),
       values=st.dictionaries(STRINGS, STRINGS, max_size=3))
def test_saved_command(folder: Path, data: bytes, values: dict[str, str]) -> None:
    path = written(folder, "fuzzed.toml", data)
    try:
        command = read_command(path)
    except LibraryError as exc:
        one_line_naming(str(exc), path)
        return
    for command_id in CommandId:
        # A value the pattern cannot be checked against in time is a problem, not a hang.
        with contextlib.suppress(ParameterError, LibraryError):
            command.command_for(command_id, values)


@FUZZ
@given(data=toml_text(FLEET_DOCS, GOOD_FLEET))
def test_sandbox_fleet_file(folder: Path, data: bytes) -> None:
    path = written(folder, "fleet.toml", data)
    try:
        load_fleet(path)
    except FleetFileError as exc:
        one_line_naming(str(exc), path)
        # It may quote what the file says, never what a template would expand to.
        assert len(str(exc)) < 500 + 10 * len(data)


@FUZZ
@given(data=toml_text(THEME_DOCS, GOOD_THEME))
def test_user_theme(folder: Path, data: bytes) -> None:
    (folder / "themes").mkdir(exist_ok=True)
    path = written(folder / "themes", "mine.toml", data)
    _, problems = themes.user_themes(folder / "themes")
    for problem in problems:
        one_line_naming(str(problem), path)


# -- through the CLI -------------------------------------------------------------------------


@contextlib.contextmanager
def cli_home(home: Path) -> Iterator[None]:
    """Private config and data dirs, no terminal, and the log handlers main adds removed."""
    env = {"FLEETRUN_CONFIG_DIR": str(home / "config"),
           "FLEETRUN_DATA_DIR": str(home / "data"), "NO_COLOR": "1"}
    before = list(logging.getLogger().handlers)
    with mock.patch.dict(os.environ, env), mock.patch.object(sys, "stdin", io.StringIO("")):
        for name in [n for n in os.environ if n.startswith("FLEETRUN_") and n not in env]:
            del os.environ[name]  # put back on leaving, with the rest
        try:
            yield
        finally:
            for handler in logging.getLogger().handlers:
                if handler not in before:
                    logging.getLogger().removeHandler(handler)
                    handler.close()


def run_cli(home: Path, argv: list[str]) -> tuple[int, str]:
    """``fleetrun ARGV`` in this process (config and data dirs in ``home``): its exit code
    and stderr, checked for tracebacks."""
    out, err = io.StringIO(), io.StringIO()
    with cli_home(home), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # --help
            code = exc.code if isinstance(exc.code, int) else 2
    stderr = err.getvalue()
    assert "Traceback" not in stderr, stderr
    assert code in (0, 1, 2), (code, stderr)
    return code, stderr


NO_HOSTS = "# no hosts at all: every run stops here, before anything could run\n"
FLAG_VALUES = STRINGS.filter(lambda s: not s.startswith("-"))
RUN_FLAGS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["--target", "--shell", "--powershell", "--command", "-p", "-a",
                               "-P", "--timeout", "--concurrency", "--max-errors", "--run-as",
                               "-o"]), FLAG_VALUES).map(list),
    st.sampled_from([["--canary"], ["--yes"], ["--run-as-password"], ["--accept-new-host-keys"],
                     ["-p", "x"], ["--timeout", "-5"], ["--concurrency", "0%"], ["--bogus"],
                     ["--command", "tcp-check"], ["--command", "restart-service"]]),
), max_size=5).map(lambda pairs: [arg for pair in pairs for arg in pair])


@CLI_FUZZ
@given(flags=RUN_FLAGS)
def test_run_flags_through_the_cli(folder: Path, flags: list[str]) -> None:
    inventory = written(folder, "empty.ini", NO_HOSTS.encode())
    # The fleet named last has no hosts and the target matches nothing: whatever the flags
    # say, nothing can run, so only parsing and checking are exercised.
    code, stderr = run_cli(folder, ["run", *flags, "--fleet", str(inventory),
                                    "--target", "name:nothing-matches-this"])
    assert code == 2, stderr
    assert stderr.startswith("error: "), stderr


OTHER_COMMANDS = st.one_of(
    st.tuples(st.just(["commands", "show"]), FLAG_VALUES.map(lambda s: [s])),
    st.tuples(st.just(["history", "--limit"]), st.integers().map(lambda n: [str(n)])),
    st.tuples(st.just(["show"]), FLAG_VALUES.map(lambda s: [s])),
    st.tuples(st.just(["export"]), st.tuples(FLAG_VALUES, st.sampled_from(
        ["md", "json", "csv", "pdf"])).map(lambda t: [t[0], "--format", t[1]])),
    st.tuples(st.just(["machines", "--fleet", "local", "--no-check", "--target"]),
              FLAG_VALUES.map(lambda s: [s])),
).map(lambda t: [*t[0], *t[1]])


@CLI_FUZZ
@given(argv=OTHER_COMMANDS)
def test_other_commands_through_the_cli(folder: Path, argv: list[str]) -> None:
    run_cli(folder, argv)


INVENTORIES = st.one_of(
    st.tuples(st.just("hosts.toml"), toml_text(TOML_INVENTORY_DOCS, GOOD_TOML_INVENTORY)),
    st.tuples(st.just("hosts.ini"), INI_TEXT), st.tuples(st.just("hosts.yml"), YAML_TEXT),
    st.tuples(st.just("ssh_config"), SSH_TEXT), st.tuples(st.just("inventory"), INI_TEXT),
)


@CLI_FUZZ
@given(inventory=INVENTORIES)
def test_inventories_through_the_cli(folder: Path, inventory: tuple[str, bytes]) -> None:
    name, data = inventory
    path = written(folder, name, data)
    spec = f"ssh-config:{path}" if name == "ssh_config" else str(path)
    code, stderr = run_cli(folder, ["machines", "--fleet", spec, "--no-check", "-o", "json"])
    if code == 2:
        assert str(path) in stderr, stderr


@CLI_FUZZ
@given(data=toml_text(FLEET_DOCS))
def test_fleet_files_through_the_cli(folder: Path, data: bytes) -> None:
    path = written(folder, "fleet.toml", data)
    try:
        load_fleet(path)
    except FleetFileError:
        pass
    else:
        assume(False)  # a good fleet file would start a sandbox: the loader's test has it
    code, stderr = run_cli(folder, ["machines", "--fleet", f"sandbox:{path}", "--no-check"])
    assert code == 2 and str(path) in stderr, stderr
    assert stderr.count("\n") == 1, stderr


@CLI_FUZZ
@given(data=toml_text(CONFIG_DOCS))
def test_config_toml_through_the_cli(folder: Path, data: bytes) -> None:
    home = folder / "with-config"  # a config.toml of its own: the other tests have none
    (home / "config").mkdir(parents=True, exist_ok=True)
    path = written(home / "config", "config.toml", data)
    try:
        default_fleet(path)
    except (DefaultFleetError, SettingsError):
        pass
    else:
        assume(False)  # a good one opens a fleet (the sandbox, or Azure): not here
    code, stderr = run_cli(home, ["machines", "--no-check"])
    assert code == 2 and str(path) in stderr, stderr
    assert stderr.count("\n") == 1, stderr


@CLI_FUZZ
@given(data=toml_text(SAVED_COMMAND_DOCS, GOOD_SAVED_COMMAND))
def test_saved_commands_through_the_cli(folder: Path, data: bytes) -> None:
    (folder / "config" / "commands").mkdir(parents=True, exist_ok=True)
    path = written(folder / "config" / "commands", "fuzzed.toml", data)
    for argv in (["commands", "list"], ["commands", "show", "fuzzed", "-o", "json"]):
        _, stderr = run_cli(folder, argv)
        for line in stderr.splitlines():
            if line.startswith("warning: "):
                assert str(path) in line, stderr
