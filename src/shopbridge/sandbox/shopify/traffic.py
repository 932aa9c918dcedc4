"""The store's own life, only when asked (``--traffic`` or ``POST /_sandbox/traffic``): web customers ordering,
over-the-counter sales at the shop, and staff fulfilling open orders.

* **Web orders** arrive as a Poisson process (``web_orders_per_second``): 1-3 lines of variants the online
  location has in stock, a customer with a realistic name and US address, state tax, standard or free shipping,
  paid through ``shopify_payments``, created with DECREMENT_OBEYING_POLICY (so an order that stock cannot cover is
  simply not placed). ``POST /_sandbox/orders`` places one on demand.
* **In-store sales** (``in_store_sales_per_second``) take units off ``available`` at the non-online location, as
  an ``inventoryAdjustQuantities`` would (an adjustment group, ``inventory_levels/update``).
* **Staff fulfilment** (``traffic_fulfil``): every open order gets a fulfilment due after a delay drawn from
  [``fulfil_delay_min_seconds``, ``fulfil_delay_max_seconds``], with a carrier mostly from those TikTok Shop also
  knows and, for ``foreign_carrier_share`` of them, a Shopify carrier TikTok does not (``carriers.py``).

Quiet by default: nothing happens until traffic is switched on.
"""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import carriers, inventory, orders
from .errors import SandboxError
from .geo import FIRST_NAMES, LAST_NAMES, STREETS, US_STATES
from .ids import gid
from .models import Location, Order, Variant
from .money import dec

if TYPE_CHECKING:
    from .runtime import ShopifySandbox

TAX_RATE = Decimal("0.06")
FREE_SHIPPING_FROM = Decimal("50")
SHIPPING = Decimal("5.99")


class Traffic:
    def __init__(self, sandbox: ShopifySandbox) -> None:
        self.sb = sandbox
        self._last: float | None = None

    def configure(
        self,
        *,
        enabled: bool,
        web_orders_per_second: float | None = None,
        in_store_sales_per_second: float | None = None,
        fulfil: bool | None = None,
    ) -> None:
        settings = self.sb.world.settings
        settings.traffic_enabled = enabled
        if web_orders_per_second is not None:
            settings.web_orders_per_second = web_orders_per_second
        if in_store_sales_per_second is not None:
            settings.in_store_sales_per_second = in_store_sales_per_second
        if fulfil is not None:
            settings.traffic_fulfil = fulfil
        self.sb.world.save(settings)
        self._last = None
        if not enabled:
            # Switching traffic off also stops planned staff fulfilments.
            for order in self.sb.world.table(Order).values():
                if order.staff_fulfil_at is not None:
                    order.staff_fulfil_at = None
                    self.sb.world.save(order)
        self.sb.world.commit()

    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.sb.rng.random()
            if p <= limit:
                return k
            k += 1

    def step(self) -> None:
        """One background pass: arrivals since the last pass, and fulfilment plans for new open orders."""
        sb = self.sb
        settings = sb.world.settings
        if not settings.traffic_enabled:
            self._last = None
            return
        now = sb.now()
        elapsed = 0.0 if self._last is None else min(max(now - self._last, 0.0), 2.0)
        self._last = now
        for _ in range(self._poisson(settings.web_orders_per_second * elapsed)):
            with contextlib.suppress(SandboxError):  # nothing left in stock to sell online
                self.web_order()
        for _ in range(self._poisson(settings.in_store_sales_per_second * elapsed)):
            with contextlib.suppress(SandboxError):
                self.in_store_sale()
        if settings.traffic_fulfil:
            self.plan_fulfilments()
        sb.world.commit()

    def plan_fulfilments(self) -> None:
        sb = self.sb
        settings = sb.world.settings
        for order_id in list(sb.world.open_orders):
            order = sb.world.get(Order, order_id)
            if order is None or order.staff_fulfil_at is not None or order.cancel_job_id is not None:
                continue
            low = settings.fulfil_delay_min_seconds
            high = max(low, settings.fulfil_delay_max_seconds)
            order.staff_fulfil_at = sb.now() + sb.rng.uniform(low, high)
            sb.world.save(order)
            sb.schedule_order(order)

    def staff_fulfil(self, order: Order, carrier: str | None = None, number: str | None = None) -> None:
        """Staff ship everything left on the order (one fulfilment per location)."""
        sb = self.sb
        order.staff_fulfil_at = None
        sb.world.save(order)
        if order.cancelled_at is not None or order.cancel_job_id is not None:
            return
        carrier = carrier or carriers.choose_carrier(sb.rng, sb.world.settings.foreign_carrier_share)
        while any(fo.status in ("OPEN", "IN_PROGRESS") for fo in order.fulfillment_orders):
            tracking = {"company": carrier, "number": number or carriers.tracking_number(carrier, sb.rng)}
            orders.fulfil_lines(sb, order, None, tracking)

    # --- the customers -------------------------------------------------------------------------------------

    def _online_location(self) -> Location:
        sb = self.sb
        location = next((loc for loc in sb.world.locations() if loc.fulfills_online_orders and loc.is_active), None)
        if location is None:
            raise SandboxError(409, "no active location fulfils online orders")
        return location

    def pick_variant(self, sku: str, location: Location | None = None) -> Variant:
        """The variant behind a SKU; with duplicates, the first one stocked at ``location`` (or the online one)."""
        sb = self.sb
        variants = sb.world.variants_with_sku(sku)
        if not variants:
            raise SandboxError(404, f"unknown SKU {sku!r}")
        target = location or self._online_location()
        stocked = [v for v in variants if sb.world.level(target.id, v.inventory_item_id) is not None]
        return (stocked or variants)[0]

    def web_order(
        self,
        lines: list[tuple[Variant, int]] | None = None,
        *,
        email: str | None = None,
        paid: bool = True,
        tags: list[str] | None = None,
        note: str | None = None,
        behaviour: str = "DECREMENT_OBEYING_POLICY",
    ) -> Order:
        """A web customer checks out; returns the created order, or raises SandboxError (409) when stock fails."""
        sb = self.sb
        rng = sb.rng
        if lines is None:
            location = self._online_location()
            sellable = []
            for variant in sb.world.table(Variant).values():
                level = sb.world.level(location.id, variant.inventory_item_id)
                if level is not None and level.get("available") > 0:
                    sellable.append((variant, level.get("available")))
            if not sellable:
                raise SandboxError(409, "nothing is in stock online")
            sellable.sort(key=lambda pair: int(pair[0].id))
            picks = rng.sample(sellable, k=min(len(sellable), rng.choice((1, 1, 1, 2, 2, 3))))
            lines = [(variant, min(available, rng.choice((1, 1, 1, 2)))) for variant, available in picks]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        street, city, state, zip_code = rng.choice(STREETS)
        email = email or f"{first.lower()}.{last.lower()}{rng.randint(1, 999)}@example.com"
        address = {
            "firstName": first,
            "lastName": last,
            "address1": street,
            "city": city,
            "provinceCode": state,
            "countryCode": "US",
            "zip": zip_code,
            "phone": f"+1 {rng.randint(201, 989)}-555-{rng.randint(100, 199):04d}",
        }
        subtotal = sum((dec(v.price) * q for v, q in lines), Decimal(0))
        shipping = Decimal(0) if subtotal >= FREE_SHIPPING_FROM else SHIPPING
        tax = dec(subtotal * TAX_RATE)
        total = subtotal + shipping + tax
        currency = sb.world.shop.currency

        def price(amount: Decimal) -> dict[str, Any]:
            return {"shopMoney": {"amount": str(amount), "currencyCode": currency}}

        data: dict[str, Any] = {
            "lineItems": [{"variantId": gid("ProductVariant", v.id), "quantity": q} for v, q in lines],
            "email": email,
            "customer": {"toUpsert": {"email": email, "firstName": first, "lastName": last}},
            "shippingAddress": address,
            "billingAddress": address,
            "shippingLines": [
                {
                    "title": "Free Shipping" if shipping == 0 else "Standard Shipping",
                    "code": "STANDARD",
                    "source": "shopify",
                    "priceSet": price(shipping),
                }
            ],
            "taxLines": [{"title": f"{US_STATES[state]} State Tax", "rate": str(TAX_RATE), "priceSet": price(tax)}],
            "sourceName": "web",
            "tags": tags or [],
            "note": note,
            "transactions": [
                {"kind": "SALE", "status": "SUCCESS", "gateway": "shopify_payments", "amountSet": price(total)}
            ]
            if paid
            else [],
            "financialStatus": None if paid else "PENDING",
        }
        result = orders.create_order(sb, data, {"inventoryBehaviour": behaviour})
        if result["user_errors"]:
            raise SandboxError(409, "; ".join(e["message"] for e in result["user_errors"]))
        order = sb.world.get(Order, result["order_id"])
        assert order is not None
        if sb.world.settings.traffic_enabled and sb.world.settings.traffic_fulfil:
            self.plan_fulfilments()
        return order

    def in_store_sale(self, sku: str | None = None, location: Location | None = None, quantity: int = 1) -> int:
        """A sale at the counter: ``quantity`` units off ``available``; returns what is left available."""
        sb = self.sb
        if location is None:
            location = (
                next((loc for loc in sb.world.locations() if not loc.fulfills_online_orders and loc.is_active), None)
                or self._online_location()
            )
        if sku is None:
            candidates = [
                v
                for v in sorted(sb.world.table(Variant).values(), key=lambda v: int(v.id))
                if (lv := sb.world.level(location.id, v.inventory_item_id)) is not None and lv.get("available") > 0
            ]
            if not candidates:
                raise SandboxError(409, f"nothing is in stock at {location.name}")
            variant = sb.rng.choice(candidates)
        else:
            variant = self.pick_variant(sku, location)
        level = sb.world.level(location.id, variant.inventory_item_id)
        if level is None:
            raise SandboxError(409, f"{variant.sku} is not stocked at {location.name}")
        if level.get("available") < quantity:
            raise SandboxError(409, f"only {level.get('available')} of {variant.sku} available at {location.name}")
        result = inventory.adjust_quantities(
            sb,
            {
                "name": "available",
                "reason": "other",
                "referenceDocumentUri": f"gid://sandbox-pos/Sale/{sb.ids.next_id()}",
                "changes": [
                    {
                        "inventoryItemId": gid("InventoryItem", variant.inventory_item_id),
                        "locationId": gid("Location", location.id),
                        "delta": -quantity,
                    }
                ],
            },
        )
        if result["user_errors"]:
            raise SandboxError(409, "; ".join(e["message"] for e in result["user_errors"]))
        return level.get("available")
