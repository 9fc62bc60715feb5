"""Updating a run command while its script runs, as the Arc page documents it: "Update ...
stops the previous run command", and the output and error blobs are overwritten by each run.

Each test starts a script that leaves a background process, updates the run command (PUT on
Arc and on a VM, Compute's PATCH), then checks the processes themselves (gone, not merely
unreported), that the new sequence runs, and that the blobs hold the second run's bytes only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.arm_client import Api, make_fleet, sandbox_api
from tests.sandbox.test_run_commands import (
    LINUX_ARC,
    LINUX_VM,
    blob_bytes,
    machine_root,
    pid_alive,
    survivors,
    wait_path,
)

VM = Api.vm_path("vm-1")
ARC = Api.arc_path("arc-1")
_FIRST = ("#!/bin/bash\n"
          "echo first-run\n"
          "echo first-error >&2\n"
          "sleep 300 &\n"
          "echo $! >> pids\n"
          "echo $$ >> pids\n"
          "wait\n")
_SECOND = "echo second-run\necho second-error >&2\n"


def _seq_dir(root: Path, machine: Mapping[str, Any], name: str, seq: int) -> Path:
    return machine_root(root, machine) / "download" / name / str(seq)


async def _start_first(
    api: Api, root: Path, path: str, machine: Mapping[str, Any], out: str, err: str
) -> list[int]:
    """PUT the long script, wait until it runs and both blobs hold its first lines; its PIDs."""
    props = {"source": {"script": _FIRST}, "outputBlobUri": out, "errorBlobUri": err}
    put = await api.put(path, "job", props)
    assert put.status_code == 201, put.text
    pids_file = _seq_dir(root, machine, "job", 1) / "pids"
    pids = [int(p) for p in (await wait_path(pids_file, within=30, lines=2)).split()]
    assert all(pid_alive(p) for p in pids)
    await api.wait_for(path, "job", lambda b: "first-run" in
                       b["properties"]["instanceView"]["output"], within=30)
    # The handler appends every flush: wait until the first run's bytes reached both blobs,
    # so that "overwritten" is tested against blobs that really had something in them.
    for url, text in ((out, b"first-run\n"), (err, b"first-error\n")):
        await _wait_blob(api, url, text)
    return pids


async def _wait_blob(api: Api, url: str, wanted: bytes) -> None:
    deadline = time.monotonic() + 30
    while (await api.client.get(url, headers={"x-ms-version": "2022-11-02"})).content != wanted:
        assert time.monotonic() < deadline, f"the blob never held {wanted!r}"
        await asyncio.sleep(0.05)


async def _second_run_alone(
    api: Api, root: Path, path: str, machine: Mapping[str, Any], pids: list[int],
    out: str, err: str,
) -> None:
    """The first run's processes are gone, sequence 2 ran, the blobs hold its bytes only."""
    assert await survivors(pids, within=10) == []
    body = await api.wait_for(path, "job", within=30)
    view = body["properties"]["instanceView"]
    assert (view["executionState"], view["exitCode"]) == ("Succeeded", 0)
    assert (view["output"], view["error"]) == ("second-run\n", "second-error\n")
    assert await blob_bytes(api, out) == b"second-run\n"
    assert await blob_bytes(api, err) == b"second-error\n"
    assert (_seq_dir(root, machine, "job", 2) / "script.sh").read_text() == _SECOND
    assert not _seq_dir(root, machine, "job", 1).exists()


@pytest.mark.parametrize(("path", "machine"), [(ARC, LINUX_ARC), (VM, LINUX_VM)],
                         ids=["arc", "vm"])
async def test_a_put_while_running_stops_the_old_run_and_overwrites_the_blobs(
    tmp_path: Path, path: str, machine: Mapping[str, Any]
) -> None:
    async with sandbox_api(make_fleet(machine), tmp_path) as api:
        out, err = api.blob_url("update/out"), api.blob_url("update/err")
        pids = await _start_first(api, tmp_path, path, machine, out, err)
        props = {"source": {"script": _SECOND}, "outputBlobUri": out, "errorBlobUri": err}
        changed = await api.put(path, "job", props)
        assert changed.status_code == 200, changed.text
        assert changed.json()["properties"]["provisioningState"] == "Updating"
        await _second_run_alone(api, tmp_path, path, machine, pids, out, err)


async def test_a_compute_patch_while_running_stops_the_old_run(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX_VM), tmp_path) as api:
        out, err = api.blob_url("patch/out"), api.blob_url("patch/err")
        pids = await _start_first(api, tmp_path, VM, LINUX_VM, out, err)
        patched = await api.client.patch(f"{VM}/runCommands/job",
                                         params={"api-version": "2025-04-01"},
                                         json={"properties": {"source": {"script": _SECOND}}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["properties"]["provisioningState"] == "Updating"
        await _second_run_alone(api, tmp_path, VM, LINUX_VM, pids, out, err)


async def test_an_arc_tags_patch_leaves_the_running_script_alone(tmp_path: Path) -> None:
    # Arc's PATCH (2025-01-13) carries tags only, which never reach the handler: no new
    # sequence, so nothing to stop. Its example answers 200 with the run's own instanceView.
    async with sandbox_api(make_fleet(LINUX_ARC), tmp_path) as api:
        out, err = api.blob_url("tags/out"), api.blob_url("tags/err")
        pids = await _start_first(api, tmp_path, ARC, LINUX_ARC, out, err)
        patched = await api.client.patch(f"{ARC}/runCommands/job",
                                         params={"api-version": "2025-01-13"},
                                         json={"tags": {"owner": "ops"}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["properties"]["instanceView"]["executionState"] == "Running"
        assert all(pid_alive(p) for p in pids)
        assert not _seq_dir(tmp_path, LINUX_ARC, "job", 2).exists()
        assert (await api.view(ARC, "job"))["executionState"] == "Running"
