"""A run's stored output as each stream's whole byte sequence, from a lossy subscription.

A :class:`core.fanout.Subscription` drops output events for a consumer that falls behind
(its backlog past ``max_pending``); the bytes are safe in the output store. A consumer
that must see every byte (``--output-dir``, ``-o lines``) passes each event through
:class:`OutputInOrder`: what was dropped before it is read back from the store's file, so
the consumer gets each stream gapless and in order, masked as the store holds it.
"""

from __future__ import annotations

from collections.abc import Iterator

from core.events import OutputAppended
from core.model import MachineId, Stream
from core.output import OutputStore

_CHUNK = 1 << 20
"""Bytes read back from a store file at a time: a large gap needs no large buffer."""


class OutputInOrder:
    """Turns a subscription's output events into each stream's bytes, with no gap."""

    def __init__(self, store: OutputStore) -> None:
        self._store = store
        self._seen: dict[tuple[MachineId, Stream], int] = {}

    def chunks(self, event: OutputAppended) -> Iterator[bytes]:
        """The bytes of the stream from where the consumer left off to the end of ``event``."""
        key = (event.machine_id, event.stream)
        seen = self._seen.get(key, 0)
        end = event.offset + len(event.data)
        if end <= seen:
            return
        if event.offset > seen:
            yield from self._read_back(key, seen, event.offset)
            seen = event.offset
        self._seen[key] = end
        yield event.data[seen - event.offset:]

    def rest(self, machine_id: MachineId, stream: Stream) -> Iterator[bytes]:
        """What the store holds past what the consumer saw: events dropped before the end."""
        key = (machine_id, stream)
        seen = self._seen.get(key, 0)
        size = self._store.stream(machine_id, stream).size
        if size > seen:
            self._seen[key] = size
            yield from self._read_back(key, seen, size)

    def _read_back(self, key: tuple[MachineId, Stream], start: int, end: int
                   ) -> Iterator[bytes]:
        self._store.flush()  # the store writes its files a moment later; now, all of it
        try:
            with open(self._store.stream(*key).path, "rb") as stored:
                stored.seek(start)
                while start < end and (block := stored.read(min(_CHUNK, end - start))):
                    start += len(block)
                    yield block
        except FileNotFoundError:
            return  # the store could not write it (a full disk): it says so at the end
