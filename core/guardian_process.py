"""The guardian process itself: follows what fleetrun tells it and cleans up once it is gone.

fleetrun's side is :mod:`core.guardian`. Each line on stdin is one message:

    watch <cookie> <uid> <pgid>   a run is going (again, to give its group once started)
    forget <cookie>               it ended, and fleetrun cleaned up after it
    remove <hex of the path>      a folder to remove at the end

At the end of stdin fleetrun has exited or been killed: the runs still going are killed
(:func:`core.proctree.kill_runs`), the folders removed, and the guardian exits. Kept to the
lighter standard library, so that the process stays small.
"""

from __future__ import annotations

import os
import shutil
import sys

from core.proctree import Tracked, kill_runs


def watch_line(run: Tracked) -> str:
    return f"watch {run.cookie} {run.uid} {run.pgid}\n"


def forget_line(cookie: str) -> str:
    return f"forget {cookie}\n"


def remove_line(folder: str) -> str:
    return f"remove {os.fsencode(folder).hex()}\n"


def serve() -> None:
    """Follow fleetrun's messages until its end of the pipe closes; then clean up."""
    runs: dict[str, Tracked] = {}
    folders: set[bytes] = set()
    for line in sys.stdin.buffer:
        words = line.split()
        try:
            if words[0] == b"watch":
                cookie = words[1].decode()
                runs[cookie] = Tracked(cookie, int(words[2]), int(words[3]))
            elif words[0] == b"forget":
                runs.pop(words[1].decode(), None)
            elif words[0] == b"remove":
                folders.add(bytes.fromhex(words[1].decode()))
        except (IndexError, ValueError):
            continue  # not from fleetrun: nothing to act on
    kill_runs(runs.values())
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
