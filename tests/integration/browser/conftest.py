"""Browser tests: Playwright driving Debian's ``chromium`` (installed here with apt when missing; never a browser
download) against the hub served by uvicorn on a loopback port.

``SHOPBRIDGE_SCREENSHOTS=DIR`` makes the tests save the screenshots the docs link to (``make screenshots``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Playwright, sync_playwright

from shopbridge.bootstrap import Hub
from shopbridge.web.app import create_app

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def _chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def install_chromium() -> str:
    """Debian's chromium, installed with apt when it is missing (as root, or through passwordless sudo)."""
    found = _chromium()
    if found:
        return found
    apt = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([*prefix, *apt], [*prefix, "apt-get", "update"], [*prefix, *apt]):
        subprocess.run(command, env=env, check=False, capture_output=True, timeout=900)
        if found := _chromium():
            return found
    pytest.fail("the browser tests need Debian's chromium and `apt-get install chromium` did not install it")


# Module-scoped, not session-scoped: Playwright's sync API runs an event loop on this thread while it is started,
# and the tests after the browser modules (asyncio ones among them) need the thread free of it.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=install_chromium(), headless=True,
                                          args=["--no-sandbox", "--disable-dev-shm-usage"])  # fmt: skip
    yield launched
    launched.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(hub: Hub) -> Iterator[str]:
    """The hub's app (no workers) on a loopback port; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(hub), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=server.run, name="dashboard-under-test", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the hub did not start serving")
        time.sleep(0.02)
    assert httpx.get(f"{base}/healthz").status_code == 200
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def screenshots() -> Path | None:
    target = os.environ.get("SHOPBRIDGE_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
