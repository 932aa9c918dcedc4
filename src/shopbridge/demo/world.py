"""The TikTok sandbox and the hub, each served on its own loopback port and connected through the real OAuth
flow, and, when asked, the Shopify sandbox as the merchant's store, connected with its Admin API token. Nothing is
faked between them: the hub signs its calls and the sandboxes check them; the sandboxes sign their webhooks and
POST them to the hub's receivers. Used by `shopbridge demo`, the benchmarks and the tests."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from shopbridge.bootstrap import Hub, build_hub
from shopbridge.channels.pos import channel as pos_channel
from shopbridge.channels.pos.connect import connect_pos
from shopbridge.channels.shopify import channel as shopify_channel
from shopbridge.channels.shopify.connect import connect_with_token
from shopbridge.channels.tiktok import connect
from shopbridge.channels.tiktok.channel import context_of
from shopbridge.channels.tiktok.signing import webhook_signature
from shopbridge.config import Settings
from shopbridge.sandbox.pos import create_app as create_pos_app
from shopbridge.sandbox.pos.config import PosSandboxConfig
from shopbridge.sandbox.shopify.app import create_app as create_store_app
from shopbridge.sandbox.shopify.config import ShopifySandboxConfig
from shopbridge.sandbox.tiktok import SandboxClock, SandboxConfig, create_app
from shopbridge.services.access import add_user, issue_token, set_password
from shopbridge.services.stock import apply_external_movement
from shopbridge.store.db import transaction
from shopbridge.store.files import create_private_file
from shopbridge.store.secrets import SecretBox
from shopbridge.store.tables import Location, Product, User, Variant
from shopbridge.web.app import create_app as create_hub_app

APP_KEY = "demo_app_key"
APP_SECRET = "demo_app_secret"  # noqa: S105 - the bundled sandbox app, never a real TikTok app
SERVICE_ID = "7000000000000000042"
OWNER = "owner@example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: FastAPI, port: int, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread until the block ends (its lifespan runs, so workers start)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def wait_until(condition: Callable[[], Any], *, timeout: float = 30.0, message: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy, or fail naming ``message``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {message}")
        time.sleep(0.05)


STORE_LOCATION = "Main Warehouse"  # the store's location that ships online orders, mapped to the hub's MAIN
STORE_PRICE = "20.00"


@dataclass
class Store:
    """The Shopify sandbox as the merchant's store, connected to the hub as channel account ``account_id``."""

    sandbox_url: str
    control: httpx.Client  # its /_sandbox control API
    account_id: int
    shop_domain: str

    def order(self, ref: str) -> dict[str, Any]:
        """One store order by legacy id, GID or name (the sandbox's ground truth)."""
        response = self.control.get(f"/orders/{ref}")
        response.raise_for_status()
        return dict(response.json())

    def orders(self) -> list[dict[str, Any]]:
        response = self.control.get("/orders")
        response.raise_for_status()
        return list(response.json())

    def place_order(self, items: dict[str, int]) -> dict[str, Any]:
        """A web customer buys in the store."""
        lines = [{"sku": sku, "quantity": quantity} for sku, quantity in items.items()]
        response = self.control.post("/orders", json={"lines": lines})
        if response.status_code != 201:
            raise RuntimeError(f"the store refused the order: {response.text}")
        return dict(response.json())

    def fulfil(self, ref: str, *, carrier: str = "UPS", tracking_number: str = "1Z999AA10123456784",
               lines: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
        """Staff fulfil an order (the listed lines only, when given) with a tracking number."""
        body: dict[str, Any] = {"carrier": carrier, "tracking_number": tracking_number,
                                "tracking_url": f"https://track.example.com/{tracking_number}"}  # fmt: skip
        if lines is not None:
            body["lines"] = [{"sku": sku, "quantity": quantity} for sku, quantity in lines.items()]
        response = self.control.post(f"/orders/{ref}/fulfil", json=body)
        response.raise_for_status()
        return dict(response.json())

    def cancel(self, ref: str, reason: str = "CUSTOMER") -> dict[str, Any]:
        response = self.control.post(f"/orders/{ref}/cancel", json={"reason": reason})
        response.raise_for_status()
        return dict(response.json())

    def available(self, sku: str, location: str = STORE_LOCATION) -> int:
        levels = self.control.get("/inventory", params={"sku": sku}).json()[0]["inventory"]
        return int(next(level["available"] for level in levels if level["location"] == location))


POS_ONLINE_LOCATION = "store-downtown"  # the POS store whose stock TikTok sells: mapped to the hub's MAIN


@dataclass
class Pos:
    """The POS sandbox, connected to the hub as channel account ``account_id``: four stores, the POS the stock
    master of what they carry, fulfilling the hub's released orders."""

    sandbox_url: str
    control: httpx.Client  # its /_sandbox control API
    account_id: int

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"the POS sandbox refused {response.request.method} {response.request.url}: "
                               f"{response.status_code} {response.text}")  # fmt: skip
        return response.json()

    def set_stock(self, location: str, on_hand: dict[str, int], *, silent: bool = False) -> dict[str, Any]:
        """A stock count at a store (a ``stock.levels`` event unless ``silent``)."""
        levels = [{"sku": sku, "on_hand": units} for sku, units in on_hand.items()]
        return dict(self._ok(self.control.put("/stock", params={"silent": silent},
                                              json={"location_id": location, "levels": levels})))  # fmt: skip

    def sell(self, location: str, items: dict[str, int], *, silent: bool = False,
             allow_oversell: bool = False) -> dict[str, Any]:  # fmt: skip
        """A till sale (``allow_oversell``: of units held for tasks too)."""
        lines = [{"sku": sku, "quantity": units} for sku, units in items.items()]
        body = {"location_id": location, "lines": lines, "allow_oversell": allow_oversell}
        return dict(self._ok(self.control.post("/sales", params={"silent": silent}, json=body)))

    def take_return(self, location: str, order_ref: dict[str, Any], lines: dict[str, tuple[int, int]], *,
                    silent: bool = False) -> dict[str, Any]:  # fmt: skip
        """The returns desk takes back ``lines`` (SKU → (units, of which restocked))."""
        body = {"location_id": location, "order_ref": order_ref,
                "lines": [{"sku": sku, "quantity": units, "restock_quantity": restock}
                          for sku, (units, restock) in lines.items()]}  # fmt: skip
        return dict(self._ok(self.control.post("/returns", params={"silent": silent}, json=body)))

    def tasks(self, **filters: str) -> list[dict[str, Any]]:
        return list(self._ok(self.control.get("/tasks", params=filters)))

    def ship(self, task_id: str, *, silent: bool = False, **tracking: str) -> dict[str, Any]:
        return dict(self._ok(self.control.post(f"/tasks/{task_id}/ship", params={"silent": silent},
                                               json=tracking)))  # fmt: skip

    def cancel_task(self, task_id: str, *, silent: bool = False) -> dict[str, Any]:
        return dict(self._ok(self.control.post(f"/tasks/{task_id}/cancel", params={"silent": silent},
                                               json={"reason": "store_cancelled"})))  # fmt: skip

    def level(self, location: str, sku: str) -> dict[str, Any]:
        """A SKU's level at a store: on_hand, allocated ({} when the store does not carry it)."""
        rows = self._ok(self.control.get("/stock", params={"location_id": location, "sku": sku}))
        levels = rows[0]["levels"] if rows else []
        return dict(levels[0]) if levels else {}

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self._ok(self.control.get("/events", params=filters)))

    def faults(self, **faults: Any) -> dict[str, Any]:
        return dict(self._ok(self.control.put("/faults", json=faults)))


@dataclass
class World:
    hub: Hub
    hub_url: str
    sandbox_url: str
    api: httpx.Client  # the hub's REST API with the owner's token
    control: httpx.Client  # the sandbox's /_sandbox control API
    shop_id: str
    sku_ids: dict[str, str]  # seller SKU -> TikTok sku_id
    api_token: str = field(repr=False, default="")
    store: Store | None = None  # the Shopify store, when the world has one
    owner_password: str = field(repr=False, default="")  # the dashboard's sign-in for OWNER, new every run
    pos: Pos | None = None  # the POS, when the world has one

    # --- the sandbox side ----------------------------------------------------------------------------------

    def place_order(self, items: dict[str, int], **extra: Any) -> str:
        lines = [{"sku_id": self.sku_ids[sku], "quantity": quantity} for sku, quantity in items.items()]
        response = self.control.post("/_sandbox/orders", json={"shop_id": self.shop_id, "items": lines, **extra})
        if response.status_code != 201:
            raise RuntimeError(f"the sandbox refused the order: {response.text}")
        return str(response.json()["id"])

    def sandbox_order(self, order_id: str) -> dict[str, Any]:
        response = self.control.get(f"/_sandbox/orders/{order_id}")
        response.raise_for_status()
        return dict(response.json())

    def advance(self, seconds: float) -> None:
        self.control.post("/_sandbox/clock/advance", json={"seconds": seconds}).raise_for_status()

    def buyer_cancel(self, order_id: str) -> None:
        self.control.post(
            f"/_sandbox/orders/{order_id}/buyer_cancel", json={"reason": "Changed my mind"}
        ).raise_for_status()

    def webhook_faults(self, **fault: float) -> None:
        self.control.put("/_sandbox/faults/webhooks", json={"event_type": "*", **fault}).raise_for_status()

    # --- the hub side --------------------------------------------------------------------------------------

    def hub_orders(self, **filters: Any) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {**filters, "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = self.api.get("/api/v1/orders", params=params)
            page.raise_for_status()
            orders += page.json()["orders"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return orders

    def hub_order(self, external_id: str) -> dict[str, Any] | None:
        for order in self.hub_orders():
            if order["external_id"] == external_id:
                detail = self.api.get(f"/api/v1/orders/{order['id']}")
                detail.raise_for_status()
                return dict(detail.json())
        return None

    def send_webhook(self, payload: dict[str, Any], *, signature: str | None = None) -> httpx.Response:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        header = signature if signature is not None else webhook_signature(APP_KEY, APP_SECRET, raw)
        return httpx.post(f"{self.hub_url}/hooks/tiktok", content=raw, headers={"authorization": header})


SANDBOX_MODULE = "shopbridge.sandbox.cli"


def sandbox_subprocess(
    port: int, redirect_url: str, state: Path | None, seed: str | None, clock_speed: float,
    *, pid_file: Path | None = None,
) -> contextlib.AbstractContextManager[str]:  # fmt: skip
    """The TikTok sandbox in a process of its own, as TikTok is a system of its own: it does not share the hub's
    interpreter (its lock) or its cores' time slices with the hub.

    It stops with this process however this process ends, SIGKILL included: its stdin is a pipe from here, which
    the kernel closes when this process dies, and it stops when its stdin closes (``--stop-on-stdin-eof``). With
    ``pid_file`` it is also recorded there while it runs (see `stop_recorded_sandbox`)."""
    command = [
        "tiktok", "--port", str(port), "--app-key", APP_KEY, "--app-secret", APP_SECRET, "--service-id", SERVICE_ID,
        "--redirect-url", redirect_url, "--clock-speed", str(clock_speed), "--random-seed", "11",
        "--dispatcher-interval", "0.05",
    ]  # fmt: skip
    if seed is not None:
        command += ["--seed", seed]
    return _sandbox_process(command, port, state, pid_file=pid_file)


def store_subprocess(port: int, config: ShopifySandboxConfig) -> contextlib.AbstractContextManager[str]:
    """The Shopify sandbox in a process of its own (see `sandbox_subprocess`), configured as ``config`` says."""
    command = [
        "shopify", "--port", str(port), "--shop-domain", config.shop_domain, "--access-token", config.access_token,
        "--api-key", config.api_key, "--api-secret", config.api_secret,
        *(["--random-seed", str(config.random_seed)] if config.random_seed is not None else []),
    ]  # fmt: skip
    return _sandbox_process(command, port, config.state_path)


def pos_subprocess(port: int, config: PosSandboxConfig) -> contextlib.AbstractContextManager[str]:
    """The POS sandbox in a process of its own (see `sandbox_subprocess`), as `shopbridge sandbox pos` serves it: the
    account, secret, hub address and seed of ``config``, the rest at that command's defaults (its control API
    changes delivery retries, faults and traffic at run time)."""
    command = [
        "pos", "--port", str(port), "--account", config.account, "--secret", config.secret,
        "--hub-url", config.hub_event_url,
        *(["--random-seed", str(config.random_seed)] if config.random_seed is not None else []),
    ]  # fmt: skip
    return _sandbox_process(command, port, None)


@contextmanager
def _sandbox_process(arguments: list[str], port: int, state: Path | None, *,
                     pid_file: Path | None = None) -> Iterator[str]:  # fmt: skip
    command = [sys.executable, "-m", SANDBOX_MODULE, *arguments, "--quiet", "--stop-on-stdin-eof"]
    if state is not None:
        command += ["--state", str(state)]
    # our own CLI, fixed arguments; the pipe is not inherited by other children (close_fds), so only our end counts
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        if pid_file is not None:
            _record_sandbox(pid_file, process.pid, port)
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the sandbox exited with code {process.returncode} before it was ready")
            try:
                if httpx.get(f"{url}/_sandbox/settings", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not answer on port {port} within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)


def _record_sandbox(pid_file: Path, pid: int, port: int) -> None:
    """``<sandbox pid> <port> <our pid>``, written owner-only and whole (renamed into place)."""
    written = pid_file.with_name(f"{pid_file.name}.new")
    written.unlink(missing_ok=True)
    create_private_file(written)
    written.write_text(f"{pid} {port} {os.getpid()}\n")
    os.replace(written, pid_file)


def stop_recorded_sandbox(pid_file: Path, *, timeout: float = 15.0) -> int | None:
    """Stop the sandbox recorded in ``pid_file`` if it outlived the process that started it (its parent was killed
    and it is still shutting down, or stuck). Returns its pid if it was stopped; drops a record that names nothing
    to stop.

    Only a process that is still the recorded sandbox is stopped: one running our sandbox module on the recorded
    port (a reused pid runs something else) whose parent is no longer the recorded one (a sandbox whose demo still
    runs is that demo's business). This reads /proc (Linux); elsewhere the record is dropped and nothing stopped."""
    try:
        fields = pid_file.read_text().split()
        pid, port, parent = int(fields[0]), int(fields[1]), int(fields[2])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pid_file.unlink(missing_ok=True)  # unreadable: written by nothing we know
        return None
    running = _process(pid)
    if running is None or running[0] == parent:
        if running is None:
            pid_file.unlink(missing_ok=True)
        return None
    arguments = running[1]
    is_recorded_sandbox = (
        SANDBOX_MODULE in arguments and "tiktok" in arguments
        and any(arguments[at : at + 2] == ["--port", str(port)] for at in range(len(arguments)))
    )  # fmt: skip
    if not is_recorded_sandbox:
        pid_file.unlink(missing_ok=True)
        return None
    try:
        os.kill(pid, signal.SIGTERM)  # it saves its state and stops its webhook sender, as on Ctrl-C
        if not _ended(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            _ended(pid, 5.0)
    except ProcessLookupError:
        pass  # it ended on its own meanwhile
    except PermissionError:
        return None  # another user's: not ours to stop (the port check then names the port)
    pid_file.unlink(missing_ok=True)
    return pid


def _process(pid: int) -> tuple[int, list[str]] | None:
    """A running process's parent pid and arguments, or None if none runs with that pid (a zombie, dead and not
    yet reaped by whoever adopted it, holds no port any more and counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    state, parent = stat.rsplit(")", 1)[1].split()[:2]  # after the command name, which may hold anything
    if state in ("Z", "X"):
        return None
    return int(parent), [argument.decode(errors="replace") for argument in arguments if argument]


def _ended(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _process(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _seed_shop(
    control: httpx.Client, skus: dict[str, str] | None, products: Sequence[Mapping[str, Any]] | None = None,
    terms: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, str]]:  # fmt: skip
    """A shop to sell from: the seeded demo shop, or a new one with ``skus`` (seller SKU -> price, one product,
    5,000 units each) and/or ``products`` (bodies for `POST /_sandbox/products` without the shop id: a title and
    skus with seller_sku, price and quantity). ``terms`` are the new shop's market and settlement terms (region,
    settlement_delay_days, reserve_rate, ...: `POST /_sandbox/shops`)."""
    if skus is None and not products:
        sellers = control.get("/_sandbox/sellers").json()
        shop_id = str(sellers[0]["shops"][0]["id"])
    else:
        seller = control.post("/_sandbox/sellers", json={"name": "Maomao"}).json()
        shop_in = {"seller_id": seller["id"], "name": "Maomao beauty", **(terms or {})}
        shop = control.post("/_sandbox/shops", json=shop_in).json()
        shop_id = str(shop["id"])
        bodies: list[Mapping[str, Any]] = list(products or [])
        if skus is not None:
            bodies.insert(0, {"title": "Everyday cotton tee and mug",
                              "skus": [{"seller_sku": sku, "price": price, "quantity": 5000}
                                       for sku, price in skus.items()]})  # fmt: skip
        for body in bodies:
            product = control.post("/_sandbox/products", json={**body, "shop_id": shop_id})
            if product.status_code != 201:
                raise RuntimeError(f"the sandbox refused the product: {product.text}")
    stock = control.get("/_sandbox/truth/stock", params={"shop_id": shop_id}).json()
    return shop_id, {str(row["seller_sku"]): str(row["sku_id"]) for row in stock}


@contextmanager
def running_world(
    database_url: str | None,
    data_dir: Path,
    *,
    skus: dict[str, str] | None = None,
    sandbox_seed: str | None = None,
    sandbox_state: Path | None = None,
    clock_speed: float = 1.0,
    poll_seconds: float = 3600.0,
    hub_port: int | None = None,
    sandbox_port: int | None = None,
    workers: int | None = None,
    unlinked_skus: int = 0,
    sandbox_process: bool = False,
    sandbox_pid_file: Path | None = None,
    sandbox_options: dict[str, Any] | None = None,
    products: Sequence[Mapping[str, Any]] | None = None,
    shop_terms: Mapping[str, Any] | None = None,
    prepare_hub: Callable[[Hub], None] | None = None,
    store: bool = False,
    store_state: Path | None = None,
    store_port: int | None = None,
    store_process: bool = False,
    owner_password: bool = False,
    pos: bool = False,
    pos_options: dict[str, Any] | None = None,
    pos_location_map: dict[str, str] | None = None,
    pos_process: bool = False,
    **hub_settings: Any,
) -> Iterator[World]:
    """Start both, connect the sandbox's shop to the hub through OAuth, and mirror its SKUs in the hub's
    catalogue (as the merchant's own store would have them), all but ``unlinked_skus`` of them, so that orders
    for those are Blocked as they would be in a real shop. ``products`` lists the sandbox products to create
    (see `_seed_shop`), ``shop_terms`` the new shop's market and settlement terms; ``prepare_hub`` runs once the
    catalogue exists, before the hub serves and the shop is connected (a benchmark records its initial stock
    there). With ``sandbox_process`` the sandbox runs in a child
    process, recorded in ``sandbox_pid_file`` if one is given (see `sandbox_subprocess`). With ``store`` the
    Shopify sandbox runs too (its world kept in ``store_state`` if given; in a process of its own with
    ``store_process``), selling the same SKUs from one location,
    and is connected to the hub with its Admin API token as the store that fulfils the hub's TikTok orders. With
    ``owner_password`` the owner gets a new dashboard password (``World.owner_password``). With ``pos`` the POS
    sandbox runs too (``pos_options``: more of its PosSandboxConfig; with ``pos_process`` in a process of its own, see
    `pos_subprocess`), its stores empty until stocked, and is
    connected as the stock master that fulfils the hub's TikTok orders, its downtown store mapped to the hub's MAIN
    (the location TikTok's warehouse sells from) unless ``pos_location_map`` maps its stores otherwise ({}: each
    store a hub location of its own)."""
    hub_port = hub_port or free_port()
    sandbox_port = sandbox_port or free_port()
    hub_base = f"http://127.0.0.1:{hub_port}"
    redirect = f"{hub_base}/connect/tiktok/callback"
    if sandbox_process:
        sandbox = sandbox_subprocess(
            sandbox_port, redirect, sandbox_state, sandbox_seed, clock_speed, pid_file=sandbox_pid_file
        )
    else:
        sandbox_app = create_app(
            SandboxConfig(
                app_key=APP_KEY, app_secret=APP_SECRET, service_id=SERVICE_ID, redirect_url=redirect,
                state_path=sandbox_state, seed=sandbox_seed, clock=SandboxClock(speed=clock_speed), random_seed=11,
                dispatcher_interval=0.05, **(sandbox_options or {}),
            )
        )  # fmt: skip
        sandbox = serving(sandbox_app, sandbox_port)
    # The store runs on real time: only TikTok's hour-long hold needs a faster clock in the demo.
    store_config = ShopifySandboxConfig(state_path=store_state, random_seed=7, dispatcher_interval=0.05)
    store_port = store_port or free_port()
    stores: contextlib.AbstractContextManager[str | None] = contextlib.nullcontext()
    if store:
        stores = store_subprocess(store_port, store_config) if store_process else serving(
            create_store_app(store_config), store_port)  # fmt: skip
    pos_port = free_port()
    pos_config = PosSandboxConfig(hub_event_url=f"{hub_base}/hooks/pos", random_seed=5, dispatcher_interval=0.02,
                                  event_retry_base_seconds=0.2, **(pos_options or {}))  # fmt: skip
    tills: contextlib.AbstractContextManager[str | None] = contextlib.nullcontext()
    if pos:
        tills = pos_subprocess(pos_port, pos_config) if pos_process else serving(create_pos_app(pos_config), pos_port)
    with sandbox as sandbox_url, httpx.Client(base_url=sandbox_url, timeout=30) as control, stores as store_url, \
            tills as pos_url:  # fmt: skip
        shop_id, sku_ids = _seed_shop(control, *((skus, products) if sandbox_seed is None else (None, None)),
                                      terms=shop_terms)  # fmt: skip
        if store_url is not None:
            hub_settings = {"shopify_admin_base_url": store_url, "shopify_api_secret": store_config.api_secret,
                            **hub_settings}  # fmt: skip
        defaults: dict[str, Any] = {
            "worker_poll_seconds": 0.05, "public_url": hub_base, "currency": "USD",
            "timezone": "America/Los_Angeles", "log_level": "warning", "log_format": "console",
        }  # fmt: skip
        settings = Settings(
            data_dir=data_dir, database_url=database_url, secret_key=SecretBox.generate_key() if database_url else None,
            tiktok_app_key=APP_KEY, tiktok_app_secret=APP_SECRET, tiktok_service_id=SERVICE_ID,
            tiktok_api_base_url=sandbox_url, tiktok_auth_base_url=sandbox_url, tiktok_authorize_base_url=sandbox_url,
            tiktok_poll_seconds=poll_seconds, **{**defaults, **hub_settings},
        )  # fmt: skip
        hub = build_hub(settings)
        workers = settings.workers if workers is None else workers
        hub.migrate()
        mirrored = dict(sorted(sku_ids.items())[: len(sku_ids) - unlinked_skus])
        token, password = _catalogue_and_owner(hub, mirrored, with_password=owner_password)
        try:
            if prepare_hub is not None:
                prepare_hub(hub)
            with serving(create_hub_app(hub, workers=workers), hub_port) as hub_url:
                context = context_of(hub.channels)
                assert context is not None
                authorized = httpx.get(connect.start(context), follow_redirects=True, timeout=30)
                if authorized.status_code != 200 or "Connected" not in authorized.text:
                    raise RuntimeError(f"connecting the sandbox shop failed: {authorized.text}")
                with httpx.Client(base_url=hub_url, headers={"authorization": f"Bearer {token}"}, timeout=30) as api, \
                        httpx.Client(base_url=f"{store_url}/_sandbox", timeout=30) as store_control:  # fmt: skip
                    the_store = None
                    if store_url is not None:
                        the_store = _connect_store(hub, store_url, store_control, store_config, sorted(mirrored))
                    with httpx.Client(base_url=f"{pos_url}/_sandbox", timeout=30) as pos_control:
                        the_pos = None
                        if pos_url is not None:
                            the_pos = _connect_pos(hub, pos_url, pos_control, pos_config, pos_location_map)
                        yield World(hub, hub_url, sandbox_url, api, control, shop_id, sku_ids, token, the_store,
                                    password, the_pos)  # fmt: skip
        finally:
            hub.close()


def _connect_store(hub: Hub, store_url: str, control: httpx.Client, config: ShopifySandboxConfig,
                   skus: list[str]) -> Store:  # fmt: skip
    """Stock the store with ``skus`` (once: a kept store already has them) and connect it with its token; the hub
    then imports its catalogue, links the SKUs and writes its stock truth there."""
    locations = {location["name"] for location in control.get("/locations").json()}
    if STORE_LOCATION not in locations:
        control.post("/locations", json={"name": STORE_LOCATION, "fulfills_online_orders": True}).raise_for_status()
    stocked = {row["sku"] for row in control.get("/inventory").json()}
    missing = [sku for sku in skus if sku not in stocked]
    if missing:
        variants = [{"sku": sku, "title": sku, "price": STORE_PRICE, "options": [["SKU", sku]],
                     "stock": {STORE_LOCATION: 0}} for sku in missing]  # fmt: skip
        control.post("/products", json={"title": "The merchant's catalogue", "variants": variants}).raise_for_status()
    context = shopify_channel.context_of(hub.channels)
    assert context is not None
    connected = connect_with_token(context, config.shop_domain, config.access_token, now=hub.clock.now())
    return Store(store_url, control, connected.account_id, connected.shop_domain)


def _connect_pos(hub: Hub, pos_url: str, control: httpx.Client, config: PosSandboxConfig,
                 location_map: dict[str, str] | None) -> Pos:  # fmt: skip
    """Connect the POS with its account and secret, its downtown store as the hub's MAIN (made if missing) unless
    ``location_map`` says otherwise."""
    with transaction(hub.sessions) as session:
        if session.scalar(select(Location.id).where(Location.code == "MAIN")) is None:
            session.add(Location(code="MAIN", name="Main location", timezone=hub.settings.timezone,
                                 created_at=hub.clock.now()))  # fmt: skip
    context = pos_channel.context_of(hub.channels)
    assert context is not None
    mapped = {POS_ONLINE_LOCATION: "MAIN"} if location_map is None else location_map
    connected = connect_pos(context, f"{pos_url}/v1", config.account, config.secret, now=hub.clock.now(),
                            location_map=mapped)  # fmt: skip
    return Pos(pos_url, control, connected.account_id)


def _catalogue_and_owner(hub: Hub, sku_ids: dict[str, str], *, with_password: bool) -> tuple[str, str]:
    """Mirror the shop's SKUs as the merchant's catalogue (idempotent); issue an owner API token and, if asked, give
    the owner a new dashboard password (both returned; hashing one costs a noticeable part of a CPU second)."""
    with transaction(hub.sessions) as session:
        known = set(session.scalars(select(Variant.sku)))
        missing = [sku for sku in sku_ids if sku not in known]
        if missing:
            catalogue = Product(title="Catalogue mirrored from the sandbox shop")
            session.add(catalogue)
            session.flush()
            session.add_all(Variant(product_id=catalogue.id, sku=sku) for sku in missing)
        if session.scalar(select(User.id).where(User.email == OWNER)) is None:
            add_user(session, OWNER, "owner", now=hub.clock.now(), actor="demo")
        password = secrets.token_urlsafe(12) if with_password else ""
        if password:
            set_password(session, OWNER, password, now=hub.clock.now(), actor="demo")
        return issue_token(session, OWNER, "demo", now=hub.clock.now(), actor="demo"), password


def record_initial_stock(hub: Hub, units_by_sku: dict[str, int], *, key_prefix: str) -> None:
    """Restock movements for a starting stock, through the ledger (once per key), before the shop is connected, so
    the first pushes put the hub's truth on TikTok."""
    now = hub.clock.now()
    with transaction(hub.sessions) as session:
        if session.scalar(select(Location.id).where(Location.code == "MAIN")) is None:
            session.add(Location(code="MAIN", name="Main location", timezone=hub.settings.timezone, created_at=now))
            session.flush()
        for sku, units in units_by_sku.items():
            apply_external_movement(session, sku=sku, location_code="MAIN", kind="restock", quantity=units,
                                    idempotency_key=f"{key_prefix}:initial:{sku}", origin="hub", now=now)  # fmt: skip
