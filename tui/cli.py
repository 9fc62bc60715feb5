"""The ``fleetrun`` command: headless subcommands, and (later) the TUI with none.

Exit codes: 0 every targeted machine succeeded; 1 any failed, timed out, was skipped,
canceled or not started; 2 bad input (a message, never a traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core import config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

OUTPUT_FORMATS = ("table", "json", "jsonl")


class UsageError(Exception):
    """Bad input from the user: printed as one clear message, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fleetrun",
        description="Run shell and PowerShell commands across a fleet of machines.",
        epilog="Run 'fleetrun COMMAND --help' for a command's options.",
    )
    parser.add_argument(
        "--fleet",
        action="append",
        metavar="SOURCE",
        help="with no COMMAND: open the app on these machines (repeatable; as 'run --fleet'); "
        "default: config.toml's fleet, else azure when [azure] is set, else the sandbox",
    )
    parser.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="with no COMMAND: trust SSH host keys known_hosts does not have yet (written to it)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="run a script on many machines",
        description="Run a script on every machine of the fleet that matches --target.",
    )
    run.add_argument(
        "--fleet",
        action="append",
        metavar="SOURCE",
        help="where machines come from: sandbox (the default), sandbox:FILE, local "
        "(repeatable)",
    )
    run.add_argument(
        "--target",
        default="",
        metavar="QUERY",
        help="filter: text, name:GLOB, tag:K=V, os:linux|windows, kind:, health:, ! negates",
    )
    run.add_argument(
        "--shell",
        metavar="SCRIPT|@FILE",
        help="RunShellScript for the Linux machines (inline, or @path)",
    )
    run.add_argument(
        "--powershell",
        metavar="SCRIPT|@FILE",
        help="RunPowerShellScript for the Windows machines (inline, or @path)",
    )
    run.add_argument(
        "--command",
        dest="saved_command",
        metavar="NAME",
        help="a saved command ('fleetrun commands list'): its scripts, parameter table and "
        "timeout; -p/-a/-P give its parameters",
    )
    run.add_argument(
        "--yes",
        action="store_true",
        help="run a dangerous saved command without typing the target count to confirm",
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="named parameter (an environment variable on Linux)",
    )
    run.add_argument(
        "-a",
        "--arg",
        action="append",
        default=[],
        metavar="VALUE",
        help="unnamed parameter (a positional argument on Linux); with --command, fills the "
        "parameters -p did not name, in order",
    )
    run.add_argument(
        "-P",
        "--protected",
        action="append",
        default=[],
        metavar="NAME",
        help="protected parameter; its value is read without echo, or from "
        "$FLEETRUN_SECRET_<NAME> when there is no terminal",
    )
    run.add_argument(
        "--timeout",
        default=None,
        metavar="S",
        help="seconds per machine, 0 for no limit (default 3600, or the saved command's)",
    )
    run.add_argument(
        "--concurrency", default="50", metavar="N|N%", help="machines running at once (default 50)"
    )
    run.add_argument(
        "--max-errors",
        default=None,
        metavar="N|N%",
        help="after N failures start no new machine (default: never stop)",
    )
    run.add_argument(
        "--canary",
        action="store_true",
        help="ramp up 1, 2, 4, ... machines, each wave after the last finished",
    )
    run.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust SSH host keys known_hosts does not have yet, and record them "
        "(a changed key is always refused)",
    )
    run.add_argument(
        "--run-as",
        default="",
        metavar="USER",
        help="run the script as USER (on Azure the handler uses sudo; on this machine and "
        "the sandbox fleetrun, as root, switches user itself; not over SSH)",
    )
    run.add_argument(
        "--run-as-password",
        action="store_true",
        help="ask for USER's password (or read $FLEETRUN_SECRET_RUN_AS_PASSWORD); only "
        "Azure's handler uses it",
    )
    run.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=None,
        help="table (default on a terminal), json, or jsonl events",
    )

    attach = sub.add_parser(
        "attach",
        help="follow an Azure run again after fleetrun stopped (crash, kill, reboot)",
        description="Follow the machines of RUN that had not finished when the process "
        "following it stopped: their run commands kept running on Azure. The run is "
        "completed in the history with all of their output.",
    )
    attach.add_argument("run_id", metavar="RUN", help="run id (or a unique prefix)")
    attach.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust SSH host keys known_hosts does not have yet, and record them "
        "(a changed key is always refused)",
    )
    attach.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=None,
        help="table (default on a terminal), json, or jsonl events",
    )

    hist = sub.add_parser("history", help="list past runs")
    hist.add_argument("--limit", type=int, default=50, metavar="N")
    hist.add_argument("-o", "--output", choices=("table", "json"), default="table")

    show = sub.add_parser("show", help="show a past run, or one machine's output")
    show.add_argument("run_id", metavar="RUN", help="run id (or a unique prefix)")
    show.add_argument("machine", nargs="?", metavar="MACHINE", help="machine name or id")
    show.add_argument("--full", action="store_true", help="the full output, not the 4 KB tail")
    show.add_argument(
        "--stream", choices=("stdout", "stderr"), default=None, help="with --full: only this stream"
    )
    show.add_argument(
        "--raw",
        action="store_true",
        help="with --full: the bytes as stored even on a terminal (escape sequences and all); "
        "by default a terminal gets them shown, not obeyed",
    )
    show.add_argument("-o", "--output", choices=("table", "json"), default="table")

    export = sub.add_parser(
        "export",
        help="write a past run as JSON, CSV or a Markdown incident report",
        description="Write RUN out for others: JSON (the run and every machine with its "
        "output tails), CSV (a row per machine) or a Markdown incident report (what ran, "
        "when, where, counts, groups of identical output, the machines that failed). "
        "Protected parameter values are never written.",
    )
    export.add_argument("run_id", metavar="RUN", help="run id (or a unique prefix)")
    export.add_argument(
        "--format", choices=("json", "csv", "md"), default="md", help="default md"
    )
    export.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write to FILE (default: stdout)"
    )

    saved = sub.add_parser(
        "commands",
        help="the saved-command library: list, show",
        description="Saved commands: the starter library shipped with fleetrun and your own "
        "TOML files in the config dir's commands/ folder (yours replace a starter command of "
        "the same name). Run one with 'fleetrun run --command NAME'.",
    )
    saved_sub = saved.add_subparsers(
        dest="commands_action", metavar="ACTION", parser_class=_Parser, required=True
    )
    saved_list = saved_sub.add_parser("list", help="every saved command, one line each")
    saved_list.add_argument("-o", "--output", choices=("table", "json"), default="table")
    saved_show = saved_sub.add_parser(
        "show", help="one saved command in full: parameters and scripts"
    )
    saved_show.add_argument("name", metavar="NAME")
    saved_show.add_argument("-o", "--output", choices=("table", "json"), default="table")

    mach = sub.add_parser("machines", help="list machines and their health")
    mach.add_argument(
        "--fleet",
        action="append",
        metavar="SOURCE",
        help="sandbox (the default), sandbox:FILE, local (repeatable)",
    )
    mach.add_argument("--target", default="", metavar="QUERY")
    mach.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust SSH host keys known_hosts does not have yet, and record them "
        "(a changed key is always refused)",
    )
    mach.add_argument(
        "--no-check",
        action="store_true",
        help="list what the inventory says without contacting any machine (no health checks)",
    )
    mach.add_argument("-o", "--output", choices=("table", "json"), default="table")

    sandbox = sub.add_parser("sandbox", help="the built-in emulated Azure fleet")
    sandbox_sub = sandbox.add_subparsers(
        dest="sandbox_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    serve = sandbox_sub.add_parser(
        "serve",
        help="serve the Azure Run Command emulator on 127.0.0.1 for any ARM client",
        description="Serve the sandbox's ARM (Compute, HybridCompute, Resource Graph) and "
        "append-blob endpoints on 127.0.0.1 until Ctrl-C. ARM calls must present the bearer "
        "token in $FLEETRUN_SANDBOX_TOKEN, or, when it is unset, the one it generates and "
        "prints.",
    )
    serve.add_argument("--fleet", metavar="FILE", help="a fleet file (default: the demo fleet)")
    serve.add_argument(
        "--port", type=int, default=8765, metavar="N", help="port (default 8765; 0 = any free)"
    )
    serve.add_argument(
        "--tls", action="store_true", help="HTTPS with a self-signed certificate it generates"
    )
    return parser


def _setup_logging() -> None:
    try:
        handler = logging.FileHandler(config.log_path(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the log in {config.data_dir()}: {exc.strerror}; set "
                         "FLEETRUN_DATA_DIR to a folder of yours") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # httpx logs every URL at INFO, query included: blob SAS signatures must not reach a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _fleet_or_default(fleet: list[str] | None) -> list[str]:
    """``--fleet`` as given, else the configured default (see core.inventory.default_fleet)."""
    from core.azure.settings import SettingsError
    from core.inventory.default_fleet import DefaultFleetError, default_fleet

    if fleet:
        return fleet
    try:
        return default_fleet(config.config_dir() / "config.toml")
    except (DefaultFleetError, SettingsError) as exc:
        raise UsageError(str(exc)) from None


def _open_app(args: argparse.Namespace) -> int:
    """The TUI, on --fleet, else on the configured fleet, else on the built-in sandbox."""
    from core.inventory import FleetOptions
    from tui.app import FleetrunApp

    fleet = _fleet_or_default(args.fleet)
    FleetrunApp(fleet, FleetOptions(accept_new_host_keys=args.accept_new_host_keys)).run()
    return EXIT_OK


def _list_instead(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """No command and no terminal: list the fleet (and, on the sandbox, what to try)."""
    from core.inventory import DEFAULT_FLEET
    from tui import cli_commands

    fleet = _fleet_or_default(args.fleet)
    argv = ["machines", *(f"--fleet={source}" for source in fleet)]
    if args.accept_new_host_keys:
        argv.append("--accept-new-host-keys")
    code = cli_commands.dispatch(parser.parse_args(argv))
    if fleet != [DEFAULT_FLEET]:
        return code
    print(
        "\nThis is fleetrun's built-in sandbox: emulated Azure VMs and Arc servers that run\n"
        "scripts on this machine. Try:\n"
        "  fleetrun run --target os:linux --shell 'echo \"$HOSTNAME: $(uptime)\"'\n"
        "  fleetrun sandbox serve      # the same fleet behind an ARM API for any client\n"
        "  fleetrun --help             # every command"
    )
    return code


def _raise_open_file_limit() -> None:
    """Allow as many open files as the system lets this user: a connection per SSH host."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = max(soft, 1 << 16) if hard == resource.RLIM_INFINITY else hard
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform, or not allowed: the default will do for most fleets


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fleetrun`` console script."""
    from tui import cli_commands  # deferred: keeps `fleetrun --help` fast

    _raise_open_file_limit()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _setup_logging()
        if args.command is None:
            if sys.stdout.isatty() and sys.stdin.isatty():
                return _open_app(args)
            return _list_instead(parser, args)
        return cli_commands.dispatch(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    # Go through the real module so its exception classes are the ones the commands raise.
    from tui.cli import main as _main

    sys.exit(_main())
