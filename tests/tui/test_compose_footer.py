"""The composer's footer at 80 columns, in the app: the keys a person needs to finish
(run, save, leave) stay whole; keys that do not fit are left out whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets._footer import FooterKey

from tests.tui.saved_fixtures import sandbox_app, until
from tests.tui.test_fleet_screen import fleet_screen
from tui.screens.compose import ComposeScreen
from tui.widgets.fitting_footer import FittingFooter


async def test_save_run_and_cancel_stay_whole_in_the_footer_at_80_columns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = sandbox_app(tmp_path, monkeypatch, {})
    async with app.run_test(size=(80, 24)) as pilot:
        await fleet_screen(pilot, app)
        await pilot.press("c")  # the machine under the cursor
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the composer")
        footer = app.screen.query_one(FittingFooter)

        def shown() -> dict[str, FooterKey]:
            return {k.action: k for k in footer.query(FooterKey) if k.display}

        await until(pilot, lambda: any(not k.display for k in footer.query(FooterKey)),
                    "keys that do not fit hidden")
        await pilot.pause()
        assert {"run", "cancel", "save"} <= shown().keys(), list(shown())
        for key in shown().values():
            assert key.region.right <= 80, (key.description, key.region)
