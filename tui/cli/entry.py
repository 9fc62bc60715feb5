"""Running ``fleetrun``: parse the command line, then a subcommand's handler, or the app.

Every :class:`core.errors.FleetrunError` a handler lets out becomes one ``error:`` line and
exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core import config
from tui.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fleetrun`` console script."""
    from tui.cli.parser import build_parser  # deferred: importing tui.cli stays cheap

    _raise_open_file_limit()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _setup_logging()
        if args.command is None:
            if sys.stdout.isatty() and sys.stdin.isatty():
                return _open_app(args)
            return _list_instead(parser, args)
        return dispatch(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def dispatch(args: argparse.Namespace) -> int:
    """Run the handler the subcommand's parser named; a FleetrunError becomes a UsageError.

    Every kind exits 2 (EXIT_USAGE), as each did when listed here by name: bad input, and a
    world that refused (the journal, a folder, a service) alike; exit 1 stays "a machine
    failed".
    """
    from core.errors import FleetrunError, ServiceError
    from core.validate import ValidationError
    from tui.cli.inputs import describe_problems

    try:
        code: int = args.handler(args)
        return code
    except ValidationError as exc:
        raise UsageError(describe_problems(exc)) from None
    except ServiceError as exc:
        # The service refused or could not be reached while listing or planning: say what
        # it said (codes, messages; never a token or a SAS signature), not a traceback.
        raise UsageError(f"{exc.service}: {exc}" if exc.service else str(exc)) from None
    except FleetrunError as exc:
        raise UsageError(str(exc)) from None


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
    # asyncssh logs a dozen INFO lines per SSH host and run, the whole bootstrap command
    # line among them: per-host CPU and a log that grows by kilobytes per host. Its
    # warnings and errors still come through.
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    # httpx logs every URL at INFO, query included: blob SAS signatures must not reach a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _open_app(args: argparse.Namespace) -> int:
    """The TUI, on --fleet, else on the configured fleet, else on the built-in sandbox."""
    from core.fleet import FleetOptions
    from tui.app import FleetrunApp
    from tui.cli.fleets import fleet_or_default

    fleet = fleet_or_default(args.fleet)
    FleetrunApp(fleet, FleetOptions(accept_new_host_keys=args.accept_new_host_keys,
                                    connect_timeout=args.connect_timeout)).run()
    return EXIT_OK


def _list_instead(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """No command and no terminal: list the fleet (and, on the sandbox, what to try)."""
    from core.fleet import DEFAULT_FLEET
    from tui.cli.fleets import fleet_or_default

    fleet = fleet_or_default(args.fleet)
    argv = ["machines", *(f"--fleet={source}" for source in fleet)]
    if args.accept_new_host_keys:
        argv.append("--accept-new-host-keys")
    if args.connect_timeout is not None:
        argv.append(f"--connect-timeout={args.connect_timeout}")
    code = dispatch(parser.parse_args(argv))
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
