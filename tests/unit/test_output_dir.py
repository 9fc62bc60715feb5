"""--output-dir's pieces: file names made safe and unique, lines cut as output arrives, and
every stored byte seen in order even when a slow subscriber dropped events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from core.events import Event, Finished, OutputAppended, StateChanged
from core.model import (
    Command,
    CommandId,
    Machine,
    MachineId,
    MachineKind,
    MachineRun,
    OsType,
    Run,
    RunState,
    Stream,
    utc_now,
)
from core.output import OutputStore
from core.output_dir import OutputDir, file_names, prepare_output_dir, safe_name
from core.output_in_order import OutputInOrder
from core.output_lines import OutputLines

A = MachineId("a")
B = MachineId("b")


def test_names_become_one_safe_path_component() -> None:
    assert safe_name("web-01") == "web-01"
    assert safe_name("queue-ss/3") == "queue-ss_3"
    assert safe_name("..") == "_."
    assert safe_name(".hidden") == "_hidden"
    assert safe_name("") == "machine"
    assert safe_name("a\x1b[31m b") == "a__31m_b"
    assert safe_name("ops@db:2222") == "ops@db_2222"
    assert len(safe_name("x" * 1000) + ".1.out") < 255


def test_colliding_names_get_numbered_as_pssh_numbers_repeats() -> None:
    names = file_names([
        (MachineId("1"), "web"), (MachineId("2"), "web"), (MachineId("3"), "Web"),
        (MachineId("4"), "web.1"), (MachineId("5"), "set/0"), (MachineId("6"), "set_0"),
    ])
    assert names == {
        MachineId("1"): "web", MachineId("2"): "web.1", MachineId("3"): "Web.2",
        MachineId("4"): "web.1.1", MachineId("5"): "set_0", MachineId("6"): "set_0.1",
    }
    assert len({n.casefold() for n in names.values()}) == len(names)


def test_a_missing_directory_is_created_owner_only(tmp_path: Path) -> None:
    made = prepare_output_dir(str(tmp_path / "deep" / "out"))
    assert made.is_dir() and made.stat().st_mode & 0o777 == 0o700


def test_lines_are_given_out_whole_and_the_last_one_at_the_end() -> None:
    lines = OutputLines()
    assert lines.feed(A, Stream.STDOUT, b"one\ntw") == ["one"]
    assert lines.feed(B, Stream.STDOUT, b"other\n") == ["other"]
    assert lines.feed(A, Stream.STDOUT, b"o\r") == []
    assert lines.feed(A, Stream.STDOUT, b"\nthr\xc3") == ["two"]  # \r\n is a line end
    assert lines.feed(A, Stream.STDOUT, b"\xa9e \x1b[2J") == []
    assert lines.end(A, Stream.STDOUT) == ["thrée ␛[2J"]
    assert lines.end(A, Stream.STDOUT) == []
    assert lines.feed(A, Stream.STDERR, b"cr\rinside\n") == ["cr␍inside"]
    assert lines.end(B, Stream.STDOUT) == []


def test_dropped_output_events_are_read_back_from_the_store(tmp_path: Path) -> None:
    async def scenario() -> bytes:
        store = OutputStore(tmp_path / "run")
        machine = Machine(id=A, name="a", kind=MachineKind.LOCAL, os=OsType.LINUX)
        store.attach(MachineRun(machine, Command(CommandId.SHELL, "true")))
        in_order = OutputInOrder(store)
        seen = bytearray()
        parts = [b"first ", b"dropped ", b"also dropped ", b"kept ", b"lost at the end"]
        offset = 0
        for number, part in enumerate(parts):
            store.append(A, Stream.STDOUT, part)
            if number in (0, 3):  # the subscriber saw only these two events
                for chunk in in_order.chunks(OutputAppended(A, Stream.STDOUT, offset, part)):
                    seen += chunk
            offset += len(part)
        for chunk in in_order.rest(A, Stream.STDOUT):
            seen += chunk
        assert not list(in_order.rest(A, Stream.STDOUT))
        return bytes(seen)

    assert asyncio.run(scenario()) == b"first dropped also dropped kept lost at the end"


def test_files_appear_when_a_machine_starts_and_hold_what_the_store_holds(
    tmp_path: Path
) -> None:
    """A (runs, prints; its events partly unread), B (runs, prints nothing), C (skipped)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "c.out").write_bytes(b"an earlier run's\n")

    async def scenario() -> None:
        store = OutputStore(tmp_path / "run")
        runs = {}
        for mid in ("a", "b", "c"):
            machine = Machine(id=MachineId(mid), name=mid, kind=MachineKind.LOCAL,
                              os=OsType.LINUX)
            runs[MachineId(mid)] = MachineRun(machine, Command(CommandId.SHELL, "true"))
            store.attach(runs[MachineId(mid)])
        written = OutputDir(out_dir, Run("r", runs), store)
        assert list(out_dir.iterdir()) == [out_dir / "c.out"]  # nothing made up front

        async def events() -> AsyncIterator[Event]:
            for mid in (A, B):
                yield StateChanged(mid, RunState.RUNNING)
                runs[mid].started = utc_now()
            assert sorted(p.name for p in out_dir.iterdir()) == [
                "a.err", "a.out", "b.err", "b.out", "c.out"]
            store.append(A, Stream.STDOUT, b"seen ")
            yield OutputAppended(A, Stream.STDOUT, 0, b"seen ")
            store.append(A, Stream.STDOUT, b"never an event")  # dropped, or unread at the end
            yield Finished(B, RunState.SUCCEEDED, 0)
            yield Finished(MachineId("c"), RunState.SKIPPED, error="skipped: stopped")

        await written.write(events())
        assert written.problem() == ""

    asyncio.run(scenario())
    assert (out_dir / "a.out").read_bytes() == b"seen never an event"
    assert (out_dir / "a.err").read_bytes() == b""
    assert (out_dir / "b.out").read_bytes() == b""
    assert (out_dir / "c.out").read_bytes() == b"an earlier run's\n"
    assert not (out_dir / "c.err").exists()
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in out_dir.glob("[ab].*"))
