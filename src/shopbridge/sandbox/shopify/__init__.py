"""A faithful local emulator of the Shopify GraphQL Admin API, OAuth and webhooks (see docs/sandbox.md)."""

from ..clock import SandboxClock
from .app import create_app, sandbox_of
from .config import ShopifySandboxConfig
from .runtime import ShopifySandbox

__all__ = ["SandboxClock", "ShopifySandbox", "ShopifySandboxConfig", "create_app", "sandbox_of"]
