"""A local point of sale speaking the shopbridge POS protocol (docs/pos-protocol.md, docs/sandbox.md)."""

from ..clock import SandboxClock
from .app import create_app, sandbox_of
from .config import LocationConfig, PosFaults, PosSandboxConfig
from .runtime import PosSandbox
from .signing import sign, verify

__all__ = [
    "LocationConfig",
    "PosFaults",
    "PosSandbox",
    "PosSandboxConfig",
    "SandboxClock",
    "create_app",
    "sandbox_of",
    "sign",
    "verify",
]
