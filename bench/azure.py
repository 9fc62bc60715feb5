"""fleetrun's Azure path at fleet scale, under ARM's throttle budget.

N simulated VMs (1-3 s each, 3 lines of output, 1 s flush, no pickup delay) behind the
sandbox's default throttle buckets, which are ARM's per subscription: writes and deletes
200 at once then 10/s, reads 250 then 25/s. fleetrun's own client drives them: the machines
come from its Resource Graph query, then the fan-out runs them through the Compute backend
(PUT, instance-view polls, output blob tails, DELETE) with the ARM client's throttle budget
(default limits) and the pacing fleetrun uses for a sandbox with this flush interval.

The sandbox is a separate process (``fleetrun sandbox serve``), so this process's CPU time
is the client's alone; the server's CPU (read from /proc) is shown beside it.

Measured from the fan-out's start to its end:

- **wall time against the throttle-bound ideal** (bench/azure_bound.py): per subscription,
  the largest of the writes' bound (the last PUT, plus the longest run), the deletes' bound,
  and the reads' bound (when the best client with fleetrun's poll schedule, costing no time
  itself, can see the last machine end under the read bucket: polls held back by the bucket
  see more runs ended, so it needs fewer than one per poll interval of each run); with
  ``--subscriptions K`` the machines are spread over K subscriptions, which pace in
  parallel, so the ideal is the slowest subscription's bound.
- **429s**: every 429 the client received, whatever the bucket.
- requests sent by kind (ARM, and Storage reads of the output blobs), and **client CPU per
  machine**.

Goal: wall <= 1.10 x ideal with zero 429s, and at most 10 ms of client CPU per machine.
Below the table, where the time went: when the last PUT left, the reads the read budget had
to let out (and how long that takes at best), how long after a script ended the client
knew, the blob reads per machine (useful: the blob had grown since last seen; the rest found
nothing new), and the DELETEs still on their way when the fan-out returned (waited for,
else reported).

Every machine must end Succeeded with exactly the simulated output in its stdout file; a
run that does not is reported WRONG and the benchmark exits non-zero.

Options: ``python -m bench.azure [--sizes 200,1000] [--busy N] [--subscriptions K]``;
``--busy N`` runs N CPU-bound busy loops beside the client for each measurement (the load
average is printed beside every row).

**Shared-budget scenarios** (one subscription; combinable):

- ``--compute-limits``: the sandbox turns Compute's own limits on, with the run-command GETs
  fleetrun polls with (``run_command_instance_view``, and ``run_command_get``) put in the
  HighCostGet operation group beside the VM instance views the reference names: a run
  command's instance view is an instance view, the costly kind of GET the group is about
  (which group it really falls in is undocumented). Its 3-minute window allows 1.2 polls per
  machine (240 at 200 VMs) and its 30-minute window ten times that: the documented counts
  (160 and 300) would hold a 200-VM run for over 30 minutes, and with 1.2 per machine one
  3-minute gap binds the run (its first window's polls cannot see every machine end), so
  the bench runs in about 3 minutes.
- ``--second-client same|other``: a second, non-fleetrun client (bench/second_client.py, a
  process of its own) GETs a VM at half the read refill rate (12.5/s) for the whole run, as
  the same principal as fleetrun (``same``: the sandbox's own token, one read bucket) or as
  another (``other``: a ``[[principals]]`` token, its own bucket; only the 15x global one is
  shared). Its sent requests and 429s are shown below the table.

The ideal is then the bound of what the budget leaves fleetrun (bench/azure_bound.py's
``shared_bound``: fleetrun's poll schedule played against the reads left and the window).

Health is not checked before the run: a per-machine check costs one ARM read each (1,000
reads spent before the first PUT), and fleetrun itself skips it past 64 machines. Every
machine is taken as the graph lists it (a running VM is Unknown, which is tried).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.azure_bound import Bound, Bucket, Window, fleet_bound, shared_bound
from bench.second_client import TOKEN_ENV
from core.azure.arm import ArmClient
from core.azure.auth import StaticToken
from core.azure.blob import AppendBlobClient
from core.azure.budget import KINDS, ArmBudget, BudgetLimits
from core.azure.http import pooled_client
from core.azure.session import AzureSession, OutputContainer
from core.azure.settings import SANDBOX_TOKEN_ENV
from core.backends.compute import ComputeBackend
from core.events import Finished
from core.fanout import FanOut, Subscription, plan_run
from core.fleet.sandbox import sandbox_pacing
from core.inventory.azure_graph import query_machines
from core.model import Command, CommandId, MachineRun, RunState
from core.output import OutputStore
from core.sandbox.access import new_token
from core.sandbox.fleet import FleetSpec, load_fleet, parse_fleet

SIZES = (200, 1_000)
SUB = "00000000-0000-4000-8000-0000000000a2"


def subscriptions(k: int) -> list[str]:
    """``k`` subscription ids (the first is :data:`SUB`)."""
    return [SUB[:-3] + f"{0xa2 + i:03x}" for i in range(k)]


RESOURCE_GROUP = "rg-bench"
LOCATION = "westeurope"
DURATION = (1.0, 3.0)
LINES = 3
"""Lines each machine prints (``--lines``): 3 fit the instance view's 4 KB tail, so no blob
is read; 600 (5.9 KB) do not, and each machine's output is read from its append blob."""


def expected_output(lines: int) -> bytes:
    return "".join(f"line {n}\n" for n in range(1, lines + 1)).encode()


EXPECTED = expected_output(LINES)
GOAL = 1.10
CPU_GOAL_MS = 10.0
"""Client CPU per machine, in milliseconds, at most."""
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
DELETE_GRACE = 30.0
"""Seconds to wait after the fan-out for DELETEs still on their way (then they leaked)."""
SAMPLE_EVERY = 1.0
"""Seconds between looks at the client's budget queues (how far behind each bucket is).
Each look walks every waiting request (10,000 at once at 10,000 VMs) in the client's own
process: rarer looks keep the measurement out of what is measured."""
REPO = Path(__file__).resolve().parent.parent
_BASE = re.compile(r"^\s*ARM base URL\s+(\S+)")
_CONTAINER = re.compile(r"^\s*container SAS\s+(\S+)")


COMPUTE_POLLS_PER_MACHINE = 1.2
"""HighCostGet3Min's allowance per machine under ``--compute-limits`` (module docstring)."""
COMPUTE_WINDOW = 180.0
SECOND_PRINCIPAL = "engineer-2"


@dataclass(frozen=True, slots=True)
class Scenario:
    """Who else spends the subscription's budget: Compute's limits, a second client."""

    compute: bool = False
    second: str = ""
    """'' (none), 'same' (fleetrun's principal) or 'other' (another principal)."""

    def __str__(self) -> str:
        parts = (["Compute limits"] if self.compute else []) + (
            [f"a second client ({self.second} principal) at half the read rate"]
            if self.second else [])
        return " and ".join(parts) or "nothing else"


def compute_window(n: int) -> Window:
    return Window(max(10, round(n * COMPUTE_POLLS_PER_MACHINE)), COMPUTE_WINDOW)


def scenario_toml(n: int, scenario: Scenario, second_token: str) -> str:
    """The fleet file's tables for ``scenario`` (appended to :func:`fleet_toml`)."""
    lines: list[str] = []
    if scenario.compute:
        window = compute_window(n)
        lines += ["[throttle.compute]", "enabled = true", "",
                  "[throttle.compute.groups.HighCostGet]",
                  'operations = ["vm_instance_view", "run_command_instance_view", '
                  '"run_command_get"]',
                  f"per_3min = {window.allowed}", f"per_30min = {10 * window.allowed}", ""]
    if scenario.second == "other":
        lines += ["[[principals]]", f'name = "{SECOND_PRINCIPAL}"', f'token = "{second_token}"',
                  ""]
    return "\n".join(lines)


class BenchError(RuntimeError):
    """The benchmark could not run (the sandbox did not start, the inventory is wrong)."""


def split(n: int, k: int) -> list[int]:
    """``n`` machines over ``k`` subscriptions, as evenly as they go."""
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def ideal(n: int, fleet: FleetSpec, k: int = 1, scenario: Scenario | None = None) -> Bound:
    """The throttle-bound ideal of ``n`` machines over ``k`` subscriptions."""
    t = fleet.throttle
    if scenario is not None and (scenario.compute or scenario.second == "same"):
        reads = Bucket(t.reads.capacity, t.reads.refill_per_second)
        return shared_bound(
            n, reads=reads, writes=Bucket(t.writes.capacity, t.writes.refill_per_second),
            deletes=Bucket(t.deletes.capacity, t.deletes.refill_per_second),
            durations=DURATION, poll=sandbox_pacing(fleet).poll_interval,
            others=reads.rate / 2 if scenario.second == "same" else 0.0,
            window=compute_window(n) if scenario.compute else None)
    return fleet_bound(split(n, k), reads=Bucket(t.reads.capacity, t.reads.refill_per_second),
                       writes=Bucket(t.writes.capacity, t.writes.refill_per_second),
                       deletes=Bucket(t.deletes.capacity, t.deletes.refill_per_second),
                       durations=DURATION, poll=sandbox_pacing(fleet).poll_interval)


def fleet_toml(n: int, k: int = 1) -> str:
    """A fleet of ``n`` simulated Linux VMs over ``k`` subscriptions; default ``[throttle]``
    (ARM's buckets)."""
    simulate = (f'{{ duration = [{DURATION[0]}, {DURATION[1]}], lines = {LINES}, '
                f'output = "line {{line}}\\n" }}')
    lines = ["[sandbox]", "flush_interval = 1", "pickup_delay = 0", f"seed = {n}", ""]
    for i, (sub, count) in enumerate(zip(subscriptions(k), split(n, k), strict=True)):
        if count:
            lines += ["[[machines]]", f"count = {count}", f'name = "s{i}-sim-{{n:05}}"',
                      'kind = "vm"', 'os = "linux"', 'executor = "simulated"',
                      f'subscription = "{sub}"', f'resource_group = "{RESOURCE_GROUP}"',
                      f'location = "{LOCATION}"', f"simulate = {simulate}", ""]
    return "\n".join(lines)


def fleet_spec(n: int, k: int = 1) -> FleetSpec:
    """The fleet :func:`fleet_toml` describes, as the sandbox will read it."""
    return parse_fleet(tomllib.loads(fleet_toml(n, k)))


# ----------------------------------------------------------------------------- the server


@dataclass
class Sandbox:
    process: asyncio.subprocess.Process
    base: str
    container: str
    log: Path
    token: str


async def start_sandbox(fleet_file: Path, root: Path) -> Sandbox:
    """``fleetrun sandbox serve`` on a free loopback port, in a process of its own."""
    token = new_token()
    env = {**os.environ, "FLEETRUN_DATA_DIR": str(root / "data"),
           "FLEETRUN_CONFIG_DIR": str(root / "config"), SANDBOX_TOKEN_ENV: token}
    log = root / "sandbox.log"
    with log.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.cli", "sandbox", "serve", "--fleet", str(fleet_file),
            "--port", "0", stdout=asyncio.subprocess.PIPE, stderr=errors, env=env, cwd=REPO)
    assert process.stdout is not None
    base = container = ""
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not (base and container):
                line = (await process.stdout.readline()).decode("utf-8", "replace")
                if not line:
                    await process.wait()
                    raise BenchError(f"sandbox serve exited ({process.returncode}) before "
                                     f"it printed its URLs: {_tail(log)}")
                if found := _BASE.match(line):
                    base = found.group(1)
                if found := _CONTAINER.match(line):
                    container = found.group(1)
    except TimeoutError:
        await _end(process)
        raise BenchError(f"sandbox serve printed no URLs within {STARTUP_TIMEOUT:g} s: "
                         f"{_tail(log)}") from None
    except BaseException:
        await _end(process)
        raise
    return Sandbox(process, base, container, log, token)


async def stop_sandbox(sandbox: Sandbox) -> None:
    """SIGTERM (it stops cleanly on it), then a kill if it does not."""
    code = await _end(sandbox.process)
    if code != 0:
        print(f"bench/azure: sandbox serve ended with {code}: {_tail(sandbox.log)}",
              file=sys.stderr)


async def _end(process: asyncio.subprocess.Process) -> int | None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
    return process.returncode


def _tail(log: Path) -> str:
    text = log.read_text("utf-8", "replace").strip() if log.exists() else ""
    return text[-2000:] or "(nothing on stderr)"


def peak_memory_mib(pid: int | str = "self") -> float | None:
    """A process's peak resident memory (VmHWM), from /proc (None where there is none)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the ")" that ends the command name: field 3 is the state, 14 and 15 the times.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- counters


@dataclass
class Probe:
    """What the client did and when, for the diagnosis below the table."""

    start: float = 0.0
    last_sent: dict[str, float] = field(default_factory=dict)
    """Seconds from the start to the last request of each HTTP method."""
    queued: Counter[str] = field(default_factory=Counter)
    """The most requests seen waiting for a token of each bucket at once."""
    lags: list[float] = field(default_factory=list)
    """Per machine: seconds from the agent's end time to the client's result."""
    last_finished: float = 0.0
    blob_answers: Counter[int] = field(default_factory=Counter)
    """Storage answers by HTTP status (416: nothing new yet)."""
    useful_blob_reads: int = 0
    """Blob GETs that brought bytes the client had not had (the blob had grown)."""
    blob_sizes: dict[str, int] = field(default_factory=dict)
    """The largest size each blob was seen at."""
    deletes_pending: int = 0
    """DELETEs not yet answered when the fan-out returned."""
    cleanup: float = 0.0
    """Seconds from the start until the last DELETE was answered."""
    polls: int = 0
    """Instance-view GETs of the run commands (the other ARM reads: agent checks)."""

    async def on_blob_answer(self, response: httpx.Response) -> None:
        self.blob_answers[response.status_code] += 1
        if response.status_code not in (200, 206):
            return
        # An append blob only grows: a read is useful when it shows a size not seen before.
        total = response.headers.get("Content-Range", "").rpartition("/")[2]
        size = int(total) if total.isdigit() else len(response.content)
        path = response.request.url.path
        if size > self.blob_sizes.get(path, 0):
            self.useful_blob_reads += 1
            self.blob_sizes[path] = size

    async def on_request(self, request: httpx.Request) -> None:
        self.last_sent[request.method] = time.perf_counter() - self.start
        if request.method == "GET" and "/runCommands/" in request.url.path:
            self.polls += 1

    async def watch(self, events: Subscription) -> None:
        async for event in events:
            if isinstance(event, Finished):
                self.last_finished = time.perf_counter() - self.start
                if event.ended is not None:
                    self.lags.append(time.time() - event.ended.timestamp())

    async def sample(self, budget: ArmBudget) -> None:
        while True:
            queued: Counter[str] = Counter()
            for state in budget.states():
                queued[state.kind] += state.queued
            for kind in KINDS:
                self.queued[kind] = max(self.queued[kind], queued[kind])
            await asyncio.sleep(SAMPLE_EVERY)


@dataclass
class Result:
    n: int
    k: int
    wall: float
    bound: Bound
    cpu: float
    server_cpu: float | None
    memory: tuple[float | None, float | None]
    """Peak resident MiB of the client and the sandbox."""
    throttled: int
    sent: dict[str, int]
    probe: Probe
    wrong: list[str]
    load: tuple[float, float]
    """The 1-minute load average when the run began and when it ended."""
    second: str = ""
    """What the second client of ``--second-client`` said it did ('' without one)."""

    @property
    def ideal(self) -> float:
        return self.bound.seconds


# ----------------------------------------------------------------------------- the run


async def measure(n: int, root: Path, k: int = 1, busy: int = 0,
                  scenario: Scenario | None = None) -> Result:
    scenario = scenario or Scenario()
    second_token = new_token()
    fleet_file = root / "fleet.toml"
    fleet_file.write_text(fleet_toml(n, k) + "\n" + scenario_toml(n, scenario, second_token),
                          encoding="utf-8")
    fleet = load_fleet(fleet_file)
    sandbox = await start_sandbox(fleet_file, root)
    loops = [await asyncio.create_subprocess_exec(sys.executable, "-c", "while True: pass")
             for _ in range(busy)]
    second = None
    try:
        if scenario.second:
            token = sandbox.token if scenario.second == "same" else second_token
            second = await start_second_client(sandbox, fleet, token)
        result = await _client_run(n, k, fleet, sandbox, root)
        if scenario.compute or scenario.second:
            result.bound = ideal(n, fleet, k, scenario)
        if second is not None:
            result.second = await stop_second_client(second)
            second = None
        return result
    finally:
        if second is not None:
            await stop_second_client(second)
        for loop in loops:
            loop.kill()
            await loop.wait()
        await stop_sandbox(sandbox)


async def start_second_client(sandbox: Sandbox, fleet: FleetSpec,
                              token: str) -> asyncio.subprocess.Process:
    """bench/second_client.py GETting the first VM at half the read refill rate."""
    vm = fleet.machines[0]
    url = (f"{sandbox.base}/subscriptions/{vm.subscription}/resourceGroups/"
           f"{vm.resource_group}/providers/Microsoft.Compute/virtualMachines/{vm.name}"
           "?api-version=2025-04-01")
    rate = fleet.throttle.reads.refill_per_second / 2
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.second_client", url, f"{rate:g}",
        stdout=asyncio.subprocess.PIPE, env={**os.environ, TOKEN_ENV: token}, cwd=REPO)
    assert process.stdout is not None
    async with asyncio.timeout(STARTUP_TIMEOUT):
        if not (await process.stdout.readline()).startswith(b"started"):
            await _end(process)
            raise BenchError("the second client did not start")
    return process


async def stop_second_client(process: asyncio.subprocess.Process) -> str:
    """SIGTERM, then its one line: 'sent N throttled M'."""
    await _end(process)
    assert process.stdout is not None
    return (await process.stdout.read()).decode("utf-8", "replace").strip()


async def _client_run(n: int, k: int, fleet: FleetSpec, sandbox: Sandbox, root: Path) -> Result:
    probe = Probe()
    arm = ArmClient(sandbox.base, StaticToken(sandbox.token), budget=ArmBudget())
    arm.http.event_hooks = {"request": [probe.on_request]}
    # The blob client as fleetrun's fleet sources make it, plus a counting hook.
    async with pooled_client() as blob_http:
        blob_http.event_hooks = {"response": [probe.on_blob_answer]}
        session = AzureSession(arm=arm, blobs=AppendBlobClient(blob_http),
                               output=OutputContainer(sandbox.container),
                               pacing=sandbox_pacing(fleet))
        try:
            machines = await query_machines(arm, subscriptions(k))
            if len(machines) != n or not all(m.health.runnable for m in machines):
                raise BenchError(f"the inventory lists {len(machines)} machines "
                                 f"({sum(m.health.runnable for m in machines)} runnable); "
                                 f"expected {n}, all runnable")
            backend = ComputeBackend(session)
            command = Command(CommandId.SHELL, "simulated", timeout=600)
            run = plan_run([(m, command) for m in machines])
            fanout = FanOut(run, lambda _m: backend, OutputStore(root / "out" / run.run_id))
            watcher = asyncio.create_task(probe.watch(fanout.subscribe()))
            sampler = asyncio.create_task(probe.sample(arm.budget))
            sent0, throttled0 = dict(arm.sent), arm.budget.throttled_count
            server0 = cpu_seconds(sandbox.process.pid)
            gc.collect()
            load0 = os.getloadavg()[0]
            probe.start = wall0 = time.perf_counter()
            cpu0 = time.process_time()
            run = await fanout.execute()
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            server1 = cpu_seconds(sandbox.process.pid)
            memory = (peak_memory_mib(), peak_memory_mib(sandbox.process.pid))
            sent = {kind: arm.sent[kind] - sent0[kind] for kind in arm.sent}
            probe.deletes_pending = n - sent["deletes"]
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            await watcher
            # Closing the client now would drop DELETEs still on their way: wait for them.
            deleted = await _deletes_done(arm, sent0["deletes"], n)
            probe.cleanup = time.perf_counter() - wall0
        finally:
            await session.aclose()
    server_cpu = None if server0 is None or server1 is None else server1 - server0
    wrong = check(run.machines.values())
    if deleted < n:
        wrong.append(f"{n - deleted} run commands were not deleted within {DELETE_GRACE:g} s "
                     "of the run's end (they stay on the VMs, which hold at most 25)")
    return Result(n, k, wall, ideal(n, fleet, k), cpu, server_cpu, memory,
                  arm.budget.throttled_count - throttled0, sent, probe, wrong,
                  (load0, os.getloadavg()[0]))


async def _deletes_done(arm: ArmClient, before: int, n: int) -> int:
    """Wait until ``n`` DELETEs were answered since ``before`` (or the grace ran out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DELETE_GRACE
    while arm.sent["deletes"] - before < n and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return arm.sent["deletes"] - before


def check(machine_runs: Iterable[MachineRun]) -> list[str]:
    """What is wrong with the results: a state other than Succeeded, or other output."""
    wrong: list[str] = []
    for mr in machine_runs:
        name = mr.machine.name
        if mr.state is not RunState.SUCCEEDED:
            wrong.append(f"{name}: {mr.state} ({mr.error or 'no error given'})")
            continue
        stdout = _read(mr.stdout_file)
        if stdout != EXPECTED:
            wrong.append(f"{name}: stdout is {stdout!r}, expected {EXPECTED!r}")
        if stderr := _read(mr.stderr_file):
            wrong.append(f"{name}: stderr is {stderr[:80]!r}, expected nothing")
    return wrong


def _read(path: str) -> bytes:
    # A stream that printed nothing has no file.
    return Path(path).read_bytes() if path and Path(path).exists() else b""


# ----------------------------------------------------------------------------- report


def _row(r: Result) -> str:
    ratio = r.wall / r.ideal
    per_machine_ms = r.cpu / r.n * 1e3
    verdict = ("ok" if ratio <= GOAL and r.throttled == 0 and per_machine_ms <= CPU_GOAL_MS
               else "MISS")
    if r.wrong:
        verdict = f"WRONG ({len(r.wrong)})"
    server = f"{r.server_cpu:>8.2f}" if r.server_cpu is not None else f"{'-':>8}"
    blob = r.probe.blob_answers.total()
    return (f"{r.n:>6} {r.k:>3} {r.wall:>7.2f} {r.ideal:>7.2f} {r.bound.binding:>7} "
            f"{ratio:>6.2f} {r.throttled:>5} "
            f"{r.sent['writes']:>5} {r.sent['reads']:>5} {r.sent['deletes']:>6} {blob:>6} "
            f"{r.cpu:>6.2f} {per_machine_ms:>8.1f} ms {server} "
            f"{r.load[0]:>5.1f}/{r.load[1]:<5.1f} {verdict:>7}")


def read_seconds(reads: float, k: int = 1) -> float:
    """The earliest the client's read budget lets ``reads`` GETs out over ``k``
    subscriptions: its first bucket (less the share it leaves to other clients), then the
    refill rate."""
    limits = BudgetLimits()
    burst = limits.reads.capacity * (1 - limits.reserve)
    return max(0.0, reads / k - burst) / limits.reads.refill_per_second


def _diagnosis(r: Result, fleet: FleetSpec) -> list[str]:
    writes = fleet.throttle.writes
    p = r.probe
    lags = sorted(p.lags) or [0.0]
    reads = p.blob_answers.total()
    per_sub = -(-r.n // r.k)
    return [
        f"{r.n:>6}  last PUT sent at {p.last_sent.get('PUT', 0.0):.1f} s (earliest "
        f"{max(per_sub - writes.capacity, 0) / writes.refill_per_second:.1f} s), last result "
        f"at {p.last_finished:.1f} s; {p.deletes_pending} DELETEs still pending at the end, "
        f"the last answered by {p.cleanup:.1f} s",
        f"{'':>6}  bound per subscription: writes {r.bound.writes:.1f} s, reads "
        f"{r.bound.reads:.1f} s (the best client's {r.bound.reads_needed:.0f} polls, "
        f"{r.bound.reads_needed / per_sub:.2f}/machine), deletes {r.bound.deletes:.1f} s",
        f"{'':>6}  ARM GETs/machine {r.sent['reads'] / r.n:.2f} ({p.polls / r.n:.2f} polls, "
        f"{(r.sent['reads'] - p.polls) / r.n:.2f} agent checks), which the read budget "
        f"lets out no sooner than {read_seconds(r.sent['reads'], r.k):.1f} s; most waiting for "
        f"a token: {p.queued['writes']} writes, {p.queued['reads']} reads, "
        f"{p.queued['deletes']} deletes; result after the agent's end: median "
        f"{statistics.median(lags):.1f} s, max {lags[-1]:.1f} s",
        *([f"{'':>6}  second client: {r.second}"] if r.second else []),
        f"{'':>6}  blob GETs/machine {reads / r.n:.2f}: {p.useful_blob_reads / r.n:.2f} "
        f"useful, {(reads - p.useful_blob_reads) / r.n:.2f} found nothing new (answers: "
        + ", ".join(f"{n} x {status}" for status, n in sorted(p.blob_answers.items()))
        + f"); client CPU {r.cpu / r.n * 1e3:.1f} ms per machine, {r.cpu / r.wall:.0%} of a "
        "core; sandbox " + (f"{r.server_cpu / r.wall:.0%}" if r.server_cpu is not None
                            else "unknown")
        + "; peak memory: client " + _mib(r.memory[0]) + ", sandbox " + _mib(r.memory[1]),
    ]


def _mib(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f} MiB"


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} is not a list of machine counts "
                                         "such as 200,1000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes: each machine count must be 1 or more")
    return sizes


def _count(name: str, low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"{name}: {text!r} is not a whole number "
                                             f">= {low}")
        return value
    return parse


def _print_lines(lines: int) -> None:
    """Every machine prints ``lines`` lines from now on (``--lines``)."""
    global LINES, EXPECTED
    LINES, EXPECTED = lines, expected_output(lines)


def main(quick: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.azure")
    parser.add_argument("--sizes", type=_sizes, default=SIZES[:1] if quick else SIZES,
                        help="machine counts to measure, comma-separated (default 200,1000)")
    parser.add_argument("--busy", type=_count("--busy", 0), default=0,
                        help="CPU-bound busy loops to run beside the client (default 0)")
    parser.add_argument("--subscriptions", type=_count("--subscriptions", 1), default=1,
                        help="subscriptions to spread the machines over (default 1)")
    parser.add_argument("--compute-limits", action="store_true",
                        help="turn Compute's limits on, run-command GETs in HighCostGet")
    parser.add_argument("--second-client", choices=("same", "other"), default="",
                        help="a second client at half the read rate, as fleetrun's principal "
                        "or another")
    parser.add_argument("--lines", type=_count("--lines", 1), default=LINES,
                        help=f"lines each machine prints (default {LINES}; past 4 KB, "
                        "about 450, the output is read from the blobs)")
    args = parser.parse_args([] if argv is None and quick else argv)
    _print_lines(args.lines)
    sizes: tuple[int, ...] = args.sizes
    k: int = args.subscriptions
    scenario = Scenario(args.compute_limits, args.second_client)
    if (scenario.compute or scenario.second) and k != 1:
        parser.error("--compute-limits and --second-client: one subscription only "
                     "(--subscriptions 1)")
    fleet = fleet_spec(sizes[0], k)
    pacing = sandbox_pacing(fleet)
    print(f"bench/azure: N simulated VMs ({DURATION[0]:g}-{DURATION[1]:g} s, {LINES} lines, "
          f"flush {fleet.flush_interval:g} s) over {k} subscription(s) behind `fleetrun "
          f"sandbox serve` with ARM's default throttle buckets; fleetrun's Compute backend, "
          f"polls every {pacing.poll_interval:g} s, blobs every {pacing.blob_interval:g} s; "
          f"{args.busy} busy loop(s) beside it; sharing the budget with {scenario}")
    print("ideal = the slowest subscription's largest bound of writes (last PUT + longest "
          "run), reads (the best client's polls under fleetrun's schedule) and deletes "
          "(bench/azure_bound.py); "
          f"goal: ratio <= {GOAL:.2f}, 0 429s and client CPU <= {CPU_GOAL_MS:g} ms per "
          "machine")
    print(f"{'N':>6} {'K':>3} {'wall s':>7} {'ideal s':>7} {'bound':>7} {'ratio':>6} "
          f"{'429s':>5} {'PUT':>5} {'GET':>5} {'DELETE':>6} {'blob':>6} {'CPU s':>6} "
          f"{'CPU/machine':>11} {'server s':>8} {'load':>11} {'result':>7}")
    results: list[Result] = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="fleetrun-bench-azure-") as tmp:
            try:
                results.append(asyncio.run(measure(n, Path(tmp), k, args.busy, scenario)))
            except BenchError as exc:
                raise SystemExit(f"bench/azure: N={n}: {exc}") from None
        print(_row(results[-1]), flush=True)
    print("where the time went:")
    for r in results:
        print("\n".join(_diagnosis(r, fleet)))
    wrong = [(r.n, line) for r in results for line in r.wrong]
    if wrong:
        for n, line in wrong[:20]:
            print(f"WRONG N={n}: {line}", file=sys.stderr)
        raise SystemExit(f"bench/azure: WRONG RESULTS ({len(wrong)} problems); the timings "
                         "above do not count")


if __name__ == "__main__":
    main(argv=sys.argv[1:])
