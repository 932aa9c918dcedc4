"""A faithful local emulator of the TikTok Shop Partner API (see docs/sandbox.md)."""

from ..clock import SandboxClock
from .app import create_app, sandbox_of
from .config import SandboxConfig
from .runtime import TikTokSandbox

__all__ = ["SandboxClock", "SandboxConfig", "TikTokSandbox", "create_app", "sandbox_of"]
