"""Grouping modulo noise: the normalizer, the rule for a group's telling line, and the store
grouping with it (the same code the TUI's ``n`` and ``fleetrun run --group-noise`` use)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from core.group_line import telling_line
from core.model import TAIL_BYTES, Command, CommandId, MachineRun, RunState, Stream
from core.output import OutputGroup, OutputStore
from core.output_noise import host_names, normalize_noise
from tests.fakes import machines

UPTIME_A = " 02:03:16 up 3 days,  4:05,  1 user,  load average: 0.00, 0.01, 0.05\n"
UPTIME_B = " 11:59:02 up 13:45,  1 user,  load average: 1.52, 0.98, 0.61\n"
UPTIME_C = " 23:00:00 up 7 min,  1 user,  load average: 0.10, 0.20, 0.30\n"

SSHD_A = """\
● ssh.service - OpenBSD Secure Shell server
     Loaded: loaded (/lib/systemd/system/ssh.service; enabled; vendor preset: enabled)
     Active: active (running) since Mon 2026-12-07 02:03:16 UTC; 3 days ago
       Docs: man:sshd(8)
   Main PID: 812 (sshd)
      Tasks: 1 (limit: 4915)
        CPU: 1min 3.512s
     CGroup: /system.slice/ssh.service
             └─812 "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"

Dec 07 02:03:16 web-01 sshd[812]: Server listening on 0.0.0.0 port 22.
Dec 07 02:03:16 web-01 sshd[812]: Server listening on :: port 22.
Dec 09 14:41:02 web-01 sshd[90311]: Accepted publickey for ops from 10.0.4.17 port 50122
"""
SSHD_B = """\
● ssh.service - OpenBSD Secure Shell server
     Loaded: loaded (/lib/systemd/system/ssh.service; enabled; vendor preset: enabled)
     Active: active (running) since Tue 2026-12-08 17:44:09 UTC; 22h ago
       Docs: man:sshd(8)
   Main PID: 1043 (sshd)
      Tasks: 1 (limit: 4915)
        CPU: 212ms
     CGroup: /system.slice/ssh.service
             └─1043 "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"

Dec 08 17:44:09 web-02.prod.example sshd[1043]: Server listening on 0.0.0.0 port 22.
Dec 08 17:44:09 web-02.prod.example sshd[1043]: Server listening on :: port 22.
Dec 09 14:40:58 web-02.prod.example sshd[2231]: Accepted publickey for ops from fe80::1c2:3ff:fe4d:5e6f port 50122
"""  # noqa: E501
DF_A = """\
Filesystem      Size  Used Avail Use% Mounted on
/dev/sda1        30G  4.1G   25G  15% /
tmpfs           2.0G     0  2.0G   0% /dev/shm
"""
DF_FULL = DF_A.replace("30G  4.1G   25G  15%", "30G   30G     0 100%")


def test_uptime_from_three_machines_normalizes_to_one_text() -> None:
    texts = {normalize_noise(text) for text in (UPTIME_A, UPTIME_B, UPTIME_C)}
    assert texts == {" <time> up <dur>,  1 user,  load average: <load>\n"}


def test_systemctl_status_differs_only_in_noise_across_machines() -> None:
    a = normalize_noise(SSHD_A, host_names("web-01"))
    b = normalize_noise(SSHD_B, host_names("web-02.prod.example"))
    assert a == b
    assert "Main PID: <pid> (sshd)" in a and "<host> sshd[<pid>]" in a
    assert "since <time>; <dur> ago" in a and "from <ip> port 50122" in a


def test_df_keeps_what_is_not_noise() -> None:
    assert normalize_noise(DF_A) == DF_A  # sizes and percentages are the answer, not noise
    assert normalize_noise(DF_A) != normalize_noise(DF_FULL)


def test_each_kind_of_noise() -> None:
    cases = {
        "at 2026-12-07T02:03:16.123456+00:00": "at <time>",
        "at 2026-12-07 02:03:16Z": "at <time>",
        "Dec  7 02:03:16 started": "<time> started",
        "took 12ms then 1.5s": "took <dur> then <dur>",
        "waited 3 days": "waited <dur>",
        "worker[1234] pid 99 PID=7": "worker[<pid>] pid <pid> PID=<pid>",
        "from 192.168.1.20 and 2001:db8::1": "from <ip> and <ip>",
        "run 3f2a9c1e-1b2c-4d5e-8f90-123456789abc commit 9fceb02d0ae5": "run <hex> commit <hex>",
        "web-3 and WEB-3.example.com said hi": "<host> and <host> said hi",
    }
    for text, expected in cases.items():
        assert normalize_noise(text, host_names("web-3.example.com")) == expected, text
    # Not noise: versions, plain words that happen to be hex, names of other machines.
    for kept in ("version 1.2.3.4.5", "facade", "web-30 is down", "port 22", "100%"):
        assert normalize_noise(kept, host_names("web-3")) == kept


_WORDS = st.sampled_from(["ok", "status:", "disk", "/var/log", "error", "—", "a=b", "("])
_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){0,2}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80),
       st.lists(_NAMES, max_size=2))
def test_normalizing_twice_changes_nothing(text: str, names: list[str]) -> None:
    once = normalize_noise(text, names)
    assert normalize_noise(once, names) == once


NOISE_KINDS: list[st.SearchStrategy[str]] = [
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                 timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1))
    .map(lambda d: d.strftime("%b %e %H:%M:%S")),
    st.integers(1, 4_000_000).map(lambda n: f"[{n}]"),
    st.integers(1, 4_000_000).map(lambda n: f"pid {n}"),
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(1, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.uuids().map(str),
    st.tuples(st.integers(1, 999), st.sampled_from(["ms", "s", "min", " days", "h"]))
    .map(lambda t: f"{t[0]}{t[1]}"),
]
"""One strategy per kind of noise: times, syslog times, PIDs twice, IPv4, IPv6, UUIDs,
durations."""


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_WORDS, st.integers(0, 7)), min_size=1, max_size=8), st.data())
def test_outputs_that_differ_only_in_noise_normalize_equal(
        template: list[tuple[str, int]], data: st.DataObject) -> None:
    def fill() -> str:
        return " ".join(f"{word} {data.draw(NOISE_KINDS[kind])}"
                        for word, kind in template) + "\n"

    assert normalize_noise(fill()) == normalize_noise(fill())


def test_a_uuid_made_by_uuid4_is_a_hex_id() -> None:
    assert normalize_noise(f"id={uuid.uuid4()}") == "id=<hex>"


# -- the line that sets a group apart ----------------------------------------------------------


def group(stdout: bytes, stderr: bytes = b"", size: int = 1, exit_code: int = 0,
          stdout_size: int | None = None) -> OutputGroup:
    ids = tuple(f"m{i:03d}" for i in range(size))
    return OutputGroup(exit_code, ids, stdout, stderr, (exit_code, stdout, stderr),
                       stdout_size=len(stdout) if stdout_size is None else stdout_size)


def test_the_telling_line_is_the_first_line_the_baseline_lacks() -> None:
    baseline = group(b"disk check\n/ 41% used\nall good\n", size=5)
    other = group(b"disk check\nall good\n/ 97% used\n")
    line = telling_line(other, baseline)
    assert line is not None and (line.text, line.number, line.differs) == ("/ 97% used", 2, True)
    # Same lines in another order: nothing is new, so the first line.
    shuffled = telling_line(group(b"all good\ndisk check\n"), baseline)
    assert shuffled is not None and (shuffled.text, shuffled.differs) == ("all good", False)
    # stderr only differs: from stderr.
    warned = telling_line(group(b"disk check\n", b"\nwarning: slow\n"), baseline)
    assert warned is not None and (warned.text, warned.stream) == ("warning: slow", Stream.STDERR)
    assert telling_line(group(b"\n  \n"), baseline) is None
    # The baseline itself: its first line.
    own = telling_line(baseline, baseline)
    assert own is not None and own.text == "disk check"


def test_a_tail_that_starts_mid_line_loses_that_fragment() -> None:
    end = b"\nfinal: 3 errors\n"
    cut = b"of a long log\n" + b"x" * (TAIL_BYTES - 14 - len(end)) + end
    assert len(cut) == TAIL_BYTES
    line = telling_line(group(cut, stdout_size=100_000), group(b"ok\n", size=3))
    assert line is not None and line.text.startswith("xxx")
    whole = telling_line(group(cut, stdout_size=TAIL_BYTES), group(b"ok\n", size=3))
    assert whole is not None and whole.text == "of a long log"


def test_the_telling_line_modulo_noise_skips_lines_that_only_differ_in_noise() -> None:
    baseline = group(b"web-1 up at 02:03:16\nstatus ok\n", size=4)
    other = group(b"web-2 up at 11:00:00\nstatus degraded\n")
    plain = telling_line(other, baseline)
    assert plain is not None and plain.text == "web-2 up at 11:00:00"
    noisy = telling_line(other, baseline, own_names=["web-2"], baseline_names=["web-1"],
                         noise=True)
    assert noisy is not None and noisy.text == "status degraded"


# -- the store grouping modulo noise ---------------------------------------------------------


def test_the_store_groups_modulo_noise_only_when_asked(tmp_path: Path) -> None:
    store = OutputStore(tmp_path)
    runs = []
    texts = (UPTIME_A, UPTIME_B, UPTIME_C, "load average: high\n")
    for machine, text in zip(machines(4), texts, strict=True):
        mr = MachineRun(machine=machine, command=Command(CommandId.SHELL, "uptime"))
        store.attach(mr)
        store.append(mr.machine_id, Stream.STDOUT, f"{machine.name}: {text}".encode())
        mr.state, mr.exit_code = RunState.SUCCEEDED, 0
        runs.append(mr)
    store.close()
    assert len(store.groups(runs)) == 4
    noisy = store.groups(runs, noise=True)
    assert [g.machine_ids for g in noisy] == [("m000", "m001", "m002"), ("m003",)]
    assert noisy[0].stdout_tail == f"m000: {UPTIME_A}".encode()  # as its first machine printed
