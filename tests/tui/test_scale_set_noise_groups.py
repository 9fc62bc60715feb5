"""The groups view's ``n`` on a Uniform scale set: ``hostname`` prints each instance's computer
name (``queue-ss000000`` for ``queue-ss/0``), which is the machine's own name, so the
instances group as one modulo noise. On the sandbox, in the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cli.test_scale_set_noise import FLEET  # the same scale set, in the app
from tests.tui.test_flow import run_on
from tests.tui.test_group_actions import groups_of, status
from tests.tui.test_groups_diff_export import rows
from tests.tui.test_run_screen import until
from tui.app import FleetrunApp
from tui.widgets.run.group_table import GroupTable

SIZE = (160, 45)


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FleetrunApp]:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    yield FleetrunApp([f"sandbox:{path}"])


async def test_n_groups_a_scale_sets_hostnames_as_one(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        screen = await run_on(pilot, app, "scaleset:queue-ss", "hostname")
        groups = await groups_of(pilot, app, screen, 3)
        table = groups.query_one(GroupTable)
        assert sorted(row[-1].removeprefix("baseline · ") for row in rows(table)) == [
            "queue-ss000000", "queue-ss000001", "queue-ss000002"]
        await pilot.press("n")
        await until(pilot, lambda: table.row_count == 1, "one group modulo noise")
        assert rows(table)[0][:2] == ["1", "3"]
        assert status(groups).startswith(
            "1 group of identical output modulo noise across 3 machines")
