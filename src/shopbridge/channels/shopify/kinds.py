"""The Shopify channel's job kinds and the webhook topics it subscribes to, in one place for its modules."""

from __future__ import annotations

from shopbridge.services.availability import push_kind
from shopbridge.services.fulfilment import cancel_kind, place_order_kind

IMPORT_CATALOG = "shopify.import_catalog"  # products, variants, locations; SKU links (catalog.py)
PUSH_STOCK = push_kind("shopify")  # the hub's truth to the store, compare-and-swap (stock.py, hub-master)
OBSERVE_STOCK = "shopify.observe_stock"  # an inventory level changed at the store (stock.py)
CHECK_STOCK = "shopify.check_stock"  # the periodic comparison of the store's quantities with the hub (stock.py)
SYNC_ORDER = "shopify.sync_order"  # re-read one store order: fulfilments, cancellation, or the store's own order
POLL_ORDERS = "shopify.poll_orders"  # the backstop: orders updated since the watermark
PLACE_ORDER = place_order_kind("shopify")  # a released order of another channel becomes a store order
CANCEL_ORDER = cancel_kind("shopify")  # cancel a store order placed for another channel
UNINSTALLED = "shopify.uninstalled"  # app/uninstalled: the store must be reconnected

# Topics (GraphQL enum names) the hub subscribes to when it has a public URL. Each order event is asked for once:
# orders/updated (which fires for every change, the hub's own placements included), orders/paid, orders/fulfilled
# and orders/partially_fulfilled would only repeat it, and the store's webhook traffic is what the loop's changes
# wait behind. What only they would tell (a store order paid later, or its lines edited) changes no stock (an order
# reserves its units when it is created) and is read by the order poll.
ORDER_TOPICS = ("ORDERS_CREATE", "ORDERS_CANCELLED", "FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE")
STOCK_TOPICS = ("INVENTORY_LEVELS_UPDATE",)
CATALOG_TOPICS = ("PRODUCTS_CREATE", "PRODUCTS_UPDATE", "PRODUCTS_DELETE")
APP_TOPICS = ("APP_UNINSTALLED",)
SUBSCRIBED_TOPICS = ORDER_TOPICS + STOCK_TOPICS + CATALOG_TOPICS + APP_TOPICS
