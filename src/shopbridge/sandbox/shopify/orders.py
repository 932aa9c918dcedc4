"""Orders and their lifecycle (reference §4-§6, §10): create, cancel, fulfil, track, refund.

* ``orderCreate`` (§4.1): line items by ``variantId`` or custom (``title`` + ``priceSet``); ``inventoryBehaviour``
  BYPASS (default, stock untouched), DECREMENT_IGNORING_POLICY (claims even into negative) or
  DECREMENT_OBEYING_POLICY (fails with INVENTORY_CLAIM_FAILED when a DENY-policy variant lacks stock). Each line is
  routed to a location (online-fulfilling locations first, in priority order, the first holding enough stock) and
  one FulfillmentOrder is opened per location.
* ``orderCancel`` (§4.4) is asynchronous: it answers a ``Job`` and the cancellation happens when the job runs,
  ``cancel_delay_seconds`` later. An order with fulfilments, or already cancelled or being cancelled, is refused.
* ``fulfillmentCreate`` (§5.2): partial quantities per fulfilment-order line; tracking URLs built for supported
  companies (``carriers.py``).
* ``refundCreate`` (§6.1): RETURN restocks fulfilled units, CANCEL restocks unfulfilled ones, NO_RESTOCK removes
  unfulfilled units without restocking; ``transactions`` move the money.

Every change fires the webhooks of §10 under one ``X-Shopify-Event-Id`` per action.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import carriers, inventory, order_math, rest
from .errors import SandboxError, UserErr, errors_json
from .ids import parse_gid
from .models import (
    Address,
    Customer,
    Fulfillment,
    FulfillmentLine,
    FulfillmentOrder,
    FulfillmentOrderLine,
    InventoryItem,
    InventoryLevel,
    Job,
    LineItem,
    Location,
    Order,
    Product,
    Refund,
    RefundLine,
    ShippingLine,
    TaxLine,
    TrackingInfo,
    Transaction,
    Variant,
)
from .money import dec, parse_time

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

ACTIVE_FO = ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD", "INCOMPLETE")


def _amount(money_bag: dict[str, Any] | None) -> Decimal | None:
    if not money_bag:
        return None
    return dec(money_bag["shopMoney"]["amount"])


def _address(data: dict[str, Any] | None) -> Address | None:
    if not data:
        return None
    from .geo import country_name, province_name

    country = data.get("countryCode")
    return Address(
        first_name=data.get("firstName"),
        last_name=data.get("lastName"),
        company=data.get("company"),
        address1=data.get("address1"),
        address2=data.get("address2"),
        city=data.get("city"),
        province=province_name(country, data.get("provinceCode")),
        province_code=data.get("provinceCode"),
        country=country_name(country),
        country_code=country,
        zip=data.get("zip"),
        phone=data.get("phone"),
    )


def _tax_lines(data: list[dict[str, Any]] | None, base: Decimal) -> list[TaxLine]:
    out = []
    for t in data or []:
        rate = Decimal(str(t["rate"]))
        price = _amount(t.get("priceSet"))
        if price is None:
            price = dec(base * rate)
        out.append(TaxLine(title=t["title"], rate=str(rate), price=str(price)))
    return out


def route(sb: ShopifySandbox, item_id: str | None, quantity: int, taken: dict[str, int]) -> str:
    """The location a line is assigned to: online-fulfilling active locations first, in priority (id) order; the
    first whose available stock (less what earlier lines took) covers the line, else the first that stocks it."""
    locations = [loc for loc in sb.world.locations() if loc.is_active]
    locations.sort(key=lambda loc: (not loc.fulfills_online_orders, int(loc.id)))
    if item_id is not None:
        stocked = [loc for loc in locations if sb.world.level(loc.id, item_id) is not None]
        for loc in stocked:
            level = sb.world.level(loc.id, item_id)
            assert level is not None
            if level.get("available") - taken.get(level.id, 0) >= quantity:
                return loc.id
        if stocked:
            return stocked[0].id
    if not locations:
        raise SandboxError(409, "the shop has no active location")
    return locations[0].id


def _customer(sb: ShopifySandbox, data: dict[str, Any] | None, email: str | None, phone: str | None) -> Customer | None:
    upsert = (data or {}).get("toUpsert") or {}
    associate = (data or {}).get("toAssociate") or {}
    email = upsert.get("email") or associate.get("email") or email
    known = sb.world.customer_by_email.get(email.lower()) if email else None
    wanted_id = parse_gid(upsert.get("id") or associate.get("id"), "Customer")
    if known is not None and (wanted_id is None or wanted_id == known.id):
        customer = known.model_copy()
    elif wanted_id is not None:
        customer = Customer(id=wanted_id, email=email)
    elif email or upsert:
        customer = Customer(id=sb.new_id(), email=email)
    else:
        return None
    customer.first_name = upsert.get("firstName") or customer.first_name
    customer.last_name = upsert.get("lastName") or customer.last_name
    customer.phone = upsert.get("phone") or customer.phone or phone
    return customer


def create_order(sb: ShopifySandbox, data: dict[str, Any], options: dict[str, Any] | None) -> dict[str, Any]:
    """``orderCreate``: validates everything, then creates the order, claims stock and fires the webhooks."""
    shop = sb.world.shop
    behaviour = (options or {}).get("inventoryBehaviour") or "BYPASS"
    errors: list[UserErr] = []
    now = sb.now()
    lines_in = data.get("lineItems") or []
    if not lines_in:
        errors.append(UserErr("Line items must have at least one line item", ["order", "lineItems"], "INVALID"))
    customer_in = data.get("customer") or {}
    if customer_in.get("toAssociate") and customer_in.get("toUpsert"):
        errors.append(
            UserErr(
                "Only one of toAssociate or toUpsert can be specified.",
                ["order", "customer"],
                "REDUNDANT_CUSTOMER_FIELDS",
            )
        )
    processed_at = now
    if data.get("processedAt"):
        try:
            processed_at = parse_time(str(data["processedAt"]), shop.timezone)
        except ValueError:
            errors.append(UserErr("Processed at is invalid", ["order", "processedAt"], "PROCESSED_AT_INVALID"))
        if processed_at > now + 1:
            errors.append(
                UserErr("Processed at must not be in the future", ["order", "processedAt"], "PROCESSED_AT_INVALID")
            )
    currency = data.get("currency") or shop.currency
    presentment = data.get("presentmentCurrency") or currency
    planned: list[tuple[LineItem, InventoryLevel | None, str]] = []
    taken: dict[str, int] = {}
    for index, li in enumerate(lines_in):
        path = ["order", "lineItems", str(index)]
        quantity = int(li["quantity"])
        if quantity < 1:
            errors.append(UserErr("Quantity must be greater than or equal to 1", [*path, "quantity"], "INVALID"))
            continue
        variant_id = parse_gid(li.get("variantId"), "ProductVariant")
        variant = sb.world.get(Variant, variant_id)
        price = _amount(li.get("priceSet"))
        if li.get("variantId") is not None and variant is None:
            errors.append(UserErr(f"Variant {li['variantId']} does not exist.", [*path, "variantId"], "INVALID"))
            continue
        if variant is not None:
            product = sb.world.get(Product, variant.product_id)
            item = sb.world.get(InventoryItem, variant.inventory_item_id)
            line = LineItem(
                id=sb.new_id(),
                variant_id=variant.id,
                product_id=variant.product_id,
                inventory_item_id=variant.inventory_item_id,
                sku=variant.sku,
                title=li.get("title") or (product.title if product else variant.title),
                variant_title=variant.title,
                vendor=li.get("vendor") or (product.vendor if product else None),
                quantity=quantity,
                price=str(price if price is not None else dec(variant.price)),
                requires_shipping=item.requires_shipping if item else True,
            )
        else:
            if not li.get("title"):
                errors.append(UserErr("Title can't be blank for a custom line item", [*path, "title"], "INVALID"))
            if price is None:
                errors.append(UserErr("Price can't be blank for a custom line item", [*path, "priceSet"], "INVALID"))
            if not li.get("title") or price is None:
                continue
            line = LineItem(
                id=sb.new_id(),
                sku=li.get("sku"),
                title=li["title"],
                variant_title=li.get("variantTitle"),
                vendor=li.get("vendor"),
                quantity=quantity,
                price=str(price),
            )
        if li.get("requiresShipping") is not None:
            line.requires_shipping = bool(li["requiresShipping"])
        if li.get("taxable") is not None:
            line.taxable = bool(li["taxable"])
        line.gift_card = bool(li.get("giftCard"))
        line.properties = [{"name": p["name"], "value": p["value"]} for p in li.get("properties") or []]
        line.tax_lines = _tax_lines(li.get("taxLines"), order_math.line_total(line))
        location_id = route(sb, line.inventory_item_id, quantity, taken)
        level = sb.world.level(location_id, line.inventory_item_id) if line.inventory_item_id else None
        item = sb.world.get(InventoryItem, line.inventory_item_id)
        claims = behaviour != "BYPASS" and level is not None and item is not None and item.tracked
        if claims and level is not None:
            have = level.get("available") - taken.get(level.id, 0)
            policy_deny = variant is not None and variant.inventory_policy == "DENY"
            if behaviour == "DECREMENT_OBEYING_POLICY" and policy_deny and have < quantity:
                errors.append(
                    UserErr(
                        f"Unable to claim inventory for {line.name} (SKU {line.sku}): {max(have, 0)} available, "
                        f"{quantity} ordered.",
                        [*path, "quantity"],
                        "INVENTORY_CLAIM_FAILED",
                    )
                )
                continue
            taken[level.id] = taken.get(level.id, 0) + quantity
        planned.append((line, level if claims else None, location_id))
    fulfil_at_create = data.get("fulfillment")
    if fulfil_at_create and sb.world.get(Location, parse_gid(fulfil_at_create.get("locationId"), "Location")) is None:
        errors.append(UserErr("Location does not exist", ["order", "fulfillment", "locationId"], "INVALID"))
    if errors:
        return {"order_id": None, "user_errors": errors_json(errors)}

    number = shop.next_order_number
    shop.next_order_number += 1
    sb.world.save(shop)
    subtotal = sum((order_math.line_total(line) for line, _, _ in planned), Decimal(0))
    order = Order(
        id=sb.new_id(),
        number=number,
        name=data.get("name") or f"#{number}",
        email=data.get("email"),
        phone=data.get("phone"),
        currency=currency,
        presentment_currency=presentment,
        # Without sourceName, an API-created order carries the creating app's id ([INFERRED]).
        source_name=data.get("sourceName") or sb.app_id,
        source_identifier=data.get("sourceIdentifier"),
        source_url=data.get("sourceUrl"),
        tags=sorted({t.strip() for t in data.get("tags") or [] if t and t.strip()}),
        note=data.get("note"),
        custom_attributes=[{"key": a["key"], "value": a["value"]} for a in data.get("customAttributes") or []],
        shipping_address=_address(data.get("shippingAddress")),
        billing_address=_address(data.get("billingAddress")),
        line_items=[line for line, _, _ in planned],
        shipping_lines=[
            ShippingLine(
                id=sb.new_id(),
                title=s["title"],
                price=str(_amount(s["priceSet"]) or Decimal(0)),
                code=s.get("code"),
                source=s.get("source"),
            )
            for s in data.get("shippingLines") or []
        ],
        tax_lines=_tax_lines(data.get("taxLines"), subtotal),
        taxes_included=bool(data.get("taxesIncluded")),
        financial_status=data.get("financialStatus"),
        inventory_behaviour=behaviour,
        test=bool(data.get("test")),
        created_at=now,
        updated_at=now,
        processed_at=processed_at,
    )
    order.customer = _customer(sb, data.get("customer"), order.email, order.phone)
    if order.email is None and order.customer is not None:
        order.email = order.customer.email
    for t in data.get("transactions") or []:
        order.transactions.append(
            Transaction(
                id=sb.new_id(),
                kind=t.get("kind") or "SALE",
                status=t.get("status") or "SUCCESS",
                amount=str(_amount(t["amountSet"]) or Decimal(0)),
                gateway=t.get("gateway") or "manual",
                test=bool(t.get("test")),
                created_at=now,
            )
        )
    # One fulfillment order per assigned location, in the order locations first appear.
    by_location: dict[str, FulfillmentOrder] = {}
    touched: list[InventoryLevel] = []
    for line, level, location_id in planned:
        fo = by_location.get(location_id)
        if fo is None:
            fo = FulfillmentOrder(id=sb.new_id(), location_id=location_id, created_at=now, updated_at=now)
            by_location[location_id] = fo
        claimed = 0
        if level is not None:
            inventory.claim(sb, level, line.quantity)
            claimed = line.quantity
            touched.append(level)
        fo.line_items.append(
            FulfillmentOrderLine(
                id=sb.new_id(),
                line_item_id=line.id,
                total_quantity=line.quantity,
                remaining_quantity=line.quantity,
                claimed=claimed,
            )
        )
    order.fulfillment_orders = list(by_location.values())
    sb.world.save(order)
    event_id = sb.ids.uuid()
    sb.webhooks.trigger("orders/create", rest.order_json(sb, order), event_id)
    if order_math.financial_status(order) == "PAID":
        sb.webhooks.trigger("orders/paid", rest.order_json(sb, order), event_id)
    inventory.levels_changed(sb, touched, event_id)
    _products_ordered(sb, order, event_id)
    if fulfil_at_create or data.get("fulfillmentStatus") == "FULFILLED":
        fi = fulfil_at_create or {}
        tracking = {"company": fi.get("trackingCompany"), "number": fi.get("trackingNumber")}
        for fo in list(order.fulfillment_orders):
            _fulfil(
                sb,
                order,
                [(fo, [(fl, fl.remaining_quantity) for fl in fo.line_items])],
                tracking,
                bool(fi.get("notifyCustomer")),
                None,
                event_id,
            )
    else:
        sb.webhooks.trigger("orders/updated", rest.order_json(sb, order), event_id)
    sb.schedule_order(order)
    return {"order_id": order.id, "user_errors": []}


def _products_ordered(sb: ShopifySandbox, order: Order, event_id: str) -> None:
    """``products/update`` "occurs whenever a product is … ordered" (§7.1)."""
    seen: set[str] = set()
    for line in order.line_items:
        if line.product_id and line.product_id not in seen:
            seen.add(line.product_id)
            product = sb.world.get(Product, line.product_id)
            if product is not None:
                sb.webhooks.trigger("products/update", rest.product_json(sb, product), event_id)


def _touch(sb: ShopifySandbox, order: Order) -> None:
    now = sb.now()
    order.updated_at = now
    if order.closed_at is None and order_math.should_close(order):
        order.closed_at = now
    sb.world.save(order)


# --- cancel --------------------------------------------------------------------------------------------------


def check_cancellable(order: Order | None) -> UserErr | None:
    if order is None:
        return UserErr("Order does not exist", ["orderId"], "NOT_FOUND")
    if order.cancelled_at is not None:
        return UserErr("Order has already been cancelled", ["orderId"], "INVALID")
    if order.cancel_job_id is not None:
        return UserErr("Order is already being cancelled", ["orderId"], "INVALID")
    if any(f.status == "SUCCESS" for f in order.fulfillments):
        return UserErr("Order has fulfillments: cancel them before cancelling the order", ["orderId"], "INVALID")
    return None


def request_cancel(
    sb: ShopifySandbox,
    order_gid: str,
    reason: str,
    restock: bool,
    notify: bool,
    staff_note: str | None,
    refund: bool,
) -> dict[str, Any]:
    """``orderCancel``: answers a Job; the order is cancelled when the job runs (``complete_cancel``)."""
    order = sb.world.get(Order, parse_gid(order_gid, "Order"))
    problem = check_cancellable(order)
    if problem is not None:
        return {"job_id": None, "user_errors": [problem.as_dict()]}
    assert order is not None
    now = sb.now()
    job = Job(
        id=sb.ids.uuid(),
        kind="order_cancel",
        order_id=order.id,
        due_at=now + sb.world.settings.cancel_delay_seconds,
        params={"reason": reason, "restock": restock, "notify": notify, "staff_note": staff_note, "refund": refund},
        created_at=now,
    )
    order.cancel_job_id = job.id
    sb.world.save(order)
    sb.world.save(job)
    sb.schedule_job(job)
    return {"job_id": job.id, "user_errors": []}


def complete_cancel(sb: ShopifySandbox, job: Job) -> None:
    if job.done:
        return
    job.done = True
    sb.world.save(job)
    order = sb.world.get(Order, job.order_id)
    if order is None or order.cancelled_at is not None:
        return
    order.cancel_job_id = None
    p = job.params
    cancel_now(
        sb, order, p["reason"], restock=bool(p["restock"]), refund=bool(p["refund"]), staff_note=p.get("staff_note")
    )


def cancel_now(
    sb: ShopifySandbox, order: Order, reason: str, *, restock: bool, refund: bool, staff_note: str | None = None
) -> None:
    """The cancellation itself: release claimed stock (restocked or not), close the fulfillment orders, refund or
    void the payment, then ``orders/cancelled`` and ``orders/updated`` (+ ``refunds/create``, levels)."""
    now = sb.now()
    event_id = sb.ids.uuid()
    touched: list[InventoryLevel] = []
    refund_lines: list[RefundLine] = []
    lines = {li.id: li for li in order.line_items}
    for fo in order.fulfillment_orders:
        if fo.status not in ACTIVE_FO:
            continue
        for fl in fo.line_items:
            line = lines.get(fl.line_item_id)
            if fl.remaining_quantity > 0 and line is not None:
                refund_lines.append(
                    RefundLine(
                        id=sb.new_id(),
                        line_item_id=line.id,
                        quantity=fl.remaining_quantity,
                        restock_type="CANCEL" if restock else "NO_RESTOCK",
                        location_id=fo.location_id if restock else None,
                        restocked=restock and fl.claimed > 0,
                        subtotal=str(dec(line.price) * fl.remaining_quantity),
                    )
                )
            if fl.claimed > 0 and line is not None and line.inventory_item_id is not None:
                level = sb.world.level(fo.location_id, line.inventory_item_id)
                if level is not None:
                    inventory.release(sb, level, fl.claimed, restock=restock)
                    touched.append(level)
            fl.claimed = 0
            fl.remaining_quantity = 0
        fo.status = "CANCELLED"
        fo.updated_at = now
    order.cancelled_at = now
    order.cancel_reason = reason
    order.staff_note = staff_note or order.staff_note
    paid = order_math.received(order) - order_math.refunded(order)
    new_refund: Refund | None = None
    if refund and paid > 0:
        parent = next((t for t in order.transactions if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS"), None)
        txn = Transaction(
            id=sb.new_id(),
            kind="REFUND",
            amount=str(paid),
            gateway=parent.gateway if parent else "manual",
            parent_id=parent.id if parent else None,
            created_at=now,
        )
        order.transactions.append(txn)
        for rl in refund_lines:
            sb.world.order_of[rl.id] = order.id
        new_refund = Refund(
            id=sb.new_id(), note="Order canceled", line_items=refund_lines, transaction_ids=[txn.id], created_at=now
        )
        order.refunds.append(new_refund)
        for rl in refund_lines:
            lines[rl.line_item_id].refunded_quantity += rl.quantity
    elif paid <= 0 and order_math.financial_status(order) in ("PENDING", "AUTHORIZED"):
        order.transactions.append(Transaction(id=sb.new_id(), kind="VOID", amount="0.00", created_at=now))
    _touch(sb, order)
    sb.webhooks.trigger("orders/cancelled", rest.order_json(sb, order), event_id)
    if new_refund is not None:
        sb.webhooks.trigger("refunds/create", rest.refund_json(sb, order, new_refund), event_id)
    sb.webhooks.trigger("orders/updated", rest.order_json(sb, order), event_id)
    inventory.levels_changed(sb, touched, event_id)


# --- fulfil --------------------------------------------------------------------------------------------------


def tracking_list(data: dict[str, Any] | None) -> tuple[list[TrackingInfo], list[UserErr]]:
    if not data:
        return [], []
    errors = []
    if data.get("number") and data.get("numbers"):
        errors.append(UserErr("Use either number or numbers, not both.", ["fulfillment", "trackingInfo"]))
    if data.get("url") and data.get("urls"):
        errors.append(UserErr("Use either url or urls, not both.", ["fulfillment", "trackingInfo"]))
    numbers = list(data.get("numbers") or ([data["number"]] if data.get("number") else []))
    urls = list(data.get("urls") or ([data["url"]] if data.get("url") else []))
    if urls and not numbers:
        errors.append(UserErr("A tracking URL requires a tracking number.", ["fulfillment", "trackingInfo", "url"]))
    company = data.get("company")
    out = []
    for index, number in enumerate(numbers or [None]):
        url = urls[index] if index < len(urls) else carriers.tracking_url(company, number)
        if company or number or url:
            out.append(TrackingInfo(company=company, number=number, url=url))
    return out, errors


Selection = list[tuple[FulfillmentOrder, list[tuple[FulfillmentOrderLine, int]]]]


def create_fulfillment(sb: ShopifySandbox, data: dict[str, Any], message: str | None) -> dict[str, Any]:
    """``fulfillmentCreate``: ship some or all of one order's fulfillment orders at one location."""
    groups = data.get("lineItemsByFulfillmentOrder") or []
    errors: list[UserErr] = []
    if not groups:
        errors.append(
            UserErr("lineItemsByFulfillmentOrder can't be blank", ["fulfillment", "lineItemsByFulfillmentOrder"])
        )
    order: Order | None = None
    selection: Selection = []
    for index, group in enumerate(groups):
        path = ["fulfillment", "lineItemsByFulfillmentOrder", str(index)]
        fo_id = parse_gid(group.get("fulfillmentOrderId"), "FulfillmentOrder")
        owner = sb.world.order_containing(fo_id)
        fo = next((f for f in owner.fulfillment_orders if f.id == fo_id), None) if owner else None
        if owner is None or fo is None:
            errors.append(UserErr("Fulfillment order does not exist.", [*path, "fulfillmentOrderId"]))
            continue
        if order is not None and owner.id != order.id:
            errors.append(
                UserErr("All fulfillment orders must belong to the same order.", [*path, "fulfillmentOrderId"])
            )
            continue
        order = owner
        if selection and selection[0][0].location_id != fo.location_id:
            errors.append(
                UserErr("All fulfillment orders must be assigned to the same location.", [*path, "fulfillmentOrderId"])
            )
            continue
        if fo.status not in ("OPEN", "IN_PROGRESS"):
            errors.append(
                UserErr(
                    f"Fulfillment order {group['fulfillmentOrderId']} has an unfulfillable status= "
                    f"{fo.status.lower()}.",
                    [*path, "fulfillmentOrderId"],
                )
            )
            continue
        picked: list[tuple[FulfillmentOrderLine, int]] = []
        requested = group.get("fulfillmentOrderLineItems")
        if requested is None:
            picked = [(fl, fl.remaining_quantity) for fl in fo.line_items if fl.remaining_quantity > 0]
        for j, item in enumerate(requested or []):
            fl_id = parse_gid(item.get("id"), "FulfillmentOrderLineItem")
            fl = next((x for x in fo.line_items if x.id == fl_id), None)
            item_path = [*path, "fulfillmentOrderLineItems", str(j)]
            if fl is None:
                errors.append(UserErr("Fulfillment order line item does not exist.", [*item_path, "id"]))
                continue
            quantity = int(item["quantity"])
            if quantity < 1 or quantity > fl.remaining_quantity:
                errors.append(
                    UserErr(
                        f"Invalid fulfillment order line item quantity requested: {quantity} (remaining "
                        f"{fl.remaining_quantity}).",
                        [*item_path, "quantity"],
                    )
                )
                continue
            picked.append((fl, quantity))
        if picked:
            selection.append((fo, picked))
    tracking, tracking_errors = tracking_list(data.get("trackingInfo"))
    errors.extend(tracking_errors)
    if not errors and not selection:
        errors.append(UserErr("Nothing left to fulfil in these fulfillment orders.", ["fulfillment"]))
    if errors or order is None:
        return {"fulfillment_id": None, "user_errors": errors_json(errors)}
    fulfillment = _fulfil(
        sb, order, selection, None, bool(data.get("notifyCustomer")), message, sb.ids.uuid(), tracking=tracking
    )
    return {"fulfillment_id": fulfillment.id, "user_errors": []}


def _fulfil(
    sb: ShopifySandbox,
    order: Order,
    selection: Selection,
    tracking_in: dict[str, Any] | None,
    notify: bool,
    message: str | None,
    event_id: str,
    *,
    tracking: list[TrackingInfo] | None = None,
) -> Fulfillment:
    now = sb.now()
    if tracking is None:
        tracking, _ = tracking_list(tracking_in)
    lines = {li.id: li for li in order.line_items}
    shipped: dict[str, int] = {}
    touched: list[InventoryLevel] = []
    for fo, picked in selection:
        for fl, quantity in picked:
            fl.remaining_quantity -= quantity
            shipped[fl.line_item_id] = shipped.get(fl.line_item_id, 0) + quantity
            take = min(fl.claimed, quantity)
            line = lines.get(fl.line_item_id)
            if take > 0 and line is not None and line.inventory_item_id is not None:
                level = sb.world.level(fo.location_id, line.inventory_item_id)
                if level is not None:
                    inventory.ship(sb, level, take)
                    touched.append(level)
                fl.claimed -= take
        fo.status = "CLOSED" if all(x.remaining_quantity == 0 for x in fo.line_items) else "IN_PROGRESS"
        fo.updated_at = now
    fulfillment = Fulfillment(
        id=sb.new_id(),
        name=f"{order.name}.{len(order.fulfillments) + 1}",
        location_id=selection[0][0].location_id,
        fulfillment_order_ids=[fo.id for fo, _ in selection],
        tracking=tracking,
        line_items=[FulfillmentLine(id=sb.new_id(), line_item_id=k, quantity=v) for k, v in shipped.items()],
        notify_customer=notify,
        message=message,
        created_at=now,
        updated_at=now,
    )
    order.fulfillments.append(fulfillment)
    _touch(sb, order)
    sb.webhooks.trigger("fulfillments/create", rest.fulfillment_json(sb, order, fulfillment), event_id)
    status = order_math.fulfillment_status(order)
    topic = "orders/fulfilled" if status == "FULFILLED" else "orders/partially_fulfilled"
    sb.webhooks.trigger(topic, rest.order_json(sb, order), event_id)
    sb.webhooks.trigger("orders/updated", rest.order_json(sb, order), event_id)
    inventory.levels_changed(sb, touched, event_id)
    return fulfillment


def fulfil_lines(
    sb: ShopifySandbox, order: Order, wanted: dict[str, int] | None, tracking: dict[str, Any]
) -> Fulfillment:
    """Staff fulfil (control API and traffic): ``wanted`` SKU → quantity, or everything left; from the first
    location that has something to ship."""
    lines = {li.id: li for li in order.line_items}
    remaining = dict(wanted) if wanted is not None else None
    for fo in order.fulfillment_orders:
        if fo.status not in ("OPEN", "IN_PROGRESS"):
            continue
        picked: list[tuple[FulfillmentOrderLine, int]] = []
        for fl in fo.line_items:
            if fl.remaining_quantity == 0:
                continue
            if remaining is None:
                picked.append((fl, fl.remaining_quantity))
                continue
            sku = lines[fl.line_item_id].sku or ""
            quantity = min(remaining.get(sku, 0), fl.remaining_quantity)
            if quantity > 0:
                picked.append((fl, quantity))
                remaining[sku] -= quantity
        if picked:
            return _fulfil(sb, order, [(fo, picked)], tracking, False, None, sb.ids.uuid())
    if order.cancelled_at is not None:
        raise SandboxError(409, f"order {order.name} is cancelled")
    raise SandboxError(409, f"nothing of {wanted or 'order ' + order.name} is left to fulfil")


def update_tracking(sb: ShopifySandbox, fulfillment_gid: str, data: dict[str, Any], notify: bool) -> dict[str, Any]:
    fid = parse_gid(fulfillment_gid, "Fulfillment")
    order = sb.world.order_containing(fid)
    fulfillment = next((f for f in order.fulfillments if f.id == fid), None) if order else None
    if order is None or fulfillment is None:
        return {
            "fulfillment_id": None,
            "user_errors": [UserErr("Fulfillment does not exist.", ["fulfillmentId"]).as_dict()],
        }
    tracking, errors = tracking_list(data)
    if errors:
        return {"fulfillment_id": None, "user_errors": errors_json(errors)}
    fulfillment.tracking = tracking
    fulfillment.updated_at = sb.now()
    fulfillment.notify_customer = notify
    _touch(sb, order)
    event_id = sb.ids.uuid()
    sb.webhooks.trigger("fulfillments/update", rest.fulfillment_json(sb, order, fulfillment), event_id)
    sb.webhooks.trigger("orders/updated", rest.order_json(sb, order), event_id)
    return {"fulfillment_id": fulfillment.id, "user_errors": []}


def cancel_fulfillment(sb: ShopifySandbox, fulfillment_gid: str) -> dict[str, Any]:
    """``fulfillmentCancel``: the units go back to their fulfillment orders and are claimed again."""
    fid = parse_gid(fulfillment_gid, "Fulfillment")
    order = sb.world.order_containing(fid)
    fulfillment = next((f for f in order.fulfillments if f.id == fid), None) if order else None
    if order is None or fulfillment is None:
        return {"fulfillment_id": None, "user_errors": [UserErr("Fulfillment does not exist.", ["id"]).as_dict()]}
    if fulfillment.status != "SUCCESS":
        return {"fulfillment_id": None, "user_errors": [UserErr("Fulfillment is already cancelled.", ["id"]).as_dict()]}
    now = sb.now()
    lines = {li.id: li for li in order.line_items}
    touched = []
    for fl in fulfillment.line_items:
        left = fl.quantity
        for fo in order.fulfillment_orders:
            if fo.id not in fulfillment.fulfillment_order_ids:
                continue
            for fol in fo.line_items:
                if fol.line_item_id != fl.line_item_id or left == 0:
                    continue
                back = min(left, fol.total_quantity - fol.remaining_quantity)
                fol.remaining_quantity += back
                left -= back
                line = lines.get(fl.line_item_id)
                if back and order.inventory_behaviour != "BYPASS" and line and line.inventory_item_id:
                    level = sb.world.level(fo.location_id, line.inventory_item_id)
                    if level is not None:
                        inventory.move(sb, level, None, "committed", back)
                        fol.claimed += back
                        touched.append(level)
            if any(x.remaining_quantity for x in fo.line_items):
                fo.status = (
                    "IN_PROGRESS" if any(x.remaining_quantity < x.total_quantity for x in fo.line_items) else "OPEN"
                )
                fo.updated_at = now
    fulfillment.status = "CANCELLED"
    fulfillment.updated_at = now
    order.closed_at = None
    _touch(sb, order)
    event_id = sb.ids.uuid()
    sb.webhooks.trigger("fulfillments/update", rest.fulfillment_json(sb, order, fulfillment), event_id)
    sb.webhooks.trigger("orders/updated", rest.order_json(sb, order), event_id)
    inventory.levels_changed(sb, touched, event_id)
    return {"fulfillment_id": fulfillment.id, "user_errors": []}


# --- refund --------------------------------------------------------------------------------------------------


def create_refund(sb: ShopifySandbox, data: dict[str, Any]) -> dict[str, Any]:
    """``refundCreate``: validate every line and transaction, then restock, record and fire the webhooks."""
    order = sb.world.get(Order, parse_gid(data.get("orderId"), "Order"))
    if order is None:
        return {"refund_id": None, "user_errors": [UserErr("Order does not exist", ["input", "orderId"]).as_dict()]}
    errors: list[UserErr] = []
    lines = {li.id: li for li in order.line_items}
    plans: list[tuple[LineItem, int, str, Location | None]] = []
    asked: dict[str, int] = {}
    for index, rli in enumerate(data.get("refundLineItems") or []):
        path = ["input", "refundLineItems", str(index)]
        line = lines.get(parse_gid(rli.get("lineItemId"), "LineItem") or "")
        if line is None:
            errors.append(UserErr("Line item does not exist on this order.", [*path, "lineItemId"]))
            continue
        quantity = int(rli["quantity"])
        restock_type = rli.get("restockType") or "RETURN"
        asked[line.id] = asked.get(line.id, 0) + quantity
        if quantity < 1:
            errors.append(UserErr("Quantity must be greater than 0.", [*path, "quantity"]))
            continue
        if asked[line.id] > line.quantity - line.refunded_quantity:
            errors.append(UserErr("Quantity cannot refund more items than were purchased.", [*path, "quantity"]))
            continue
        if restock_type == "LEGACY_RESTOCK":
            errors.append(UserErr("LEGACY_RESTOCK is not accepted when creating a refund.", [*path, "restockType"]))
            continue
        location = sb.world.get(Location, parse_gid(rli.get("locationId"), "Location"))
        if rli.get("locationId") and location is None:
            errors.append(UserErr("Location does not exist.", [*path, "locationId"]))
            continue
        unfulfilled = order_math.unfulfilled_quantity(order, line.id)
        returnable = order_math.fulfilled_quantity(order, line.id) - order_math.returned_quantity(order, line.id)
        if restock_type == "CANCEL" and quantity > unfulfilled:
            errors.append(UserErr(f"Cannot cancel {quantity}: only {unfulfilled} unfulfilled.", [*path, "quantity"]))
            continue
        if restock_type == "RETURN" and quantity > returnable:
            errors.append(
                UserErr(
                    f"Cannot return {quantity}: only {returnable} fulfilled and not yet returned.", [*path, "quantity"]
                )
            )
            continue
        if restock_type == "RETURN" and line.inventory_item_id:
            target = location or _fulfilled_from(sb, order, line.id)
            if target is None or sb.world.level(target.id, line.inventory_item_id) is None:
                errors.append(UserErr("The item is not stocked at the restock location.", [*path, "locationId"]))
                continue
            location = target
        plans.append((line, quantity, restock_type, location))
    txns_in = data.get("transactions") or []
    amount = Decimal(0)
    for index, t in enumerate(txns_in):
        path = ["input", "transactions", str(index)]
        if t.get("kind") != "REFUND":
            errors.append(UserErr("Only REFUND transactions can be part of a refund.", [*path, "kind"]))
        if dec(t["amount"]) <= 0:
            errors.append(UserErr("Amount must be greater than 0.", [*path, "amount"]))
        amount += dec(t["amount"])
    available = order_math.received(order) - order_math.refunded(order)
    if amount > available and not data.get("allowOverRefunding"):
        errors.append(
            UserErr(f"Refund amount {amount} exceeds the {available} available to refund.", ["input", "transactions"])
        )
    if errors:
        return {"refund_id": None, "user_errors": errors_json(errors)}

    now = sb.now()
    touched: list[InventoryLevel] = []
    refund_lines: list[RefundLine] = []
    for line, quantity, restock_type, location in plans:
        restocked = False
        if restock_type in ("CANCEL", "NO_RESTOCK"):
            restocked = _remove_unfulfilled(sb, order, line, quantity, restock_type == "CANCEL", location, touched)
        elif line.inventory_item_id and location is not None:
            level = sb.world.level(location.id, line.inventory_item_id)
            if level is not None:
                inventory.restock(sb, level, quantity)
                touched.append(level)
                restocked = True
        line.refunded_quantity += quantity
        refund_lines.append(
            RefundLine(
                id=sb.new_id(),
                line_item_id=line.id,
                quantity=quantity,
                restock_type=restock_type,
                location_id=location.id if location is not None and restock_type != "NO_RESTOCK" else None,
                restocked=restocked,
                subtotal=str(dec(line.price) * quantity),
            )
        )
    txn_ids = []
    for t in txns_in:
        txn = Transaction(
            id=sb.new_id(),
            kind="REFUND",
            amount=str(dec(t["amount"])),
            gateway=t["gateway"],
            parent_id=parse_gid(t.get("parentId"), "OrderTransaction"),
            created_at=now,
        )
        order.transactions.append(txn)
        txn_ids.append(txn.id)
    shipping = data.get("shipping") or {}
    shipping_amount = Decimal(0)
    if shipping.get("fullRefund"):
        shipping_amount = order_math.shipping_total(order)
    elif shipping.get("amount") is not None:
        shipping_amount = dec(shipping["amount"])
    refund = Refund(
        id=sb.new_id(),
        note=data.get("note"),
        line_items=refund_lines,
        transaction_ids=txn_ids,
        shipping_amount=str(shipping_amount),
        created_at=now,
    )
    order.refunds.append(refund)
    _touch(sb, order)
    event_id = sb.ids.uuid()
    sb.webhooks.trigger("refunds/create", rest.refund_json(sb, order, refund), event_id)
    sb.webhooks.trigger("orders/updated", rest.order_json(sb, order), event_id)
    inventory.levels_changed(sb, touched, event_id)
    return {"refund_id": refund.id, "user_errors": []}


def _fulfilled_from(sb: ShopifySandbox, order: Order, line_item_id: str) -> Location | None:
    for f in order.fulfillments:
        if f.status == "SUCCESS" and any(fl.line_item_id == line_item_id for fl in f.line_items):
            return sb.world.get(Location, f.location_id)
    return None


def _remove_unfulfilled(
    sb: ShopifySandbox,
    order: Order,
    line: LineItem,
    quantity: int,
    restock: bool,
    location: Location | None,
    touched: list[InventoryLevel],
) -> bool:
    """Take ``quantity`` unfulfilled units of ``line`` off its fulfillment orders, releasing what was claimed."""
    left = quantity
    restocked = False
    now = sb.now()
    for fo in order.fulfillment_orders:
        if fo.status not in ACTIVE_FO:
            continue
        for fl in fo.line_items:
            if fl.line_item_id != line.id or left == 0 or fl.remaining_quantity == 0:
                continue
            take = min(left, fl.remaining_quantity)
            fl.remaining_quantity -= take
            left -= take
            claimed = min(fl.claimed, take)
            if claimed and line.inventory_item_id:
                level = sb.world.level(fo.location_id, line.inventory_item_id)
                target = sb.world.level(location.id, line.inventory_item_id) if location is not None else level
                if level is not None:
                    if restock and target is not None and target.id != level.id:
                        inventory.release(sb, level, claimed, restock=False)
                        inventory.restock(sb, target, claimed)
                        touched.extend([level, target])
                    else:
                        inventory.release(sb, level, claimed, restock=restock)
                        touched.append(level)
                    restocked = restock
                fl.claimed -= claimed
        if all(x.remaining_quantity == 0 for x in fo.line_items):
            fo.status = "CLOSED"
            fo.updated_at = now
    return restocked
