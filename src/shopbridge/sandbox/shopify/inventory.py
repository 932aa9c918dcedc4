"""Inventory: levels per (item, location), quantity states, and the inventory mutations (reference §3).

Each level holds ``available``, ``committed``, ``reserved``, ``damaged``, ``safety_stock``, ``quality_control`` and
``incoming``; ``on_hand`` is derived as available + every unavailable state (§3.1). The state machine (§10):

* an order created with ``DECREMENT_*`` claims stock: available → committed (``claim``);
* a fulfilment ships claimed units: committed - q, so on_hand - q (``ship``);
* a cancellation or a CANCEL refund with restock returns them: committed → available (``release``);
* a RETURN refund restocks fulfilled units: available + q at the chosen location (``restock``).

``inventorySetQuantities`` (absolute, compare-and-swap per API version, §3.3), ``inventoryAdjustQuantities``
(deltas, §3.4) and ``inventoryActivate`` (§3.5) validate every entry first and change nothing when any entry fails,
then record an InventoryAdjustmentGroup and fire ``inventory_levels/update`` for each level that changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import rest
from .errors import UserErr, errors_json
from .ids import parse_gid
from .models import ON_HAND_PARTS, AdjustmentChange, AdjustmentGroup, InventoryItem, InventoryLevel, Location
from .versions import Version

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

# §3.6 (as reproduced in third-party typings; [UNCERTAIN]).
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
SETTABLE = ("available", "on_hand")
ADJUSTABLE = ("available", "on_hand", "damaged", "incoming", "quality_control", "reserved", "safety_stock")
SET_MAX = 1_000_000_000
ADJUST_MAX = 2_000_000_000


def apply(sb: ShopifySandbox, level: InventoryLevel, name: str, delta: int) -> list[AdjustmentChange]:
    """Change one quantity by ``delta`` and report every quantity that moved with it (on_hand follows its parts;
    setting on_hand moves available)."""
    if delta == 0:
        return []
    now = sb.now()
    q = level.quantities
    moved: list[str]
    if name in ("on_hand", "available"):
        q["available"] = q.get("available", 0) + delta
        moved = ["available", "on_hand"]
    elif name in ON_HAND_PARTS:
        q[name] = q.get(name, 0) + delta
        moved = [name, "on_hand"]
    else:
        q[name] = q.get(name, 0) + delta
        moved = [name]
    for moved_name in moved:
        level.changed_at[moved_name] = now
    level.updated_at = now
    sb.world.save(level)
    ordered = [name, *[m for m in moved if m != name]]
    return [
        AdjustmentChange(
            name=n, delta=delta, quantity_after=level.get(n), item_id=level.item_id, location_id=level.location_id
        )
        for n in ordered
    ]


def move(sb: ShopifySandbox, level: InventoryLevel, source: str | None, target: str | None, qty: int) -> None:
    """Move ``qty`` units between states of one level (None = in or out of the building)."""
    if qty == 0:
        return
    now = sb.now()
    for name, delta in ((source, -qty), (target, qty)):
        if name is not None:
            level.quantities[name] = level.quantities.get(name, 0) + delta
            level.changed_at[name] = now
    if (source is None) != (target is None):
        level.changed_at["on_hand"] = now
    level.updated_at = now
    sb.world.save(level)


def claim(sb: ShopifySandbox, level: InventoryLevel, qty: int) -> None:
    move(sb, level, "available", "committed", qty)


def release(sb: ShopifySandbox, level: InventoryLevel, qty: int, *, restock: bool) -> None:
    """Claimed units no longer going out: back to available when restocked, gone from on_hand otherwise."""
    move(sb, level, "committed", "available" if restock else None, qty)


def ship(sb: ShopifySandbox, level: InventoryLevel, qty: int) -> None:
    move(sb, level, "committed", None, qty)


def restock(sb: ShopifySandbox, level: InventoryLevel, qty: int) -> None:
    move(sb, level, None, "available", qty)


def levels_changed(sb: ShopifySandbox, levels: list[InventoryLevel], event_id: str) -> None:
    """``inventory_levels/update`` for each changed level (once per level)."""
    seen: set[str] = set()
    for level in levels:
        if level.id in seen:
            continue
        seen.add(level.id)
        sb.webhooks.trigger("inventory_levels/update", rest.level_json(sb, level), event_id)


def create_level(sb: ShopifySandbox, item_id: str, location_id: str, available: int = 0) -> InventoryLevel:
    now = sb.now()
    level = InventoryLevel(
        id=f"{location_id}:{item_id}",
        location_id=location_id,
        item_id=item_id,
        quantities={"available": available},
        changed_at={"available": now, "on_hand": now},
        created_at=now,
        updated_at=now,
    )
    sb.world.save(level)
    return level


# --- mutations -----------------------------------------------------------------------------------------------


def _common_checks(input_: dict[str, Any]) -> list[UserErr]:
    errors: list[UserErr] = []
    reason = input_.get("reason")
    if reason not in REASONS:
        errors.append(
            UserErr(
                f"The specified reason is invalid. Valid values are: {', '.join(sorted(REASONS))}.",
                ["input", "reason"],
                "INVALID_REASON",
            )
        )
    uri = input_.get("referenceDocumentUri")
    if uri is not None and "://" not in uri:
        errors.append(
            UserErr(
                "The specified reference document is invalid: expected a URI such as gid://your-app/Entity/1.",
                ["input", "referenceDocumentUri"],
                "INVALID_REFERENCE_DOCUMENT",
            )
        )
    return errors


def _resolve(sb: ShopifySandbox, entry: dict[str, Any], path: list[str]) -> tuple[InventoryLevel | None, list[UserErr]]:
    item_id = parse_gid(entry.get("inventoryItemId"), "InventoryItem")
    location_id = parse_gid(entry.get("locationId"), "Location")
    errors: list[UserErr] = []
    if sb.world.get(InventoryItem, item_id) is None:
        errors.append(
            UserErr(
                "The specified inventory item could not be found.",
                [*path, "inventoryItemId"],
                "INVALID_INVENTORY_ITEM",
            )
        )
    if sb.world.get(Location, location_id) is None:
        errors.append(UserErr("The specified location could not be found.", [*path, "locationId"], "INVALID_LOCATION"))
    if errors:
        return None, errors
    assert item_id is not None and location_id is not None
    level = sb.world.level(location_id, item_id)
    if level is None:
        return None, [
            UserErr(
                "The specified inventory item is not stocked at the location.",
                [*path, "locationId"],
                "ITEM_NOT_STOCKED_AT_LOCATION",
            )
        ]
    return level, []


def _group(sb: ShopifySandbox, input_: dict[str, Any], changes: list[AdjustmentChange]) -> AdjustmentGroup:
    group = AdjustmentGroup(
        id=sb.new_id(),
        created_at=sb.now(),
        reason=input_["reason"],
        reference_document_uri=input_.get("referenceDocumentUri"),
        changes=changes,
    )
    sb.world.save(group)
    return group


def set_quantities(sb: ShopifySandbox, version: Version, input_: dict[str, Any]) -> dict[str, Any]:
    """``inventorySetQuantities``: absolute quantities with the version's compare-and-swap rules (§3.3)."""
    errors = []
    name = input_.get("name")
    if name not in SETTABLE:
        errors.append(
            UserErr("The quantity name must be either 'available' or 'on_hand'.", ["input", "name"], "INVALID_NAME")
        )
    errors.extend(_common_checks(input_))
    plan: list[tuple[InventoryLevel, int]] = []
    seen: set[str] = set()
    for index, entry in enumerate(input_.get("quantities") or []):
        path = ["input", "quantities", str(index)]
        level, problems = _resolve(sb, entry, path)
        errors.extend(problems)
        if level is None:
            continue
        if level.id in seen:
            errors.append(
                UserErr(
                    "The combination of inventoryItemId and locationId must be unique.",
                    path,
                    "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                )
            )
            continue
        seen.add(level.id)
        quantity = int(entry["quantity"])
        if quantity < 0:
            errors.append(UserErr("The quantity can't be negative.", [*path, "quantity"], "INVALID_QUANTITY_NEGATIVE"))
            continue
        if quantity > SET_MAX:
            errors.append(
                UserErr(
                    "The quantity can't be higher than 1,000,000,000.", [*path, "quantity"], "INVALID_QUANTITY_TOO_HIGH"
                )
            )
            continue
        current = level.get(name) if name in SETTABLE else 0
        errors.extend(_compare_and_swap(version, input_, entry, path, current))
        plan.append((level, quantity - current))
    if errors:
        return {"group_id": None, "user_errors": errors_json(errors)}
    assert name is not None
    changes: list[AdjustmentChange] = []
    touched = []
    for level, delta in plan:
        moved = apply(sb, level, name, delta)
        if moved:
            touched.append(level)
        changes.extend(moved)
    group = _group(sb, input_, changes)
    levels_changed(sb, touched, sb.ids.uuid())
    return {"group_id": group.id, "user_errors": []}


def _compare_and_swap(
    version: Version, input_: dict[str, Any], entry: dict[str, Any], path: list[str], current: int
) -> list[UserErr]:
    """≤ 2025-10: compareQuantity unless ignoreCompareQuantity. 2026-01: changeFromQuantity when sent (null opts
    out), else the old pair. ≥ 2026-04: changeFromQuantity on every quantity (null opts out)."""
    generation = version.generation
    if generation == "2026-04" or (generation == "2026-01" and "changeFromQuantity" in entry):
        if "changeFromQuantity" not in entry:
            # The reference says only "omitting it returns an error" (§3.3); no code is documented: [INFERRED].
            return [
                UserErr(
                    "changeFromQuantity is required on every quantity from API version 2026-04: pass the quantity "
                    "you expect, or null to skip the compare-and-swap check.",
                    [*path, "changeFromQuantity"],
                )
            ]
        expected = entry["changeFromQuantity"]
        if expected is not None and int(expected) != current:
            return [
                UserErr(
                    f"The changeFromQuantity value does not match persisted value ({current}).",
                    [*path, "changeFromQuantity"],
                    "CHANGE_FROM_QUANTITY_STALE",
                )
            ]
        return []
    if input_.get("ignoreCompareQuantity"):
        return []
    compare = entry.get("compareQuantity")
    if compare is None:
        return [
            UserErr(
                "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity.",
                [*path, "compareQuantity"],
                "COMPARE_QUANTITY_REQUIRED",
            )
        ]
    if int(compare) != current:
        return [
            UserErr(
                f"The compareQuantity value does not match persisted value ({current}).",
                [*path, "compareQuantity"],
                "COMPARE_QUANTITY_STALE",
            )
        ]
    return []


def adjust_quantities(sb: ShopifySandbox, input_: dict[str, Any]) -> dict[str, Any]:
    """``inventoryAdjustQuantities``: deltas on one quantity name (§3.4)."""
    errors = []
    name = input_.get("name")
    if name not in ADJUSTABLE:
        errors.append(
            UserErr(
                f"The quantity name is invalid; adjustable names are: {', '.join(ADJUSTABLE)}.",
                ["input", "name"],
                "INVALID_QUANTITY_NAME",
            )
        )
    errors.extend(_common_checks(input_))
    plan: list[tuple[InventoryLevel, int, str | None]] = []
    for index, entry in enumerate(input_.get("changes") or []):
        path = ["input", "changes", str(index)]
        level, problems = _resolve(sb, entry, path)
        errors.extend(problems)
        if level is None or name not in ADJUSTABLE:
            continue
        ledger = entry.get("ledgerDocumentUri")
        if name == "available" and ledger is not None:
            errors.append(
                UserErr(
                    "A ledger document URI is not allowed when adjusting available.",
                    [*path, "ledgerDocumentUri"],
                    "INVALID_AVAILABLE_DOCUMENT",
                )
            )
            continue
        if name != "available" and ledger is None:
            errors.append(
                UserErr(
                    "A ledger document URI is required for all quantity names except available.",
                    [*path, "ledgerDocumentUri"],
                    "INVALID_QUANTITY_DOCUMENT",
                )
            )
            continue
        if ledger is not None and (ledger.startswith("gid://shopify/") or "://" not in ledger):
            code = "INTERNAL_LEDGER_DOCUMENT" if ledger.startswith("gid://shopify/") else "INVALID_LEDGER_DOCUMENT"
            errors.append(
                UserErr(
                    "The ledger document URI is invalid: it cannot use the gid://shopify/ format.",
                    [*path, "ledgerDocumentUri"],
                    code,
                )
            )
            continue
        current = level.get(name)
        if entry.get("changeFromQuantity") is not None and int(entry["changeFromQuantity"]) != current:
            errors.append(
                UserErr(
                    f"The changeFromQuantity value does not match persisted value ({current}).",
                    [*path, "changeFromQuantity"],
                    "CHANGE_FROM_QUANTITY_STALE",
                )
            )
            continue
        delta = int(entry["delta"])
        if current + delta > ADJUST_MAX:
            errors.append(
                UserErr(
                    "The quantity can't be higher than 2,000,000,000.", [*path, "delta"], "INVALID_QUANTITY_TOO_HIGH"
                )
            )
            continue
        if current + delta < -ADJUST_MAX:
            errors.append(
                UserErr(
                    "The quantity can't be lower than -2,000,000,000.", [*path, "delta"], "INVALID_QUANTITY_TOO_LOW"
                )
            )
            continue
        plan.append((level, delta, ledger))
    if errors:
        return {"group_id": None, "user_errors": errors_json(errors)}
    assert name is not None
    changes: list[AdjustmentChange] = []
    touched = []
    for level, delta, ledger in plan:
        moved = apply(sb, level, name, delta)
        for change in moved:
            if change.name == name:
                change.ledger_document_uri = ledger
        if moved:
            touched.append(level)
        changes.extend(moved)
    group = _group(sb, input_, changes)
    levels_changed(sb, touched, sb.ids.uuid())
    return {"group_id": group.id, "user_errors": []}


def activate(
    sb: ShopifySandbox, item_gid: str, location_gid: str, available: int | None, on_hand: int | None
) -> dict[str, Any]:
    """``inventoryActivate``: stock an item at a location (a new level); an active level is returned as it is."""
    item_id = parse_gid(item_gid, "InventoryItem")
    location_id = parse_gid(location_gid, "Location")
    errors = []
    if sb.world.get(InventoryItem, item_id) is None:
        errors.append(UserErr("Inventory item does not exist", ["inventoryItemId"]))
    location = sb.world.get(Location, location_id)
    if location is None:
        errors.append(UserErr("Location does not exist", ["locationId"]))
    elif not location.is_active:
        errors.append(UserErr("Location is not active", ["locationId"]))
    if available is not None and on_hand is not None:
        errors.append(UserErr("Only one of available or onHand can be set", ["available"]))
    for value, field in ((available, "available"), (on_hand, "onHand")):
        if value is not None and value < 0:
            errors.append(UserErr(f"{field} must be greater than or equal to 0", [field]))
    if errors:
        return {"level_id": None, "user_errors": errors_json(errors)}
    assert item_id is not None and location_id is not None
    level = sb.world.level(location_id, item_id)
    if level is None:
        level = create_level(sb, item_id, location_id, available or on_hand or 0)
        event_id = sb.ids.uuid()
        sb.webhooks.trigger("inventory_levels/connect", rest.level_json(sb, level), event_id)
    return {"level_id": level.id, "user_errors": []}
