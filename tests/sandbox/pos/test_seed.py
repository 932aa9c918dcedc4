"""`--seed demo` stocks the stores with the TikTok demo's SKUs; the command line builds the sandbox it names."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from shopbridge.sandbox.cli import sandbox_app
from shopbridge.sandbox.pos import PosSandboxConfig, create_app
from shopbridge.sandbox.pos.models import StockPage
from shopbridge.sandbox.pos.seed import tiktok_demo_catalogue
from shopbridge.sandbox.shopify.seed import tiktok_demo_lines

from .conftest import FakeHub, open_pos

pytestmark = pytest.mark.anyio


def test_the_catalogue_is_the_tiktok_demo_s_skus_and_prices() -> None:
    expected = {sku: price for _, price, _, skus in tiktok_demo_lines() for sku, _ in skus}
    catalogue = tiktok_demo_catalogue()
    assert list(catalogue) == list(expected) and catalogue == expected
    assert len(catalogue) >= 200 and "RELAXED-COTTON-TEE-0-0" in catalogue


async def test_the_demo_stores_carry_them(hub: FakeHub) -> None:
    async with open_pos(hub, seed="demo") as pos:
        carried = {}
        for location_id, store in pos.sb.world.stores.items():
            page = StockPage.model_validate((await pos.api("GET", f"/v1/stock?location_id={location_id}")).json())
            assert page.next_cursor is None and len(page.levels) == len(store.levels)
            assert all(0 <= lv.on_hand <= 30 and lv.allocated == 0 for lv in page.levels)
            assert set(lv.sku for lv in page.levels) <= set(tiktok_demo_catalogue())
            carried[location_id] = len(page.levels)
        assert carried["store-airport"] < carried["store-downtown"]
        assert pos.sb.outbox.deliveries == {}  # seeding sends nothing: the hub reads /v1/stock


def test_an_unknown_seed_or_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="only seed is 'demo'"):
        create_app(PosSandboxConfig(seed="big"))
    with pytest.raises(ValueError, match="at least 32"):
        PosSandboxConfig(secret="short")
    result = CliRunner().invoke(sandbox_app, ["pos", "--secret", "short"])
    assert result.exit_code == 2 and "at least 32" in result.output
