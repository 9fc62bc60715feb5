"""Run commands on the sandbox's machines, through the ARM API: the Linux handler's semantics.

Every test talks HTTP to an in-process sandbox, starts real scripts (or simulated ones) and
checks what an ARM client sees: instance views, provisioning states, long-running
operations, the output blobs, and the processes left on this machine.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.blob_sink import BlobSinks
from core.sandbox.service import machine_folder
from tests.sandbox.arm_client import Api, make_fleet, sandbox_api

VM = Api.vm_path("vm-1")
WIN = Api.vm_path("win-1")
ARC = Api.arc_path("arc-1")
LINUX_VM = {"name": "vm-1", "kind": "vm", "os": "linux"}
LINUX_ARC = {"name": "arc-1", "kind": "arc", "os": "linux", "agent_version": "1.45.02800.0"}
WINDOWS_VM = {"name": "win-1", "kind": "vm", "os": "windows"}
STORAGE_VERSION = "2022-11-02"
_MACHINES = {m["name"]: m for m in (LINUX_VM, LINUX_ARC, WINDOWS_VM)}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")


def failed(code: int) -> str:
    return ("Execution failed: failed to execute command: command terminated with exit "
            f"status={code}")


def machine_root(root: Path, machine: Mapping[str, Any]) -> Path:
    """The machine's own folder in a sandbox whose root is ``root``."""
    [spec] = make_fleet(machine).machines
    return root / "machines" / machine_folder(spec)


def run_dir(tmp_path: Path, machine: str, name: str, seq: int = 1) -> Path:
    """Where the sandbox runs ``name``'s sequence ``seq`` on ``machine`` (root = tmp_path)."""
    return machine_root(tmp_path, _MACHINES[machine]) / "download" / name / str(seq)


async def blob_head(api: Api, url: str) -> httpx.Response:
    return await api.client.head(url, headers={"x-ms-version": STORAGE_VERSION})


async def blob_bytes(api: Api, url: str) -> bytes:
    response = await api.client.get(url, headers={"x-ms-version": STORAGE_VERSION})
    assert response.status_code == 200, response.text
    return response.content


async def wait_path(path: Path, within: float = 10.0, lines: int = 1) -> str:
    """The text of ``path`` once it exists with at least ``lines`` complete lines."""
    deadline = time.monotonic() + within
    while True:
        if path.exists():
            text = path.read_text()
            if text.count("\n") >= lines:
                return text
        assert time.monotonic() < deadline, f"{path} did not appear within {within} s"
        await asyncio.sleep(0.02)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def survivors(pids: Iterable[int], within: float = 3.0) -> list[int]:
    """The PIDs still alive after giving them ``within`` seconds to go."""
    deadline = time.monotonic() + within
    while alive := [p for p in pids if pid_alive(p)]:
        if time.monotonic() >= deadline:
            return alive
        await asyncio.sleep(0.05)
    return []


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def state(body: Mapping[str, Any]) -> tuple[str, str]:
    props = body["properties"]
    return props["provisioningState"], props.get("instanceView", {}).get("executionState", "")


def running(body: Mapping[str, Any]) -> bool:
    return state(body)[1] == "Running"


# ----------------------------------------------------------------------- 4096-byte tails


async def test_instance_view_holds_the_last_4096_bytes_of_each_stream(tmp_path: Path) -> None:
    # stdout: 3000 two-byte characters and an "x" (6001 bytes), so the last 4096 bytes
    # start in the middle of an "é"; stderr: 2000 three-byte "€" then "yz" (6002 bytes), cut
    # after the first byte of a "€" (two stray continuation bytes).
    script = ("#!/bin/bash\n"
              "for i in $(seq 3000); do printf 'é'; done; printf x\n"
              "for i in $(seq 2000); do printf '€' >&2; done; printf yz >&2\n")
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        out_url = api.blob_url("tails/out")
        err_url = api.blob_url("tails/err")
        put = await api.put(VM, "tails", {"source": {"script": script},
                                          "outputBlobUri": out_url, "errorBlobUri": err_url})
        assert put.status_code == 201, put.text
        short = await api.put(VM, "short", {"source": {"script": "echo hi; echo oops >&2"}})
        assert short.status_code == 201, short.text
        body = await api.wait_for(VM, "tails")
        view = body["properties"]["instanceView"]
        stdout = "é" * 3000 + "x"
        stderr = "€" * 2000 + "yz"
        assert view["executionState"] == "Succeeded"
        assert view["output"] == stdout.encode()[-4096:].decode("utf-8", errors="replace")
        assert view["output"].startswith("\ufffdé")
        assert len(view["output"].encode()) == 4096 - 1 + 3  # one byte became U+FFFD
        assert view["error"] == stderr.encode()[-4096:].decode("utf-8", errors="replace")
        assert view["error"].startswith("\ufffd\ufffd€")
        assert view["error"].endswith("€yz")
        # The blobs hold the whole of each stream, exactly.
        assert await blob_bytes(api, out_url) == stdout.encode()
        assert await blob_bytes(api, err_url) == stderr.encode()
        # Short output is shown whole, each stream on its own.
        short_view = (await api.wait_for(VM, "short"))["properties"]["instanceView"]
        assert short_view["output"] == "hi\n"
        assert short_view["error"] == "oops\n"


async def test_tails_stay_within_4096_bytes_while_the_script_writes(tmp_path: Path) -> None:
    # A fast writer grows the file between the tail's size check and its read.
    script = "for i in $(seq 150000); do echo 0123456789abcdef; done"
    fleet = make_fleet(LINUX_VM, flush_interval=0.05)
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "flood", {"source": {"script": script}})
        assert put.status_code == 201, put.text
        seen: list[str] = []
        while (view := await api.view(VM, "flood"))["executionState"] in ("Unknown", "Running"):
            seen.append(view["output"])
            await asyncio.sleep(0.01)
        assert view["executionState"] == "Succeeded"
        assert view["output"] == ("0123456789abcdef\n" * 300)[-4096:]
        assert any(seen)
        assert max(len(tail) for tail in seen) <= 4096


# ----------------------------------------------------------------------- flush interval


async def test_tails_and_blob_grow_once_per_flush_interval(tmp_path: Path) -> None:
    interval = 0.5
    script = "#!/bin/bash\nfor i in $(seq 1 15); do echo \"line $i\"; sleep 0.1; done\n"
    expected = "".join(f"line {i}\n" for i in range(1, 16)).encode()
    fleet = make_fleet(LINUX_VM, flush_interval=interval)
    async with sandbox_api(fleet, tmp_path) as api:
        url = api.blob_url("flush/out")
        put = await api.put(VM, "ticks", {"source": {"script": script}, "outputBlobUri": url})
        assert put.status_code == 201, put.text
        body = await api.wait_for(VM, "ticks", running)
        began = time.monotonic()
        samples: list[tuple[int, int]] = []  # (blob size, committed blocks) while Running
        tails: list[str] = []
        while True:
            head = await blob_head(api, url)
            assert head.status_code == 200, head.text
            samples.append((int(head.headers["Content-Length"]),
                            int(head.headers["x-ms-blob-committed-block-count"])))
            body = (await api.get(VM, "ticks")).json()
            view = body["properties"]["instanceView"]
            if view["executionState"] != "Running":
                break
            tails.append(view["output"])
            assert time.monotonic() - began < 15, "the script did not end"
            await asyncio.sleep(0.03)
        elapsed = time.monotonic() - began
        assert view["executionState"] == "Succeeded"
        ceiling = elapsed / interval + 2
        assert len(samples) >= 10  # sampled far more often than the interval
        sizes = {size for size, _ in samples}
        assert 2 <= len(sizes) <= ceiling, (sizes, elapsed)
        assert 2 <= len(set(tails)) <= ceiling, (set(tails), elapsed)
        # Every tail seen is a prefix of the output: it grows, it never changes behind.
        assert all(expected.decode().startswith(tail) for tail in tails)
        # One Append Block per flush: the block count moves exactly when the size does.
        by_size: dict[int, set[int]] = {}
        for size, blocks in samples:
            by_size.setdefault(size, set()).add(blocks)
        assert all(len(blocks) == 1 for blocks in by_size.values()), by_size
        ordered = sorted((size, blocks.pop()) for size, blocks in by_size.items())
        assert [b for _, b in ordered] == sorted({b for _, b in ordered})
        # After the end: the whole output, byte for byte, in a handful of blocks.
        assert await blob_bytes(api, url) == expected
        final = await blob_head(api, url)
        blocks = int(final.headers["x-ms-blob-committed-block-count"])
        assert 2 <= blocks <= ceiling + 1
        assert view["output"] == expected.decode()


# ----------------------------------------------------------------------------- timeout

# Runs for five minutes unless killed: far longer than any wait below.
_SLEEPER = ("#!/bin/bash\n"
            "echo started\n"
            "sleep 300 &\n"
            "echo $! >> pids\n"
            "echo $$ >> pids\n"
            "wait\n")


async def test_timeout_kills_the_process_group_and_fails_with_minus_one(tmp_path: Path) -> None:
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        began = time.monotonic()
        put = await api.put(VM, "slow", {"source": {"script": _SLEEPER}, "timeoutInSeconds": 1})
        assert put.status_code == 201, put.text
        unlimited = await api.put(VM, "unlimited", {
            "source": {"script": "sleep 1.3; echo finished"}, "timeoutInSeconds": 0})
        assert unlimited.status_code == 201, unlimited.text
        pids = [int(p) for p in (await wait_path(run_dir(tmp_path, "vm-1", "slow") / "pids",
                                                 lines=2)).split()]
        # Ended within a minute, so by the 1 s timeout and not by the script's own 300 s.
        body = await api.wait_for(VM, "slow", within=60)
        elapsed = time.monotonic() - began
        view = body["properties"]["instanceView"]
        assert view["executionState"] == "Failed"
        assert view["exitCode"] == -1
        assert view["executionMessage"] == failed(-1)
        assert view["output"] == "started\n"
        assert elapsed >= 0.9  # not before the timeout
        assert await survivors(pids) == []  # the script and its background child
        # timeoutInSeconds 0: no limit at all.
        done = (await api.wait_for(VM, "unlimited"))["properties"]["instanceView"]
        assert done["executionState"] == "Succeeded", done
        assert done["output"] == "finished\n"


async def test_timeouts_can_report_timed_out(tmp_path: Path) -> None:
    fleet = make_fleet(LINUX_VM, timeouts_report_as="TimedOut")
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "slow", {"source": {"script": _SLEEPER}, "timeoutInSeconds": 1})
        assert put.status_code == 201, put.text
        pids = [int(p) for p in (await wait_path(run_dir(tmp_path, "vm-1", "slow") / "pids",
                                                 lines=2)).split()]
        view = (await api.wait_for(VM, "slow"))["properties"]["instanceView"]
        assert view["executionState"] == "TimedOut"
        assert view["exitCode"] == -1
        assert await survivors(pids) == []


# ------------------------------------------------------------- kill on DELETE and re-PUT


async def test_delete_kills_the_running_script(tmp_path: Path) -> None:
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "doomed", {"source": {"script": _SLEEPER}})
        assert put.status_code == 201, put.text
        pids = [int(p) for p in (await wait_path(run_dir(tmp_path, "vm-1", "doomed") / "pids",
                                                 lines=2)).split()]
        assert all(pid_alive(p) for p in pids)
        deleted = await api.delete(VM, "doomed")
        assert deleted.status_code == 202, deleted.text
        location = deleted.headers["Location"]
        deadline = time.monotonic() + 10
        while (polled := await api.client.get(location)).status_code == 202:
            assert time.monotonic() < deadline, "the delete did not finish"
            await asyncio.sleep(0.05)
        assert polled.status_code == 204, polled.text
        assert (await api.get(VM, "doomed")).status_code == 404
        assert await survivors(pids) == []
        # Deleting what is not there is a plain 204.
        assert (await api.delete(VM, "doomed")).status_code == 204


async def test_changed_re_put_kills_the_old_run_and_starts_seq_2(tmp_path: Path) -> None:
    first = ("#!/bin/bash\n"
             "echo first-run\n"
             "sleep 30 &\n"
             "echo $! >> pids\n"
             "echo $$ >> pids\n"
             "wait\n")
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        url = api.blob_url("reput/out")
        props = {"source": {"script": first}, "outputBlobUri": url}
        put = await api.put(VM, "job", props)
        assert put.status_code == 201, put.text
        assert put.json()["properties"]["provisioningState"] == "Creating"
        seq1 = run_dir(tmp_path, "vm-1", "job", 1)
        pids = [int(p) for p in (await wait_path(seq1 / "pids", lines=2)).split()]
        started = await api.wait_for(VM, "job", lambda b: "first-run" in
                                     b["properties"]["instanceView"]["output"])
        created = (await blob_head(api, url)).headers["x-ms-creation-time"]

        # An identical re-PUT: 200, nothing new runs, the same processes go on.
        same = await api.put(VM, "job", props)
        assert same.status_code == 200, same.text
        assert same.json()["properties"]["provisioningState"] == "Creating"
        await asyncio.sleep(0.3)
        assert all(pid_alive(p) for p in pids)
        assert not run_dir(tmp_path, "vm-1", "job", 2).exists()
        again = await api.view(VM, "job")
        assert again["executionState"] == "Running"
        assert again["startTime"] == started["properties"]["instanceView"]["startTime"]

        # x-ms-creation-time has whole seconds: let one pass before the blob is re-created.
        await asyncio.sleep(1.1)
        changed = await api.put(VM, "job", {**props, "source": {"script": "echo second-run"}})
        assert changed.status_code == 200, changed.text
        assert changed.json()["properties"]["provisioningState"] == "Updating"
        assert "Azure-AsyncOperation" in changed.headers
        assert await survivors(pids) == []
        body = await api.wait_for(VM, "job")
        view = body["properties"]["instanceView"]
        assert view["executionState"] == "Succeeded"
        assert view["output"] == "second-run\n"
        assert body["properties"]["provisioningState"] == "Succeeded"
        assert await blob_bytes(api, url) == b"second-run\n"
        recreated = (await blob_head(api, url)).headers["x-ms-creation-time"]
        assert recreated != created
        assert (run_dir(tmp_path, "vm-1", "job", 2) / "script.sh").read_text() == "echo second-run"
        assert not seq1.exists()  # the handler keeps only the newest sequence's files


async def test_machines_of_one_name_in_two_groups_keep_their_own_files(tmp_path: Path) -> None:
    # Two machines, not one: a run on the second must neither see the first's HOME nor
    # truncate the output files the first's script wrote (it once did, at random, when the
    # two ran together: one came out with no output; issue 18's --output-dir twins test).
    fleet = make_fleet(LINUX_VM, {**LINUX_VM, "resource_group": "rg-other"})
    other = Api.vm_path("vm-1", group="rg-other")
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "job", {"source": {"script": 'echo first; echo a > "$HOME/left"'}})
        assert put.status_code == 201, put.text
        first = (await api.wait_for(VM, "job"))["properties"]["instanceView"]
        assert (first["executionState"], first["output"]) == ("Succeeded", "first\n")
        put = await api.put(other, "job", {"source": {
            "script": 'test -e "$HOME/left" && echo shared-home || echo own-home'}})
        assert put.status_code == 201, put.text
        second = (await api.wait_for(other, "job"))["properties"]["instanceView"]
        assert (second["executionState"], second["output"]) == ("Succeeded", "own-home\n")
        assert (run_dir(tmp_path, "vm-1", "job") / "stdout").read_bytes() == b"first\n"


# -------------------------------------------------------------------- handler semantics


async def test_parameters_environment_cwd_and_script_file(tmp_path: Path) -> None:
    # No shebang: the handler's bash runs it (bash-only syntax below).
    script = ("[[ -n \"$BASH_VERSION\" ]] && echo shell=bash\n"
              "echo \"argc=$#\"\n"
              "for a in \"$@\"; do echo \"arg=[$a]\"; done\n"
              "echo \"FOO=[$FOO]\"\n"
              "echo \"PROT=[$PROT]\"\n"
              "echo \"EMPTY=${EMPTY-unset}\"\n"
              "echo \"HOSTNAME=$HOSTNAME\"\n"
              "echo \"cwd=$PWD\"\n"
              "stat -c 'mode=%a' script.sh\n"
              "ls\n")
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "params", {
            "source": {"script": script},
            "parameters": [
                {"name": "FOO", "value": "bar baz"},
                {"name": "", "value": "one two"},
                {"name": "", "value": ""},
                {"name": "EMPTY", "value": ""},
                {"name": "", "value": "$((6*7))"},
            ],
            "protectedParameters": [
                {"name": "PROT", "value": "hidden value"},
                {"name": "", "value": "last"},
                {"name": "", "value": "*.sh"},
            ],
        })
        assert put.status_code == 201, put.text
        view = (await api.wait_for(VM, "params"))["properties"]["instanceView"]
        where = run_dir(tmp_path, "vm-1", "params")
        # Unnamed values are appended unquoted to `bash -c`: split, expanded and globbed;
        # public ones first, empty ones skipped. Named ones are environment variables.
        assert view["output"].splitlines() == [
            "shell=bash",
            "argc=5",
            "arg=[one]",
            "arg=[two]",
            "arg=[42]",
            "arg=[last]",
            "arg=[script.sh]",
            "FOO=[bar baz]",
            "PROT=[hidden value]",
            "EMPTY=unset",
            "HOSTNAME=vm-1",
            f"cwd={where}",
            "mode=500",
            "script.sh",
            "stderr",
            "stdout",
        ]
        assert view["executionState"] == "Succeeded"
        assert view["executionMessage"] == "Execution completed"
        assert view["exitCode"] == 0
        assert (where / "script.sh").read_text() == script
        assert (where / "script.sh").stat().st_mode & 0o777 == 0o500
        assert (where / "stdout").read_text() == view["output"]
        assert (where / "stderr").read_bytes() == b""


async def test_exit_codes_states_and_timestamps(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wait_gate = f"while [ ! -e {gate} ]; do sleep 0.05; done\n"
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        puts = {
            "ok": await api.put(VM, "ok", {"source": {"script": wait_gate + "echo fine"}}),
            "async": await api.put(VM, "async", {"source": {"script": wait_gate + "exit 0"},
                                                 "asyncExecution": True}),
            "bad": await api.put(VM, "bad", {"source": {"script": wait_gate + "exit 3"}}),
            "fatal": await api.put(VM, "fatal", {"source": {"script": wait_gate + "exit 3"},
                                                 "treatFailureAsDeploymentFailure": True}),
        }
        for name, put in puts.items():
            assert put.status_code == 201, (name, put.text)
            assert put.json()["properties"]["provisioningState"] == "Creating"
            assert "instanceView" not in put.json()["properties"]
        for name in puts:
            body = await api.wait_for(VM, name, running)
            view = body["properties"]["instanceView"]
            assert view["executionMessage"] == "Execution in progress"
            assert TIMESTAMP.match(view["startTime"]), view
            assert "endTime" not in view
            # asyncExecution: provisioning is done as soon as the script runs.
            expected = "Succeeded" if name == "async" else "Creating"
            assert body["properties"]["provisioningState"] == expected, name
        operation = puts["ok"].headers["Azure-AsyncOperation"]
        assert (await api.client.get(operation)).json()["status"] == "InProgress"
        gate.touch()

        ok = await api.wait_for(VM, "ok")
        view = ok["properties"]["instanceView"]
        assert (ok["properties"]["provisioningState"], view["executionState"],
                view["executionMessage"], view["exitCode"]) == (
            "Succeeded", "Succeeded", "Execution completed", 0)
        assert TIMESTAMP.match(view["endTime"]) and view["startTime"] <= view["endTime"]
        assert (await api.client.get(operation)).json()["status"] == "Succeeded"

        bad = await api.wait_for(VM, "bad")
        view = bad["properties"]["instanceView"]
        assert (bad["properties"]["provisioningState"], view["executionState"],
                view["executionMessage"], view["exitCode"]) == (
            "Succeeded", "Failed", failed(3), 3)

        fatal = await api.wait_for(VM, "fatal")
        assert fatal["properties"]["provisioningState"] == "Failed"
        assert fatal["properties"]["instanceView"]["exitCode"] == 3
        status = (await api.client.get(puts["fatal"].headers["Azure-AsyncOperation"])).json()
        assert status["status"] == "Failed"
        assert failed(3) in status["error"]["message"]

        done = await api.wait_for(VM, "async")
        assert state(done) == ("Succeeded", "Succeeded")


async def test_blob_without_create_permission_fails_before_the_script(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "nocreate", {"source": {"script": f"touch {marker}"},
                                             "outputBlobUri": api.blob_url("nc/out", "ra")})
        assert put.status_code == 201, put.text
        view = (await api.wait_for(VM, "nocreate"))["properties"]["instanceView"]
        assert view["executionState"] == "Failed"
        assert view["exitCode"] == -101
        assert "output blob" in view["executionMessage"]
        await asyncio.sleep(0.2)
        assert not marker.exists()
        assert not (run_dir(tmp_path, "vm-1", "nocreate") / "script.sh").exists()


async def test_blob_off_this_machine_fails_without_a_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_http(self: BlobSinks) -> httpx.AsyncClient:
        raise AssertionError("the sandbox tried to reach a remote blob endpoint")

    monkeypatch.setattr(BlobSinks, "_http", no_http)
    marker = tmp_path / "ran"
    remote = "https://fleetrunprobe.blob.core.windows.net/c/out.log?sv=2022-11-02&sig=x"
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(VM, "remote", {"source": {"script": f"touch {marker}"},
                                           "errorBlobUri": remote})
        assert put.status_code == 201, put.text
        view = (await api.wait_for(VM, "remote"))["properties"]["instanceView"]
        assert view["exitCode"] == -101, view
        assert view["executionState"] == "Failed"
        assert "fleetrunprobe.blob.core.windows.net" in view["executionMessage"]
        assert not marker.exists()


async def test_run_as_user(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    fleet = make_fleet(LINUX_VM)
    # A user other than this one must be able to reach the run directory: a root of its own
    # (pytest's tmp_path lies in a directory only its owner may enter).
    with tempfile.TemporaryDirectory(prefix="fleetrun-runas-") as root:
        Path(root).chmod(0o711)
        async with sandbox_api(fleet, Path(root)) as api:
            missing = await api.put(VM, "ghost", {"source": {"script": f"touch {marker}"},
                                                  "runAsUser": "no-such-user-fleetrun"})
            assert missing.status_code == 201, missing.text
            view = (await api.wait_for(VM, "ghost"))["properties"]["instanceView"]
            assert (view["executionState"], view["exitCode"]) == ("Failed", -102)
            assert "no-such-user-fleetrun" in view["executionMessage"]
            assert not marker.exists()
            if os.geteuid() != 0:
                return  # running as another user needs root, as the real handler has
            other = await api.put(VM, "nobody", {"source": {"script": "id -un; pwd"},
                                                 "runAsUser": "nobody"})
            assert other.status_code == 201, other.text
            view = (await api.wait_for(VM, "nobody"))["properties"]["instanceView"]
            assert view["executionState"] == "Succeeded", view
            assert view["output"].splitlines() == [
                "nobody", str(run_dir(Path(root), "vm-1", "nobody"))]


@pytest.mark.parametrize("user", ["", "nobody"])
async def test_the_script_gets_a_minimal_environment_and_none_of_fleetruns(
    monkeypatch: pytest.MonkeyPatch, user: str
) -> None:
    if user and os.geteuid() != 0:
        pytest.skip("running as another user needs root")
    for name in ("FLEETRUN_SECRET_TOKEN", "FLEETRUN_SECRET_RUN_AS_PASSWORD",
                 "AZURE_CLIENT_SECRET"):
        monkeypatch.setenv(name, "planted-secret")
    fleet = make_fleet(LINUX_VM)
    with tempfile.TemporaryDirectory(prefix="fleetrun-env-") as root:
        Path(root).chmod(0o711)  # a run-as user must reach the run directory
        async with sandbox_api(fleet, Path(root)) as api:
            put = await api.put(VM, "env", {
                "source": {"script": 'tr "\\0" "\\n" < /proc/$$/environ'},
                "parameters": [{"name": "PUB", "value": "1"}],
                "protectedParameters": [{"name": "PROT", "value": "2"}],
                "runAsUser": user, "runAsPassword": "planted-secret" if user else "",
            })
            assert put.status_code == 201, put.text
            view = (await api.wait_for(VM, "env"))["properties"]["instanceView"]
    assert view["executionState"] == "Succeeded", view
    env = dict(line.split("=", 1) for line in view["output"].splitlines())
    account = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    assert "planted-secret" not in view["output"]
    assert re.fullmatch(r"[0-9a-f-]{16,80}", env.pop("FLEETRUN_RUN"))
    # Where no UTS namespace names the machine (always for another user), the hostname and
    # uname wrappers come first on PATH: the sandbox's own, and nothing of fleetrun's.
    safe_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    with_shims = f"{machine_root(Path(root), LINUX_VM) / 'bin'}:{safe_path}"
    assert env.pop("PATH") in ((with_shims,) if user else (safe_path, with_shims))
    assert env == {
        "HOME": account.pw_dir if user else str(machine_root(Path(root), LINUX_VM) / "home"),
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "SHELL": account.pw_shell,
        "LANG": "C.UTF-8",
        "HOSTNAME": "vm-1",
        "COMPUTERNAME": "vm-1",
        "ConfigExtensionName": "env",
        "ConfigSequenceNumber": "1",
        "PUB": "1",
        "PROT": "2",
    }


async def test_secrets_never_appear_in_responses(tmp_path: Path) -> None:
    password = "pw-SECRET-6c1f"
    protected = "prot-SECRET-9a2e"
    script = "printf %s \"$TOKEN\" > token; echo token-passed"
    fleet = make_fleet(LINUX_VM, LINUX_ARC)
    async with sandbox_api(fleet, tmp_path) as api:
        texts: list[str] = []
        for machine in (VM, ARC):
            put = await api.put(machine, "secret", {
                "source": {"script": script},
                "parameters": [{"name": "PUB", "value": "visible"}],
                "protectedParameters": [{"name": "TOKEN", "value": protected}],
                "runAsPassword": password,
            })
            assert put.status_code == 201, put.text
            texts.append(put.text)
            body = await api.wait_for(machine, "secret")
            assert body["properties"]["instanceView"]["output"] == "token-passed\n"
            kind = "vm-1" if machine == VM else "arc-1"
            assert (run_dir(tmp_path, kind, "secret") / "token").read_text() == protected
            assert body["properties"]["parameters"] == [{"name": "PUB", "value": "visible"}]
            assert "runAsPassword" not in body["properties"]
            if machine == ARC:
                assert body["properties"]["protectedParameters"] == []
            else:
                assert "protectedParameters" not in body["properties"]
            version = "2025-01-13" if machine == ARC else "2025-04-01"
            for params in ({"api-version": version},
                           {"api-version": version, "$expand": "instanceView"}):
                for path in (f"{machine}/runCommands/secret", f"{machine}/runCommands"):
                    response = await api.client.get(path, params=params)
                    assert response.status_code == 200, response.text
                    texts.append(response.text)
            for header in ("Azure-AsyncOperation", "Location"):
                texts.append((await api.client.get(put.headers[header])).text)
        assert len(texts) == 2 * 7
        for text in texts:
            assert password not in text
            assert protected not in text


async def test_at_most_25_run_commands_per_vm(tmp_path: Path) -> None:
    sim = {**LINUX_VM, "executor": "simulated", "simulate": {"duration": 0, "lines": 0}}
    fleet = make_fleet(sim)
    async with sandbox_api(fleet, tmp_path) as api:
        for n in range(25):
            put = await api.put(VM, f"rc-{n:02}", {"source": {"script": "true"}})
            assert put.status_code == 201, put.text
        refused = await api.put(VM, "rc-25", {"source": {"script": "true"}})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "OperationNotAllowed"
        assert "max=25" in error["message"]
        assert (await api.get(VM, "rc-25")).status_code == 404
        # Replacing one of the 25 is fine; so is a new one once one is deleted.
        replaced = await api.put(VM, "rc-00", {"source": {"script": "echo changed"}})
        assert replaced.status_code == 200, replaced.text
        assert (await api.delete(VM, "rc-01")).status_code in (200, 202, 204)
        assert (await api.put(VM, "rc-25", {"source": {"script": "true"}})).status_code == 201


async def test_put_body_errors_name_the_field(tmp_path: Path) -> None:
    fleet = make_fleet(LINUX_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        url = f"{VM}/runCommands/bad"
        params = {"api-version": "2025-04-01"}

        async def refused(body: object) -> dict[str, str]:
            response = await api.client.put(url, params=params, json=body)
            assert response.status_code == 400, response.text
            error: dict[str, str] = response.json()["error"]
            return error

        error = await refused({"properties": {"source": {"script": "true"}}})
        assert error["code"] == "LocationRequired"
        assert "location" in error["message"]
        error = await refused({"location": "westeurope", "properties": {
            "source": {"script": "true", "commandId": "RunShellScript"}}})
        assert error["code"] == "InvalidParameterConflictingProperties"
        assert "script" in error["message"] and "commandId" in error["message"]
        error = await refused({"location": "westeurope", "properties": {}})
        assert "properties.source" in error["message"]
        error = await refused({"location": "westeurope", "properties": {"source": {}}})
        assert "properties.source" in error["message"]
        error = await refused({"location": "westeurope", "properties": {
            "source": {"script": "true"}, "parameters": [{"name": "x"}]}})
        assert "properties.parameters[0]" in error["message"]
        error = await refused({"location": "westeurope", "properties": {
            "source": {"script": "true"}, "timeoutInSeconds": -1}})
        assert "timeoutInSeconds" in error["message"]
        assert (await api.get(VM, "bad")).status_code == 404


# ------------------------------------------------------------------------------ Windows


async def test_windows_asking_for_real_pwsh_without_it_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    fleet = make_fleet({**WINDOWS_VM, "executor": "process"})
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(WIN, "ps", {"source": {"script": "Write-Host hi"}})
        assert put.status_code == 201, put.text
        view = (await api.wait_for(WIN, "ps"))["properties"]["instanceView"]
        assert view["executionState"] == "Failed"
        assert "pwsh" in view["executionMessage"]
        assert 'executor = "process"' in view["executionMessage"]


async def test_windows_runs_pwsh_with_named_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    fake = bin_dir / "pwsh"
    fake.write_text("#!/bin/bash\nprintf '%s\\n' \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    script = "param([string]$Name)\nWrite-Host \"Hello $Name\""
    fleet = make_fleet(WINDOWS_VM)
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(WIN, "ps", {
            "source": {"script": script},
            "parameters": [{"name": "Name", "value": "World"},
                           {"name": "Skipped", "value": ""},
                           {"name": "Count", "value": "3"}],
            "protectedParameters": [{"name": "Secret", "value": "s 1"}],
        })
        assert put.status_code == 201, put.text
        view = (await api.wait_for(WIN, "ps"))["properties"]["instanceView"]
        assert view["executionState"] == "Succeeded", view
        args = view["output"].splitlines()
        script_path = run_dir(tmp_path, "win-1", "ps") / "script.ps1"
        assert "-NonInteractive" in args
        at = args.index("-File")
        assert args[at:] == ["-File", str(script_path), "-Name", "World", "-Count", "3",
                             "-Secret", "s 1"]
        assert script_path.read_text() == script


# ------------------------------------------------------------------ simulated executor


async def test_simulated_machine_plays_its_script_without_processes(tmp_path: Path) -> None:
    sim = {"name": "sim-1", "kind": "vm", "os": "linux", "executor": "simulated",
           "simulate": {"duration": 0.8, "lines": 4, "output": "{machine}: line {line}\n",
                        "error": "sim warning\n", "exit_code": 3}}
    full = "".join(f"sim-1: line {n}\n" for n in range(1, 5))
    path = Api.vm_path("sim-1")
    fleet = make_fleet(sim)
    async with sandbox_api(fleet, tmp_path) as api:
        url = api.blob_url("sim/out")
        before = children_of(os.getpid())
        began = time.monotonic()
        put = await api.put(path, "simrun", {"source": {"script": "this never runs"},
                                             "outputBlobUri": url})
        assert put.status_code == 201, put.text
        partial: list[str] = []
        while True:
            assert children_of(os.getpid()) <= before
            view = await api.view(path, "simrun")
            if view["executionState"] not in ("Unknown", "Running"):
                break
            if view["executionState"] == "Running" and view["output"] != full:
                partial.append(view["output"])
            assert time.monotonic() - began < 10
            await asyncio.sleep(0.03)
        assert time.monotonic() - began >= 0.6
        assert partial and all(full.startswith(p) for p in partial)
        assert (view["executionState"], view["exitCode"], view["executionMessage"]) == (
            "Failed", 3, failed(3))
        assert view["output"] == full
        assert view["error"] == "sim warning\n"
        assert await blob_bytes(api, url) == full.encode()
        assert not (machine_root(tmp_path, sim) / "download").exists()


async def _simulated_exit_codes(root: Path) -> list[int]:
    sims = {"name": "sim-{n:02}", "count": 12, "kind": "vm", "os": "linux",
            "executor": "simulated",
            "simulate": {"duration": 0, "lines": 1, "fail_ratio": 0.5, "fail_exit_code": 7}}
    fleet = make_fleet(sims, seed=11)
    codes = []
    async with sandbox_api(fleet, root) as api:
        for n in range(1, 13):
            put = await api.put(Api.vm_path(f"sim-{n:02}"), "dice", {"source": {"script": "x"}})
            assert put.status_code == 201, put.text
        for n in range(1, 13):
            body = await api.wait_for(Api.vm_path(f"sim-{n:02}"), "dice")
            codes.append(body["properties"]["instanceView"]["exitCode"])
    return codes


async def test_simulated_fail_ratio_is_repeatable_with_a_seed(tmp_path: Path) -> None:
    first = await _simulated_exit_codes(tmp_path / "a")
    second = await _simulated_exit_codes(tmp_path / "b")
    assert first == second
    assert set(first) == {0, 7}
