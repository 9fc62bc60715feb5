"""``fleetrun hostkeys scan|trust``: review SSH host keys first, then pin exactly those.

``scan`` collects every SSH host's keys without logging in (:mod:`core.backends.ssh_key_scan`),
shows their fingerprints and verdicts, and records them (:mod:`core.host_key_scan`); it
writes no known_hosts. ``trust`` records in known_hosts exactly the keys of that scan for
the hosts named (never fetched again), through the backend's own host-key policy, so a run
afterwards accepts those keys and refuses any other as changed.
"""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from core.backends.base import HostKeyScanningBackend
from core.backends.host_keys import HostKeyProblem, host_pattern
from core.fleet import Fleet, open_fleet
from core.host_key_scan import HostScan, ScanRecord, ScanVerdict, load_scan, save_scan
from core.model import Machine
from core.terminal_text import inert
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from tui.cli.fleets import open_named, select
from tui.cli.options import Parser, add_fleet, add_hosts, add_table_output, connect_timeout

if TYPE_CHECKING:
    from tui.cli.options import Subparsers

EXIT_RULE = ("Exit status: 0 when every host's key is known (trusted), 1 when any host's key "
             "is unknown, 2 when any host's key CHANGED, a host could not be scanned or "
             "trusted, or the input is wrong")

VERDICT_STYLE = {ScanVerdict.KNOWN: "green", ScanVerdict.UNKNOWN: "yellow",
                 ScanVerdict.CHANGED: "bold red", ScanVerdict.ERROR: "red"}


def add_parser(sub: Subparsers) -> None:
    keys = sub.add_parser(
        "hostkeys",
        help="SSH host keys: scan and review fingerprints, then trust exactly those",
        description="Review SSH host keys before trusting them: 'scan' shows every host's "
        "key fingerprints (no login) and records them; 'trust' pins the recorded keys of the "
        "hosts you checked in known_hosts. A run then accepts only those keys. " + EXIT_RULE,
    )
    keys.set_defaults(handler=cmd_hostkeys)
    actions = keys.add_subparsers(dest="hostkeys_action", metavar="ACTION",
                                  parser_class=Parser, required=True)
    scan = actions.add_parser(
        "scan", help="collect and show each SSH host's keys; changes no known_hosts",
        description="Connect to every SSH host of the fleet as far as the key exchange (no "
        "login; a ProxyJump bastion is logged into as for a run), show each key's type, "
        "SHA256 fingerprint and verdict (known, unknown, CHANGED), and record the scan for "
        "'fleetrun hostkeys trust'.",
        epilog=EXIT_RULE)
    add_fleet(scan, "the fleet whose SSH hosts to scan (repeatable; default as for run)")
    scan.add_argument("--target", default="", metavar="QUERY", help="only these machines")
    scan.add_argument("--connect-timeout", type=connect_timeout, default=None, metavar="S",
                      help="seconds each SSH host (and bastion) gets to connect; default: "
                      "the ssh config's ConnectTimeout, else 15")
    add_hosts(scan)
    add_table_output(scan)
    trust = actions.add_parser(
        "trust", help="record the last scan's keys of these hosts in known_hosts",
        description="Trust exactly the keys the last 'fleetrun hostkeys scan' showed for "
        "these hosts (nothing is fetched again): each is written to known_hosts, and a run "
        "then accepts it and refuses any other key from that host. A CHANGED key is never "
        "trusted from here.",
        epilog="HOST is a machine name, a host name or [host]:port as the scan shows it. "
        + EXIT_RULE)
    trust.add_argument("hosts", nargs="*", metavar="HOST", help="hosts of the last scan")
    trust.add_argument("--all-shown", action="store_true",
                       help="every host of the last scan whose keys were unknown")


def cmd_hostkeys(args: Namespace) -> int:
    if args.hostkeys_action == "scan":
        return cmd_scan(args)
    return cmd_trust(args)


# -- scan -------------------------------------------------------------------------------------


def cmd_scan(args: Namespace) -> int:
    record = asyncio.run(_scan(args))
    save_scan(record)
    if args.output == "json":
        json_shapes.print_json(record.to_json())
    else:
        _scan_table(record)
    return exit_code([host.verdict for host in record.hosts])


def exit_code(verdicts: list[ScanVerdict]) -> int:
    if ScanVerdict.CHANGED in verdicts or ScanVerdict.ERROR in verdicts:
        return EXIT_USAGE
    return EXIT_FAILED if ScanVerdict.UNKNOWN in verdicts else EXIT_OK


async def _scan(args: Namespace) -> ScanRecord:
    fleet = await open_named(args)
    try:
        machines = await select(args, fleet)
        scanned = [(m, b) for m in machines
                   if isinstance(b := fleet.backends.get(m.kind), HostKeyScanningBackend)]
        if not scanned:
            which = " that --target picks" if args.target else ""
            raise UsageError(f"fleet {', '.join(args.fleet)}: no SSH hosts{which}; nothing "
                             "to scan")
        progress = Progress(TextColumn("scanning host keys"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=render.err, transient=True,
                            disable=not render.err.is_terminal)
        task = progress.add_task("scan", total=len(scanned))

        async def one(machine: Machine, backend: HostKeyScanningBackend) -> HostScan:
            try:
                return await backend.scan_host_keys(machine)
            finally:
                progress.advance(task)

        with progress:
            hosts = await asyncio.gather(*(one(m, b) for m, b in scanned))
    finally:
        await fleet.aclose()
    return ScanRecord(tuple(_lasting(spec) for spec in args.fleet), datetime.now(UTC),
                      tuple(hosts))


def _lasting(spec: str) -> str:
    """A ``--fleet`` value that names the same fleet from any folder (``trust`` may run
    elsewhere): a relative inventory path made absolute."""
    path = Path(spec)
    return str(path.resolve()) if not path.is_absolute() and path.is_file() else spec


def _table_fits(record: ScanRecord, width: int) -> bool:
    """Whether the table shows every fingerprint whole with the machine and host names
    folded no narrower than a dozen and a score of characters."""
    keys = [(h, k) for h in record.hosts for k in h.keys]
    if not keys:
        return True
    machine = min(12, max(len(h.machine) for h, _ in keys))
    host = min(21, max(len(h.where) for h, _ in keys))
    kind = max(len(key_type_label(k.key_type)) for _, k in keys)
    fingerprint = max(len(k.fingerprint) for _, k in keys)
    verdict = len("unknown")
    return machine + host + kind + fingerprint + verdict + 4 * 3 + 2 <= width


def _stacked(record: ScanRecord) -> Text:
    """The scan for a terminal too narrow for the table: a line per host and verdict, the
    key type and the whole fingerprint indented below it."""
    text = Text()
    for host in record.hosts:
        if host.error:
            text.append(f"{inert(host.machine)}  {inert(host.where)}  ")
            text.append(f"error: {host.error}\n", style="red")
        for key in host.keys:
            text.append(f"{inert(host.machine)}  {inert(host.where)}  ")
            text.append(key.verdict.value.upper() if key.verdict is ScanVerdict.CHANGED
                        else key.verdict.value, style=VERDICT_STYLE[key.verdict])
            text.append(f"\n    {key_type_label(key.key_type)} {key.fingerprint}\n")
            for known in key.known_fingerprints:
                text.append(f"    known_hosts has {known}\n", style="dim")
    return text


def key_type_label(algorithm: str) -> str:
    """The key type as ``ssh-keygen -l`` prints it: ED25519, ECDSA, RSA (else as given)."""
    for prefix, label in (("ssh-ed25519", "ED25519"), ("ecdsa-", "ECDSA"),
                          ("rsa-", "RSA"), ("ssh-rsa", "RSA"), ("ssh-dss", "DSA")):
        if algorithm.startswith(prefix):
            return label
    return algorithm


def _scan_table(record: ScanRecord) -> None:
    # The fingerprint is what a person compares: never wrapped or cut. The rest fold, and
    # the box is light, so that it all fits an 80-column terminal.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("machine", min_width=6, overflow="fold")
    table.add_column("host", min_width=9, overflow="fold")
    table.add_column("type", no_wrap=True)
    table.add_column("fingerprint", no_wrap=True)
    table.add_column("verdict", min_width=7, overflow="fold")
    for host in record.hosts:
        if host.error:
            table.add_row(Text(inert(host.machine)), Text(inert(host.where)), "", "",
                          Text(f"error: {host.error}", style="red"))
        for key in host.keys:
            verdict = Text(key.verdict.value.upper() if key.verdict is ScanVerdict.CHANGED
                           else key.verdict.value, style=VERDICT_STYLE[key.verdict])
            if key.known_fingerprints:
                verdict.append(f" (known_hosts has {', '.join(key.known_fingerprints)})",
                               style="dim")
            table.add_row(Text(inert(host.machine)), Text(inert(host.where)),
                          key_type_label(key.key_type), key.fingerprint, verdict)
    render.out.print(table if _table_fits(record, render.out.width) else _stacked(record))
    counts = {v: sum(h.verdict is v for h in record.hosts) for v in ScanVerdict}
    summary = ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)
    render.out.print(Text(f"{len(record.hosts)} host(s): {summary}. Check the fingerprints out "
                          "of band, then: fleetrun hostkeys trust HOST... (or --all-shown)",
                          style="dim"))


# -- trust ------------------------------------------------------------------------------------


def cmd_trust(args: Namespace) -> int:
    if bool(args.hosts) == bool(args.all_shown):
        raise UsageError("hostkeys trust: name the HOSTs to trust, or --all-shown (not both)")
    record = load_scan()
    chosen = record.hosts if args.all_shown else _named(record, args.hosts)
    failed = False
    to_trust: list[tuple[HostScan, list[HostKeyProblem]]] = []
    for host in chosen:
        if host.verdict is ScanVerdict.CHANGED:
            failed = True
            changed = [k for k in host.keys if k.verdict is ScanVerdict.CHANGED]
            commands = dict.fromkeys(c for k in changed for c in k.removal_commands(host.where))
            print(f"{host.where}: host key CHANGED ({', '.join(k.fingerprint for k in changed)}; "
                  f"known_hosts has {', '.join(changed[0].known_fingerprints)}); not trusted "
                  "from here. If the change is expected, remove the old key with "
                  f"{' and '.join(f'`{c}`' for c in commands)}, then scan and trust again",
                  file=sys.stderr)
        elif host.verdict is ScanVerdict.ERROR:
            # --all-shown trusts what was shown; a host that showed no key is only noted.
            failed = failed or not args.all_shown
            print(f"{host.where}: the scan collected no key from it ({host.error}); "
                  "nothing to trust", file=sys.stderr)
        elif problems := host.problems():
            to_trust.append((host, problems))
    if to_trust:
        asyncio.run(_trust(record, to_trust))
        for _, problems in to_trust:
            for problem in problems:
                print(f"trusted {host_pattern(problem.host, problem.port)}  "
                      f"{problem.fingerprint}")
    elif not failed:
        print("nothing to trust: the chosen hosts' keys are known already")
    return EXIT_USAGE if failed else EXIT_OK


def _named(record: ScanRecord, names: list[str]) -> list[HostScan]:
    """The scanned hosts each name picks (machine, host or [host]:port); all or an error."""
    chosen: dict[tuple[str, int], HostScan] = {}
    for name in names:
        matches = [h for h in record.hosts if name in (h.machine, h.host, h.where)]
        if not matches:
            shown = ", ".join(dict.fromkeys(h.where for h in record.hosts)) or "none"
            raise UsageError(f"hostkeys trust {name}: not in the last scan (fleet "
                             f"{', '.join(record.fleet)}, {record.scanned_at:%Y-%m-%d %H:%M} "
                             f"UTC; hosts: {shown}); scan it first with `fleetrun hostkeys "
                             "scan`")
        for host in matches:
            chosen.setdefault((host.host, host.port), host)
    return list(chosen.values())


async def _trust(record: ScanRecord,
                 chosen: list[tuple[HostScan, list[HostKeyProblem]]]) -> None:
    """Hand each host's keys to the scanned fleet's own backend, which records them in the
    known_hosts file that host's connections read (its UserKnownHostsFile, if it has one)."""
    fleet: Fleet = await open_fleet(record.fleet)
    try:
        machines = {m.name: m for m in fleet.machines}
        gone = [host.machine for host, _ in chosen if host.machine not in machines]
        if gone:
            raise UsageError(f"hostkeys trust: {', '.join(gone[:5])} no longer in fleet "
                             f"{', '.join(record.fleet)}; scan again")
        for host, problems in chosen:
            backend = fleet.backends.for_machine(machines[host.machine])
            if not isinstance(backend, HostKeyScanningBackend):
                raise UsageError(f"hostkeys trust: {host.machine} is no SSH host any more; "
                                 "scan again")
            await backend.trust_scanned_keys(machines[host.machine], problems)
    finally:
        await fleet.aclose()
