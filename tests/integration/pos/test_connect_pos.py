"""Connecting a POS from the command line (the same port the dashboard's form uses): its locations are read with the
account's signature and mapped to hub locations; a wrong secret or an unknown location is refused, naming why."""

from __future__ import annotations

from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge.bootstrap import Hub
from shopbridge.cli import app
from shopbridge.config import Settings
from shopbridge.demo.world import free_port, serving
from shopbridge.sandbox.pos import PosSandboxConfig, create_app
from shopbridge.store.db import transaction
from shopbridge.store.tables import AuditEntry, ChannelAccount, ChannelWarehouse, Location

runner = CliRunner()
CONFIG = PosSandboxConfig(associates=False)


def test_connect_pos_maps_its_locations_and_refuses_a_wrong_secret(env: Settings, hub: Hub) -> None:
    with transaction(hub.sessions) as session:
        session.add(Location(code="MAIN", name="Main"))
    with serving(create_app(CONFIG), free_port()) as url:
        base = ["connect", "pos", "--base-url", f"{url}/v1", "--account", CONFIG.account]
        wrong = runner.invoke(app, [*base, "--secret", "w" * 40])
        assert wrong.exit_code == 2 and "bad_signature" in wrong.stderr
        unknown = runner.invoke(app, [*base, "--secret", CONFIG.secret, "--location-map", "store-moon=MAIN"])
        assert unknown.exit_code == 2 and "the POS has no location store-moon" in unknown.stderr
        connected = runner.invoke(app, [*base, "--secret", CONFIG.secret, "--location-map", "store-downtown=MAIN",
                                        "--priorities", "store-mall"])  # fmt: skip
        assert connected.exit_code == 0, connected.output
        assert "store-downtown→MAIN" in connected.stdout and "store-mall→store-mall" in connected.stdout
    with hub.sessions() as session:
        account = session.scalar(select(ChannelAccount).where(ChannelAccount.channel == "pos"))
        assert account is not None and account.external_id == CONFIG.account and account.status == "active"
        assert CONFIG.secret not in str(account.credentials), "the secret is stored sealed"
        assert [location["location_id"] for location in account.settings["locations"]] == [
            "store-mall", "store-downtown", "store-airport", "store-harbor"]  # fmt: skip
        mapped = dict(session.execute(
            select(ChannelWarehouse.external_warehouse_id, Location.code)
            .join(Location, Location.id == ChannelWarehouse.location_id)
            .where(ChannelWarehouse.channel_account_id == account.id)).all())  # fmt: skip
        assert mapped == {"store-downtown": "MAIN", "store-mall": "store-mall", "store-airport": "store-airport",
                          "store-harbor": "store-harbor"}  # fmt: skip
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "connection.pos"))
        assert entry is not None and entry.actor.startswith("cli:")
