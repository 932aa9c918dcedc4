"""Stock on the command line: show and adjust a SKU, import movements or counts from CSV, all rows or none."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from shopbridge.bootstrap import Hub
from shopbridge.cli import app
from shopbridge.config import Settings
from shopbridge.services.stock import record_movement
from shopbridge.store.db import transaction
from shopbridge.store.tables import Location, Product, StockLevel, StockMovement, Variant

runner = CliRunner()


@pytest.fixture
def shop(env: Settings, hub: Hub) -> Hub:
    """TEE-S, TEE-M (the hub's stock) and TEE-L (kept by an external master) at MAIN and POPUP; 10 TEE-M at MAIN."""
    with transaction(hub.sessions) as session:
        product = Product(title="Cotton tee")
        main = Location(code="MAIN", name="Main")
        session.add_all([product, main, Location(code="POPUP", name="Pop-up")])
        session.flush()
        tee_m = Variant(product_id=product.id, sku="TEE-M")
        session.add_all([Variant(product_id=product.id, sku="TEE-S"), tee_m,
                         Variant(product_id=product.id, sku="TEE-L", stock_source="external")])  # fmt: skip
        session.flush()
        record_movement(session, variant_id=tee_m.id, location_id=main.id, kind="restock", idempotency_key="seed",
                        source="hub", now=hub.clock.now(), on_hand_delta=10)  # fmt: skip
    return hub


def levels(hub: Hub) -> dict[tuple[str, str], int]:
    with hub.sessions() as session:
        rows = session.execute(
            select(Variant.sku, Location.code, StockLevel.on_hand)
            .join(StockLevel, StockLevel.variant_id == Variant.id)
            .join(Location, Location.id == StockLevel.location_id)
        ).all()
    return {(sku, code): on_hand for sku, code, on_hand in rows}


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "stock.csv"
    path.write_text(text)
    return str(path)


def test_show_prints_stock_per_location(shop: Hub) -> None:
    result = runner.invoke(app, ["stock", "show", "TEE-M"])
    assert result.exit_code == 0, result.output
    assert "TEE-M: 10 on hand, 0 reserved (source of truth: hub)" in result.stdout
    assert "MAIN" in result.stdout
    missing = runner.invoke(app, ["stock", "show", "NOPE"])
    assert (missing.exit_code, missing.stderr.strip()) == (2, "error: unknown SKU 'NOPE'")


def test_adjust_moves_on_hand_by_a_signed_number(shop: Hub) -> None:
    result = runner.invoke(app, ["stock", "adjust", "TEE-M", "--location", "MAIN", "--by", "-3", "--reason", "broken"])
    assert result.exit_code == 0, result.output
    assert "TEE-M at MAIN adjusted by -3" in result.stdout
    assert levels(shop)["TEE-M", "MAIN"] == 7
    with shop.sessions() as session:
        movement = session.scalars(select(StockMovement).order_by(StockMovement.id.desc()).limit(1)).one()
    assert (movement.kind, movement.on_hand_delta, movement.reference) == ("adjustment", -3, "broken")
    again = runner.invoke(app, ["stock", "adjust", "TEE-M", "--location", "MAIN", "--by", "-3"])
    assert again.exit_code == 0 and levels(shop)["TEE-M", "MAIN"] == 4, "each adjustment is a new one"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["TEE-M", "--location", "MAIN", "--by", "0"], "error: an adjustment of 0 units changes nothing"),
        (["TEE-M", "--location", "MOON", "--by", "1"], "error: unknown location 'MOON'"),
        (["NOPE", "--location", "MAIN", "--by", "1"], "error: unknown SKU 'NOPE'"),
        (["TEE-L", "--location", "MAIN", "--by", "1"],
         "error: TEE-L's stock is kept by the external side; a write from the hub side is refused"),
    ],
)  # fmt: skip
def test_adjust_refuses_naming_what_was_wrong(shop: Hub, arguments: list[str], message: str) -> None:
    result = runner.invoke(app, ["stock", "adjust", *arguments])
    assert (result.exit_code, result.stderr.strip()) == (2, message)
    assert levels(shop) == {("TEE-M", "MAIN"): 10}


def test_import_movements_applies_each_key_once(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,kind,quantity,idempotency_key,reference\n"
                           "TEE-M,MAIN,sale,2,pos-1,till 3\n"
                           "TEE-S,POPUP,restock,5,delivery-9,\n"
                           "TEE-M,POPUP,adjustment,-1,audit-4,\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 0, result.output
    assert "3 row(s): 3 applied, 0 already applied, 0 unchanged" in result.stdout
    expected = {("TEE-M", "MAIN"): 8, ("TEE-S", "POPUP"): 5, ("TEE-M", "POPUP"): -1}
    assert levels(shop) == expected
    again = runner.invoke(app, ["stock", "import", path])
    assert again.exit_code == 0, again.output
    assert "3 row(s): 0 applied, 3 already applied, 0 unchanged" in again.stdout
    assert levels(shop) == expected


def test_import_counts_sets_on_hand(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,on_hand\nTEE-M,MAIN,6\nTEE-S,MAIN,0\nTEE-S,POPUP,2\n")
    result = runner.invoke(app, ["stock", "import", path, "--mode", "counts", "--reference", "cycle-1"])
    assert result.exit_code == 0, result.output
    assert "3 row(s): 2 applied, 0 already applied, 1 unchanged" in result.stdout
    assert levels(shop) == {("TEE-M", "MAIN"): 6, ("TEE-S", "POPUP"): 2}
    again = runner.invoke(app, ["stock", "import", path, "--mode", "counts", "--reference", "cycle-1"])
    assert "3 row(s): 0 applied, 0 already applied, 3 unchanged" in again.stdout


def test_a_bad_row_on_line_3_leaves_the_stock_unchanged(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,kind,quantity,idempotency_key\n"
                           "TEE-M,MAIN,sale,2,pos-1\n"
                           "NOPE,MAIN,sale,1,pos-2\n"
                           "\n"
                           "TEE-M,MAIN,restock,ten,delivery-1\n"
                           "TEE-L,MAIN,restock,1,delivery-2\n"
                           "TEE-S,MAIN,sale,1\n"
                           "TEE-S,MAIN,teleport,1,x\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "line 3: unknown SKU 'NOPE'",
        "line 5: quantity must be a whole number, got 'ten'",
        "line 6: TEE-L's stock is kept by the external side; a write from the hub side is refused",
        "line 7: expected 5 fields (sku, location, kind, quantity, idempotency_key), got 4",
        "line 8: kind must be one of restock, return, sale, adjustment, got 'teleport'",
        f"error: {path}: 5 bad row(s); nothing was applied",
    ]
    assert levels(shop) == {("TEE-M", "MAIN"): 10}
    with shop.sessions() as session:
        assert session.scalar(select(StockMovement.id).where(StockMovement.idempotency_key == "pos-1")) is None


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("", "movements",
         "line 1: the file is empty; a header row is required: sku, location, kind, quantity, idempotency_key"
         "[, reference]"),
        ("TEE-M,MAIN,6\n", "counts",
         "line 1: missing column(s) sku, location, on_hand; the header row must name sku, location, on_hand"
         "[, idempotency_key]"),
        ("sku,location,on_hand,note\n", "counts",
         "line 1: unknown column(s) note; expected sku, location, on_hand[, idempotency_key]"),
    ],
)  # fmt: skip
def test_a_file_without_its_header_is_refused(shop: Hub, tmp_path: Path, text: str, mode: str, message: str) -> None:
    result = runner.invoke(app, ["stock", "import", write(tmp_path, text), "--mode", mode])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == message


def test_a_missing_file_is_named(env: Settings, tmp_path: Path) -> None:
    result = runner.invoke(app, ["stock", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot read {tmp_path / 'nope.csv'}: No such file or directory"


def test_a_large_count_is_looked_up_in_chunks(shop: Hub, tmp_path: Path) -> None:
    with transaction(shop.sessions) as session:
        product = Product(title="Socks")
        session.add(product)
        session.flush()
        session.add_all([Variant(product_id=product.id, sku=f"SOCK-{number}") for number in range(1500)])
    path = write(tmp_path, "sku,location,on_hand\n" + "".join(f"SOCK-{n},MAIN,{n % 7}\n" for n in range(1500)))
    result = runner.invoke(app, ["stock", "import", path, "--mode", "counts"])
    assert result.exit_code == 0, result.output
    unchanged = sum(1 for n in range(1500) if n % 7 == 0)
    assert f"1500 row(s): {1500 - unchanged} applied, 0 already applied, {unchanged} unchanged" in result.stdout
    found = levels(shop)
    assert found["SOCK-1499", "MAIN"] == 1499 % 7 and ("SOCK-0", "MAIN") not in found
