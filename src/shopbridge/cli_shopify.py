"""`shopbridge connect shopify`: connecting a store (registered on the ``connect`` group by cli.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from shopbridge.bootstrap import Hub
    from shopbridge.channels.shopify.context import ShopifyContext

StockMaster = Annotated[
    Literal["hub", "shopify"],
    typer.Option(help="hub: the hub's stock is written to the store; shopify: the store's stock is mirrored."),
]


def _context(hub: Hub) -> ShopifyContext:
    from shopbridge.channels.shopify.context import NAME, ShopifyContext
    from shopbridge.cli import fail

    context = getattr(hub.channels.get(NAME), "context", None)
    if not isinstance(context, ShopifyContext):
        fail("the Shopify channel is not set up on this hub")
    return context


def connect_shopify(
    shop: Annotated[str, typer.Option(help="The store: my-store.myshopify.com (or my-store).")],
    token: Annotated[
        str | None, typer.Option(help="An Admin API access token; without one, print the app's install link.")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="The secret the store signs webhooks with (default: the app's secret).")
    ] = None,
    stock_master: StockMaster = "hub",
) -> None:
    """Connect a store with an Admin API token, or print the link its owner opens to install the hub's app."""
    from shopbridge.channels.shopify import oauth
    from shopbridge.channels.shopify.connect import SetupError, connect_with_token
    from shopbridge.cli import console, errors, fail, ready_hub

    built = ready_hub()
    context = _context(built)
    try:
        if token is None:
            link = oauth.start(context, shop, stock_master=stock_master)
        else:
            store = connect_with_token(context, shop, token, webhook_secret=webhook_secret,
                                       stock_master=stock_master, now=built.clock.now())  # fmt: skip
    except SetupError as error:
        fail(str(error))
    if token is None:
        console.print("Open this link as the store's owner (valid 30 minutes):")
        console.print(link, soft_wrap=True, highlight=False)
        return
    if not built.settings.public_url:
        errors.print("warning: SHOPBRIDGE_PUBLIC_URL is not set, so no webhooks were subscribed (poll only)")
    console.print(f"connected {store.name} ({store.shop_domain}) as channel account {store.account_id}, stock master "
                  f"{store.stock_master}; its catalogue import is queued", highlight=False)  # fmt: skip
