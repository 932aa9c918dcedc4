"""How one sandbox is configured: the app registered in "Partner Center", the state file and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..clock import SandboxClock


@dataclass
class SandboxConfig:
    app_key: str = "sandbox_app_key"
    # A well-known sandbox credential, not a secret: real apps pass their own.
    app_secret: str = "sandbox_app_secret"  # noqa: S105
    service_id: str = "7000000000000000001"
    redirect_url: str = "http://127.0.0.1:8000/connect/tiktok/callback"
    # The SQLite state file; None keeps the world in memory (tests).
    state_path: Path | None = None
    seed: str | None = None
    clock: SandboxClock = field(default_factory=SandboxClock)
    # Seeds identifiers and every random choice (faults, audits) so a run can be reproduced.
    random_seed: int | None = None
    # Seconds of real time between dispatcher passes (time-driven transitions and webhook deliveries).
    dispatcher_interval: float = 0.2
    # Tests route webhook deliveries through an httpx transport (e.g. MockTransport) instead of the network.
    webhook_transport: httpx.AsyncBaseTransport | None = None
    webhook_timeout: float = 5.0
    # Deliveries in flight at once; TikTok does not wait for one answer before sending the next.
    webhook_concurrency: int = 16
    # Post deliveries from a process of their own (sandbox/sender.py), as the standalone sandbox does; a
    # webhook_transport applies only when this is False (the posts stay in the sandbox's event loop).
    webhook_sender_process: bool = False
