"""`shopbridge sandbox pos` on a real port: it serves the signed API, posts signed events to the hub URL from its
sender process, and stops when stdin closes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shopbridge.sandbox.cli import sandbox_app
from shopbridge.sandbox.pos import sign, verify

from .conftest import ACCOUNT, SECRET


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Hub:
    """A hub endpoint on a loopback port, recording (path, headers, body) of each event."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                hub.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pos"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.server.shutdown()
    h.server.server_close()


def signed(method: str, path: str, body: bytes = b"") -> dict[str, str]:
    stamp = int(time.time())
    return {"X-POS-Account": ACCOUNT, "X-POS-Timestamp": str(stamp), "Content-Type": "application/json",
            "X-POS-Signature": sign(SECRET, stamp, method, path, body)}  # fmt: skip


def test_the_command_is_listed() -> None:
    result = CliRunner().invoke(sandbox_app, ["pos", "--help"])
    for flag in ("--port", "--account", "--secret", "--hub-url", "--seed", "--random-seed", "--traffic",
                 "--stop-on-stdin-eof"):  # fmt: skip
        assert flag in result.output


def test_cli_serves_posts_events_and_stops_when_stdin_closes(hub: Hub) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "shopbridge.sandbox.cli", "pos", "--port", str(port), "--quiet", "--seed", "demo",
               "--random-seed", "3", "--account", ACCOUNT, "--secret", SECRET, "--hub-url", hub.url,
               "--stop-on-stdin-eof"]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                stock = httpx.get(f"{base}/v1/stock?location_id=store-downtown",
                                  headers=signed("GET", "/v1/stock?location_id=store-downtown"))  # fmt: skip
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not start"
                time.sleep(0.1)
        assert stock.status_code == 200, stock.text
        sku = next(lv["sku"] for lv in stock.json()["levels"] if lv["on_hand"] > 0)
        body = json.dumps({"task_ref": "sb-1", "location_id": "store-downtown", "lines": [{"sku": sku, "quantity": 1}],
                           "order_ref": {"channel": "tiktok", "order_id": "1"}}).encode()  # fmt: skip
        headers = signed("POST", "/v1/fulfilment-tasks", body)
        created = httpx.post(f"{base}/v1/fulfilment-tasks", content=body, headers=headers)
        assert created.status_code == 201, created.text
        while not hub.received:
            assert time.monotonic() < deadline, "no event reached the hub"
            time.sleep(0.05)
        path, sent, event = hub.received[0]
        assert path == "/hooks/pos" and json.loads(event)["type"] == "task.updated"
        assert verify(SECRET, sent["X-POS-Timestamp"], "POST", "/hooks/pos", event, sent["X-POS-Signature"],
                      now=time.time()) is None  # fmt: skip
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
