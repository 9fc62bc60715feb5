"""Protected values are masked at ingest: the store, the events and the run state agree,
re-read ranges are stored once, and a run taken up after a crash goes on where it was."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.backends.base import IfMissing
from core.events import Event, Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.fanout import FanOut, plan_run
from core.model import (
    Command,
    CommandId,
    Health,
    Machine,
    MachineId,
    Parameter,
    RunState,
    Stream,
)
from core.output import OutputStore
from core.redaction import SecretMask, StreamRedactor
from tests.fakes import machines

SECRET = "s3cr3t-value"
COMMAND = Command(CommandId.SHELL, "x", timeout=60,
                  parameters=(Parameter("TOKEN", SECRET, protected=True),))


@dataclass
class Replay:
    """A backend that says exactly the events it is given, for ``run`` and ``attach``."""

    events: list[MachineEvent]
    attached: list[MachineId] = field(default_factory=list)

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: m.health for m in machines}

    async def run(self, machine: Machine, command: Command, *, run_id: str
                  ) -> AsyncIterator[MachineEvent]:
        for event in self.events:
            yield event

    async def attach(self, machine: Machine, command: Command, *, run_id: str,
                     if_missing: IfMissing = IfMissing.REPORT) -> AsyncIterator[MachineEvent]:
        self.attached.append(machine.id)
        async for event in self.run(machine, command, run_id=run_id):
            yield event

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


async def run_events(fanout: FanOut) -> list[Event]:
    sub = fanout.subscribe()
    seen: list[Event] = []

    async def drain() -> None:
        async for event in sub:
            seen.append(event)

    drainer = asyncio.create_task(drain())
    await fanout.execute()
    await drainer
    return seen


async def test_secrets_are_masked_before_the_store_and_every_subscriber(tmp_path: Path) -> None:
    mid = "m000"
    out = Stream.STDOUT
    backend = Replay([
        StateChanged(mid, RunState.RUNNING, f"started with {SECRET}"),
        OutputAppended(mid, out, 0, b"hello "),
        OutputAppended(mid, out, 3, b"lo wor"),  # a range read again
        OutputAppended(mid, out, 0, b"hel"),
        OutputAppended(mid, out, 9, b"ld s3cr"),  # the secret cut between two reads
        OutputAppended(mid, out, 16, b"3t-value!\n"),
        TailUpdated(mid, out, b"r3t-value!\n"),  # the tail starts inside the secret
        Finished(mid, RunState.FAILED, 1, error=f"exit 1: {SECRET} refused"),
    ])
    run = plan_run([(machines(1)[0], COMMAND)])
    fanout = FanOut(run, lambda _m: backend, OutputStore(tmp_path), None)
    events = await run_events(fanout)

    mr = run.machines[mid]
    assert Path(mr.stdout_file).read_bytes() == b"hello world ***!\n"
    assert mr.stdout_bytes == len(b"hello world ***!\n")
    assert mr.error == "exit 1: *** refused"
    assert mr.masked == 2  # once in the output, once in the error
    appended = [e for e in events if isinstance(e, OutputAppended)]
    assert [(e.offset, e.data) for e in appended] == [
        (0, b"hello "), (6, b"wor"), (9, b"ld "), (12, b"***!\n")]
    (tail,) = [e for e in events if isinstance(e, TailUpdated)]
    assert tail.tail == b"***!\n" and fanout.output.tail(mid, out) == b"***!\n"
    (state,) = [e for e in events if isinstance(e, StateChanged)]
    assert state.message == "started with ***"
    (finished,) = [e for e in events if isinstance(e, Finished)]
    assert finished.error == "exit 1: *** refused"
    for path in tmp_path.rglob("*"):
        assert SECRET[:6].encode() not in path.read_bytes(), path


async def test_what_was_held_back_is_stored_when_the_machine_ends(tmp_path: Path) -> None:
    mid = "m000"
    backend = Replay([StateChanged(mid, RunState.RUNNING),
                      OutputAppended(mid, Stream.STDERR, 0, b"almost s3cr3t"),
                      Finished(mid, RunState.SUCCEEDED, 0)])
    run = plan_run([(machines(1)[0], COMMAND)])
    await FanOut(run, lambda _m: backend, OutputStore(tmp_path), None).execute()
    mr = run.machines[mid]
    assert Path(mr.stderr_file).read_bytes() == b"almost s3cr3t"
    assert mr.masked == 0 and mr.stderr_bytes == 13


def source_chunks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(i, data[i:i + size]) for i in range(0, len(data), size)]


async def test_attach_takes_up_a_masked_stream_where_its_file_ends(tmp_path: Path) -> None:
    """A process masked and stored part of a stream, then died holding bytes back (maybe
    in the middle of a write); the next one reads the stream again from its start."""
    source = (b"one s3cr3t-value two s3cr3t-values3cr3t-value three s3cr"
              b"3t-value four\n")
    expected, count = SecretMask([SECRET]).mask(source)
    machine = machines(1)[0]
    for died_after in range(1, len(source) // 5 + 1):
        for torn in (False, True):
            run_dir = tmp_path / f"{died_after}-{torn}"
            run = plan_run([(machine, COMMAND)])
            first = OutputStore(run_dir)
            first.attach(run.machines[machine.id])
            redactor = StreamRedactor(SecretMask([SECRET]))
            chunks = source_chunks(source, 5)[:died_after]
            for number, (offset, data) in enumerate(chunks):
                before = redactor.mark
                let_through = redactor.feed(offset, data)
                size = first.stream(machine.id, Stream.STDOUT).size
                first.append(machine.id, Stream.STDOUT, let_through, before=before,
                             after=redactor.mark)
                if torn and number == len(chunks) - 1 and let_through:
                    # Killed inside the last write: only half of its bytes reached the file.
                    first.flush()
                    os.truncate(run.machines[machine.id].stdout_file,
                                size + len(let_through) // 2)
            first.close()

            mid = machine.id
            backend = Replay([StateChanged(mid, RunState.RUNNING),
                              *(OutputAppended(mid, Stream.STDOUT, offset, data)
                                for offset, data in source_chunks(source, 7)),
                              Finished(mid, RunState.SUCCEEDED, 0)])
            resumed = plan_run([(machine, COMMAND)], run_id=run.run_id)
            await FanOut(resumed, lambda _m, b=backend: b, OutputStore(run_dir), None,
                         reattach=True).execute()
            mr = resumed.machines[mid]
            assert Path(mr.stdout_file).read_bytes() == expected, (died_after, torn)
            assert mr.masked == count and backend.attached == [mid]


def killed_with_writes_queued(store_some: Callable[[], None]) -> None:
    """Run ``store_some`` on an event loop that then stops for good, as a killed process's
    does: the files' writes wait for the loop's next turn, which never comes."""
    loop = asyncio.new_event_loop()

    async def work() -> None:
        store_some()
        loop.stop()  # the callbacks work() scheduled do not run (asyncio's documented rule)

    task = loop.create_task(work())
    loop.run_forever()
    assert task.done()
    loop.close()


def test_attach_takes_up_a_stream_whose_last_writes_never_reached_the_file(
        tmp_path: Path) -> None:
    """A process killed between storing bytes and writing them loses the write and its
    marks record together; the next one reads them again and the file ends byte-exact."""
    source = (b"one s3cr3t-value two s3cr3t-values3cr3t-value three s3cr"
              b"3t-value four\n")
    expected, count = SecretMask([SECRET]).mask(source)
    machine = machines(1)[0]
    mid = machine.id
    chunks = source_chunks(source, 5)
    for written in range(len(chunks)):
        for lost in range(1, len(chunks) - written + 1):
            run_dir = tmp_path / f"{written}-{lost}"
            run = plan_run([(machine, COMMAND)])
            first = OutputStore(run_dir)
            first.attach(run.machines[mid])
            redactor = StreamRedactor(SecretMask([SECRET]))

            def store(part: list[tuple[int, bytes]], first: OutputStore = first,
                      redactor: StreamRedactor = redactor) -> None:
                for offset, data in part:
                    before = redactor.mark
                    first.append(mid, Stream.STDOUT, redactor.feed(offset, data),
                                 before=before, after=redactor.mark)

            store(chunks[:written])
            first.flush()
            on_disk = first.stream(mid, Stream.STDOUT).size
            killed_with_writes_queued(functools.partial(store, chunks[written:written + lost]))
            stdout_file = Path(run.machines[mid].stdout_file)
            assert (stdout_file.stat().st_size if stdout_file.exists() else 0) == on_disk

            backend = Replay([StateChanged(mid, RunState.RUNNING),
                              *(OutputAppended(mid, Stream.STDOUT, offset, data)
                                for offset, data in source_chunks(source, 7)),
                              Finished(mid, RunState.SUCCEEDED, 0)])
            resumed = plan_run([(machine, COMMAND)], run_id=run.run_id)
            asyncio.run(FanOut(resumed, lambda _m, b=backend: b, OutputStore(run_dir), None,
                               reattach=True).execute())
            mr = resumed.machines[mid]
            assert Path(mr.stdout_file).read_bytes() == expected, (written, lost)
            assert mr.masked == count
