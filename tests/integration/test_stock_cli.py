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
from shopbridge.store.tables import Location, Product, StockLevel, StockMovement, SyncIssue, Variant

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
                           "TEE-M,MAIN,adjustment,-1,audit-4,\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 0, result.output
    assert "3 row(s): 3 applied, 0 already applied, 0 unchanged" in result.stdout
    expected = {("TEE-M", "MAIN"): 7, ("TEE-S", "POPUP"): 5}
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


# --- quantities within range, strictly parsed, never below zero by adjustment, keys not reused (issue #16) ---


def test_adjust_refuses_to_take_on_hand_below_zero(shop: Hub) -> None:
    result = runner.invoke(app, ["stock", "adjust", "TEE-M", "--location", "MAIN", "--by", "-11"])
    assert (result.exit_code, result.stderr.strip()) == (
        2, "error: TEE-M at MAIN has 10 on hand; an adjustment of -11 would take it to -1, below zero"
    )  # fmt: skip
    assert levels(shop) == {("TEE-M", "MAIN"): 10}
    assert runner.invoke(app, ["stock", "adjust", "TEE-M", "--location", "MAIN", "--by", "-10"]).exit_code == 0
    assert levels(shop) == {("TEE-M", "MAIN"): 0}


@pytest.mark.parametrize("by", ["1000001", "-1000001", "9223372036854775808"])
def test_adjust_refuses_a_quantity_out_of_range(shop: Hub, by: str) -> None:
    result = runner.invoke(app, ["stock", "adjust", "TEE-M", "--location", "MAIN", "--by", by])
    assert (result.exit_code, result.stderr.strip()) == (
        2, f"error: quantity {by} is out of range: at most 1,000,000 units in one movement"
    )  # fmt: skip
    assert levels(shop) == {("TEE-M", "MAIN"): 10}


def test_import_parses_quantities_strictly(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,kind,quantity,idempotency_key\n"
                           "TEE-M,MAIN,restock,1.0,d-1\n"
                           "TEE-M,MAIN,restock,1e3,d-2\n"
                           "TEE-M,MAIN,restock, true,d-3\n"
                           "TEE-M,MAIN,restock,1000001,d-4\n"
                           "TEE-M,MAIN,restock,99999999999999999999999999,d-5\n"
                           "TEE-M,MAIN,restock,+2,d-6\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "line 2: quantity must be a whole number, got '1.0'",
        "line 3: quantity must be a whole number, got '1e3'",
        "line 4: quantity must be a whole number, got 'true'",
        "line 5: quantity 1000001 is out of range: at most 1,000,000 units in one movement",
        "line 6: quantity 99999999999999999999999999 is out of range: at most 1,000,000 units in one movement",
        f"error: {path}: 5 bad row(s); nothing was applied",
    ]
    assert levels(shop) == {("TEE-M", "MAIN"): 10}


def test_import_counts_parse_figures_strictly(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,on_hand\nTEE-M,MAIN,4.0\nTEE-S,MAIN,2000000\nTEE-S,POPUP,7\n")
    result = runner.invoke(app, ["stock", "import", path, "--mode", "counts"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[:2] == [
        "line 2: on_hand must be a whole number, got '4.0'",
        "line 3: on_hand 2000000 is out of range: at most 1,000,000 units",
    ]
    assert levels(shop) == {("TEE-M", "MAIN"): 10}


def test_import_refuses_an_adjustment_below_zero(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,kind,quantity,idempotency_key\n"
                           "TEE-M,MAIN,adjustment,-4,audit-1\n"
                           "TEE-S,MAIN,restock,5,delivery-1\n"
                           "TEE-M,MAIN,adjustment,-7,audit-2\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "line 4: TEE-M at MAIN has 6 on hand; an adjustment of -7 would take it to -1, below zero",
        f"error: {path}: 1 bad row(s); nothing was applied",
    ]
    assert levels(shop) == {("TEE-M", "MAIN"): 10}


def test_import_refuses_a_key_reused_for_other_content_within_the_file(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,kind,quantity,idempotency_key\n"
                           "TEE-S,MAIN,restock,5,delivery-1\n"
                           "TEE-S,MAIN,restock,6,delivery-1\n"
                           "TEE-S,POPUP,restock,5,delivery-2\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "line 3: idempotency_key 'delivery-1' is also on line 2, for restock of 5 TEE-S at MAIN; this is restock of "
        "6 TEE-S at MAIN (another movement needs a key of its own)",
        f"error: {path}: 1 bad row(s); nothing was applied",
    ]
    assert levels(shop) == {("TEE-M", "MAIN"): 10}


def test_import_refuses_a_key_already_used_for_other_content(shop: Hub, tmp_path: Path) -> None:
    first = write(tmp_path, "sku,location,kind,quantity,idempotency_key\nTEE-S,MAIN,restock,5,delivery-1\n")
    assert runner.invoke(app, ["stock", "import", first]).exit_code == 0
    path = tmp_path / "second.csv"
    path.write_text("sku,location,kind,quantity,idempotency_key\n"
                    "TEE-S,POPUP,restock,3,delivery-2\n"
                    "TEE-S,MAIN,restock,6,delivery-1\n")  # fmt: skip
    result = runner.invoke(app, ["stock", "import", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "line 3: idempotency_key 'delivery-1' was already used for restock of 5 TEE-S at MAIN; this is restock of "
        "6 TEE-S at MAIN (another movement needs a key of its own)",
        f"error: {path}: 1 bad row(s); nothing was applied",
    ]
    assert levels(shop) == {("TEE-M", "MAIN"): 10, ("TEE-S", "MAIN"): 5}
    replay = runner.invoke(app, ["stock", "import", first])
    assert replay.exit_code == 0 and "1 row(s): 0 applied, 1 already applied, 0 unchanged" in replay.stdout


def test_import_records_a_sale_past_zero_as_oversold(shop: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, "sku,location,kind,quantity,idempotency_key\nTEE-M,MAIN,sale,12,till-1\n")
    result = runner.invoke(app, ["stock", "import", path])
    assert result.exit_code == 0, result.output
    assert levels(shop) == {("TEE-M", "MAIN"): -2}
    with shop.sessions() as session:
        issue = session.scalars(select(SyncIssue).where(SyncIssue.kind == "oversold")).one()
    assert (issue.subject_id, issue.details) == ("TEE-M", {"location": "MAIN", "oversold_units": 2, "on_hand": -2})
