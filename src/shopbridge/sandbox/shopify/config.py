"""How one Shopify sandbox is configured: the shop, the app registered with it, the state file and the clock.

One sandbox is one shop (``shop_domain``) with one app installed twice over: as an admin-created custom app holding
a pre-generated ``shpat_`` token (reference §1.3), and as the app that the OAuth flows of §1.3-§1.4 (authorization
code, client credentials, expiring tokens) hand tokens out for. Both share the app's ``api_key``/``api_secret``;
webhooks are signed with that secret (§7.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..clock import SandboxClock

DEFAULT_SCOPES = (
    "read_products,write_products,read_inventory,write_inventory,read_locations,read_orders,write_orders,"
    "read_all_orders,read_fulfillments,write_fulfillments,read_merchant_managed_fulfillment_orders,"
    "write_merchant_managed_fulfillment_orders"
)


@dataclass
class ShopifySandboxConfig:
    shop_domain: str = "sandbox-store.myshopify.com"
    shop_name: str = "Sandbox Store"
    # Well-known sandbox credentials, not secrets: real deployments pass their own.
    access_token: str = "shpat_sandbox_token"  # noqa: S105
    api_key: str = "sandbox_api_key"
    api_secret: str = "sandbox_api_secret"  # noqa: S105
    # Where /admin/oauth/authorize sends the merchant back; a redirect_uri on the same scheme and host is accepted.
    redirect_url: str = "http://127.0.0.1:8000/connect/shopify/callback"
    # What the custom-app token and codes without `scope` are granted (comma-separated, as Shopify answers it).
    scopes: str = DEFAULT_SCOPES
    # The SQLite state file; None keeps the world in memory (tests).
    state_path: Path | None = None
    seed: str | None = None
    clock: SandboxClock = field(default_factory=SandboxClock)
    # Seeds identifiers and every random choice (traffic, faults) so a run can be reproduced.
    random_seed: int | None = None
    # Start the store simulation (web orders, in-store sales, staff fulfilment) when the app starts.
    traffic: bool = False
    # Seconds of real time between background passes (jobs, staff fulfilment, traffic, webhook retries).
    dispatcher_interval: float = 0.05
    # The API version webhooks are serialized with; set per app, not per subscription (§1.2).
    webhook_api_version: str = "2026-01"
    # Tests may route webhook deliveries through an httpx transport (e.g. MockTransport) instead of the network.
    webhook_transport: httpx.AsyncBaseTransport | None = None
    # Shopify waits 1 s for the connection and 5 s for the answer (§7.4).
    webhook_connect_timeout: float = 1.0
    webhook_timeout: float = 5.0
    webhook_concurrency: int = 16
    # Post deliveries from a process of their own (sandbox/sender.py), as the standalone sandbox does; a
    # webhook_transport applies only when this is False (the posts stay in the sandbox's event loop).
    webhook_sender_process: bool = False
