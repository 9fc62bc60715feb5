"""Two fleetrun clients on one subscription (two engineers on one incident), against the
sandbox's ARM throttle: they slow each other down through the headers, not through 429s.

The documented model leaves one race neither client can see: a request of the other client
already on its way when an answer reports the count. Each spends only half of a banked count,
learns the other's rate from drops it did not cause, and keeps a reserve for the other's
requests in flight, so even with a tiny bucket (20 at 20/s) none of 120 requests meets a 429
(before the reserve: 0-7 of them).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.azure.arm import ArmClient
from core.azure.budget import ArmBudget, BucketLimit, BudgetLimits
from tests.azure.sandboxed import azure_bed, fleet_of, machine_of

READS = {"capacity": 20, "refill_per_second": 20}


def linux(name: str) -> dict[str, str]:
    return {"name": name, "kind": "vm", "os": "linux"}


async def test_two_clients_share_a_read_bucket_without_429s(tmp_path: Path) -> None:
    fleet = fleet_of(linux("shared-1"), throttle={"reads": READS})
    limits = BudgetLimits(reads=BucketLimit(20, 20.0))
    async with azure_bed(fleet, tmp_path, budget=ArmBudget(limits)) as bed:
        other = ArmClient(bed.base_url, bed.arm.credential, budget=ArmBudget(limits))
        vm = machine_of("shared-1").id
        try:
            first = [asyncio.create_task(bed.arm.get(vm)) for _ in range(60)]
            # The second engineer starts once the first is spending the bucket.
            while bed.arm.sent["reads"] < 10:
                await asyncio.sleep(0.01)
            second = [asyncio.create_task(other.get(vm)) for _ in range(60)]
            answers = await asyncio.wait_for(asyncio.gather(*first, *second), 60)
        finally:
            await other.aclose()
        assert len(answers) == 120
        assert bed.arm.budget.throttled_count == other.budget.throttled_count == 0
        # Each sent its 60 once: no retries.
        assert bed.arm.sent["reads"] == other.sent["reads"] == 60
