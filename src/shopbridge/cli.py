"""The ``shopbridge`` command line."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from shopbridge import __version__
from shopbridge.bootstrap import Hub, build_hub
from shopbridge.cli_finance import finance_app
from shopbridge.cli_links import links_app
from shopbridge.config import ConfigError, Settings, load_settings
from shopbridge.logs import configure_logging
from shopbridge.sandbox.cli import sandbox_app
from shopbridge.services.access import OPERATORS, OWNERS
from shopbridge.store.db import transaction
from shopbridge.store.secrets import SecretKeyMissing
from shopbridge.store.tables import Job, JobAttempt

app = typer.Typer(help="shopbridge: TikTok Shop, your store and your POS in lockstep.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
jobs_app = typer.Typer(help="Inspect jobs; retry and replay dead letters.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (results as a table and as JSON).", no_args_is_help=True)
connect_app = typer.Typer(help="Connect a channel account.", no_args_is_help=True)
orders_app = typer.Typer(help="The order queue: list, show, blocked orders, retry.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
stock_app = typer.Typer(help="Stock: show a SKU, adjust it, import movements or counts.", no_args_is_help=True)
cancellations_app = typer.Typer(help="Buyers' cancellation requests: list, approve, reject.", no_args_is_help=True)
returns_app = typer.Typer(help="Returns: store returns and their refunds; buyers' return requests.",
                          no_args_is_help=True)  # fmt: skip
app.add_typer(config_app, name="config")
app.add_typer(connect_app, name="connect")
app.add_typer(orders_app, name="orders")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(stock_app, name="stock")
app.add_typer(cancellations_app, name="cancellations")
app.add_typer(returns_app, name="returns")
drift_app = typer.Typer(help="Status drift: the hub against every channel, per order.", no_args_is_help=True)
app.add_typer(drift_app, name="drift")
app.add_typer(links_app, name="links")
app.add_typer(finance_app, name="finance")
app.add_typer(jobs_app, name="jobs")
app.add_typer(bench_app, name="bench")
app.add_typer(sandbox_app, name="sandbox")

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


# --- who acts ----------------------------------------------------------------------------------------------

_acting_as: dict[str, str | None] = {"email": None}


@app.callback()
def root(
    acting_as: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar="SHOPBRIDGE_AS",
            metavar="EMAIL",
            help="Make changes as this hub user: refused unless they are enabled and their role allows the "
            "change (as in the dashboard and the API), and audited under their e-mail.",
        ),
    ] = None,
) -> None:
    """shopbridge: TikTok Shop, your store and your POS in lockstep."""
    _acting_as["email"] = acting_as


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without USER, say)
        return "unknown"


def acting(built: Hub, roles: tuple[str, ...], named: str | None = None) -> str:
    """Who makes a change from the command line, for the audit log. With ``--as EMAIL`` (or a command's own
    ``--as``), that user, whose role must be one of ``roles``. Without, the install's operator (who holds its
    database and secret key, so every power already), audited as ``cli:<login name>``, unless the hub is set to
    require a user (``SHOPBRIDGE_CLI_REQUIRES_USER``)."""
    from shopbridge.services.access import AccessError, acting_user

    email = named or _acting_as["email"]
    if email is None:
        if built.settings.cli_requires_user:
            fail(f"this hub requires changes to name a user: shopbridge --as EMAIL ... (a role of: {', '.join(roles)})")
        return f"cli:{_os_user()}"
    try:
        with built.sessions() as session:
            return acting_user(session, email, roles)
    except AccessError as error:
        fail(str(error))


def settings(**overrides: object) -> Settings:
    try:
        loaded = load_settings(**{key: value for key, value in overrides.items() if value is not None})
    except ConfigError as error:
        fail(str(error))
    configure_logging(loaded.log_level, loaded.log_format)
    return loaded


def hub(loaded: Settings | None = None) -> Hub:
    try:
        return build_hub(loaded or settings())
    except SecretKeyMissing as error:
        fail(str(error))


def ready_hub(loaded: Settings | None = None) -> Hub:
    """A hub whose database schema is current (migrating an embedded database on first use)."""
    built = hub(loaded)
    from shopbridge.store import migrations

    if not migrations.is_current(built.engine):
        if not built.settings.is_embedded_database:
            fail("the database schema is not current: run `shopbridge migrate` first")
        built.migrate()
    return built


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"shopbridge {__version__}")


@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Print the effective configuration, secrets masked."""
    shown = settings().masked()
    if as_json:
        console.print_json(json.dumps(shown, default=str))
        return
    table = Table("setting", "value", title="effective configuration")
    for key, value in shown.items():
        table.add_row(f"SHOPBRIDGE_{key.upper()}", "" if value is None else str(value))
    console.print(table)


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest revision (safe to run again)."""
    built = hub()
    before, after = built.migrate()
    if before == after:
        console.print(f"database already at revision {after}")
    else:
        console.print(f"database migrated from {before or 'empty'} to {after}")
    built.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker threads (0: a web-only replica).")] = None,
) -> None:
    """Run the web app, and its workers and scheduler in a worker process beside it (see worker_process); with
    SHOPBRIDGE_OPS_PORT the metrics and API docs on a listener of their own."""
    from shopbridge.web import serving

    loaded = settings(host=host, port=port, workers=workers)
    if loaded.ops_port is not None and loaded.ops_port == loaded.port:
        fail(f"SHOPBRIDGE_OPS_PORT: expected a port other than the public one, got {loaded.ops_port}")
    built = ready_hub(loaded)
    where = "in a worker process" if loaded.worker_process else "as threads"
    console.print(f"shopbridge serving on http://{loaded.host}:{loaded.port} with {loaded.workers} worker(s) {where}")
    if loaded.ops_port is not None:
        console.print(f"metrics, API docs and health: ops on http://{loaded.ops_host}:{loaded.ops_port}")
    serving.serve(built, host=loaded.host, port=loaded.port, workers=loaded.workers, ops_host=loaded.ops_host,
                  ops_port=loaded.ops_port)  # fmt: skip


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker threads in this process.")] = 1,
) -> None:
    """Run workers without the web app (many such processes can share one PostgreSQL queue)."""
    import signal
    import threading

    built = ready_hub()
    pool = built.start_workers(concurrency)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    console.print(f"{concurrency} worker(s) running; Ctrl-C stops them")
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    pool.stop()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        # As uvicorn binds: connections of a demo stopped a moment ago (TIME_WAIT) do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the hub.")] = 8000,
    sandbox_port: Annotated[int, typer.Option(help="Port for the TikTok sandbox.")] = 8101,
    store_port: Annotated[int, typer.Option(help="Port for the Shopify sandbox (the store).")] = 8102,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    rate: Annotated[float, typer.Option(min=0.01, max=50, help="Buyer orders per second.")] = 0.5,
) -> None:
    """The seeded TikTok sandbox, the Shopify sandbox as the store, and the hub on the embedded database, connected,
    with buyers placing orders and the store fulfilling them."""
    from shopbridge.demo.run import run_demo, stop_leftover_sandbox

    loaded = settings()
    leftover = stop_leftover_sandbox(loaded.data_dir)  # a killed demo's, still holding its port
    if leftover is not None:
        console.print(f"stopped the TikTok sandbox (pid {leftover}) an earlier demo left running")
    for name, value in (("--port", port), ("--sandbox-port", sandbox_port), ("--store-port", store_port)):
        if not _port_free(value):
            fail(f"{name}: port {value} is already in use on 127.0.0.1; pass another one")
    run_demo(data_dir=loaded.data_dir, hub_port=port, sandbox_port=sandbox_port, store_port=store_port,
             duration=duration, console=console, orders_per_second=rate)  # fmt: skip


# --- jobs ----------------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str | None, typer.Option(help="pending, running, succeeded, dead or parked.")] = "dead",
    kind: Annotated[str | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List jobs, dead letters by default (`--state ''` for all)."""
    if state and state not in ("pending", "running", "succeeded", "dead", "parked"):
        fail(f"--state: expected pending, running, succeeded, dead or parked, got {state!r}")
    built = ready_hub()
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    table = Table("id", "kind", "state", "attempts", "due", "last error", title=f"jobs ({state or 'all'})")
    with built.sessions() as session:
        for job in session.scalars(query):
            table.add_row(str(job.id), job.kind, job.state, f"{job.attempts}/{job.max_attempts}",
                          job.due_at.isoformat(timespec="seconds"), (job.last_error or "")[:80])  # fmt: skip
    console.print(table)


@jobs_app.command("show")
def jobs_show(job_id: int) -> None:
    """Show a job with its payload and every attempt."""
    built = ready_hub()
    with built.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            fail(f"job {job_id} does not exist")
        console.print(f"[bold]job {job.id}[/bold] {job.kind}: {job.state}, attempt {job.attempts}/{job.max_attempts}")
        details = {
            "identity": job.identity_key,
            "account": job.channel_account_id,
            "due": job.due_at,
            "replay of": job.replay_of,
            "last error": job.last_error,
        }
        for label, value in details.items():
            if value is not None:
                console.print(f"  {label}: {value}")
        console.print_json(json.dumps(job.payload))
        attempts = Table("#", "worker", "started", "finished", "outcome", "class", "error", title="attempts")
        for attempt in session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.id)):
            attempts.add_row(
                str(attempt.attempt), attempt.worker, attempt.started_at.isoformat(timespec="seconds"),
                attempt.finished_at.isoformat(timespec="seconds"), attempt.outcome, attempt.error_class or "",
                f"{attempt.error_type or ''} {attempt.error_message or ''}".strip()[:100],
            )  # fmt: skip
        console.print(attempts)


@jobs_app.command("retry")
def jobs_retry(job_id: int) -> None:
    """Give a dead job a fresh set of attempts."""
    from shopbridge.services import exceptions

    built = ready_hub()
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            exceptions.retry_job(session, job_id, now=built.clock.now(), actor=actor)
    except exceptions.NotActionable as error:
        fail(str(error))
    console.print(f"job {job_id} is pending again")


@jobs_app.command("replay")
def jobs_replay(job_id: int) -> None:
    """Run a finished job's work again as a new job."""
    from shopbridge.services import exceptions

    built = ready_hub()
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            new_id = exceptions.replay_job(session, job_id, now=built.clock.now(), actor=actor)
    except exceptions.NotActionable as error:
        fail(str(error))
    console.print(f"job {job_id} replayed as job {new_id}")


# --- channels --------------------------------------------------------------------------------------------


def _connect(channel: str, values: dict[str, str]) -> None:
    """Connect through the channel's port, as the dashboard's connect form does (services/connections.connect)."""
    from shopbridge.channels.port import ConnectRefused
    from shopbridge.services import connections

    built = ready_hub()
    actor = acting(built, OWNERS)
    port = built.channels.get(channel)
    if port is None:
        fail(f"no channel {channel!r} on this hub")
    try:
        connecting = connections.connect(built.sessions, port, values, now=built.clock.now(), actor=actor)
    except ConnectRefused as error:
        fail(str(error))
    if not built.settings.public_url:
        errors.print("warning: SHOPBRIDGE_PUBLIC_URL is not set, so no webhooks are subscribed (poll only)")
    if connecting.redirect_to:
        console.print(connecting.message[:1].upper() + connecting.message[1:] + ":")
        console.print(connecting.redirect_to, soft_wrap=True, highlight=False)
    else:
        console.print(connecting.message, highlight=False)


@connect_app.command("tiktok")
def connect_tiktok() -> None:
    """Print the link a seller opens to authorize the app; TikTok then calls back /connect/tiktok/callback."""
    _connect("tiktok", {})


StockMaster = Annotated[
    Literal["hub", "shopify"],
    typer.Option(help="hub: the hub's stock is written to the store; shopify: the store's stock is mirrored."),
]


@connect_app.command("shopify")
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
    _connect("shopify", {"shop": shop, "access_token": token or "", "webhook_secret": webhook_secret or "",
                         "stock_master": stock_master})  # fmt: skip


@connect_app.command("pos")
def connect_pos(
    base_url: Annotated[str, typer.Option(help="The POS API's base URL, e.g. https://pos.example.com/v1.")],
    account: Annotated[str, typer.Option(help="The account id the POS knows the merchant by (X-POS-Account).")],
    secret: Annotated[
        str, typer.Option(envvar="SHOPBRIDGE_POS_SECRET", help="The shared secret (at least 32 characters).")
    ],
    location_map: Annotated[
        str, typer.Option(help="pos-location=HUB-CODE pairs, comma-separated (others get a hub location each).")
    ] = "",
    priorities: Annotated[str, typer.Option(help="POS location ids, best first, for routing orders.")] = "",
) -> None:
    """Connect a POS speaking the POS protocol (docs/pos-protocol.md): its stock is mirrored, it fulfils released
    orders at its stores, and its returns are refunded on the orders' channels."""
    _connect("pos", {"base_url": base_url, "account": account, "secret": secret, "location_map": location_map,
                     "priorities": priorities})  # fmt: skip


# --- orders ----------------------------------------------------------------------------------------------


def _orders_table(title: str, orders: list[dict[str, object]]) -> Table:
    table = Table("id", "channel", "external id", "status", "channel status", "total", "blocked", "released",
                  title=title)  # fmt: skip
    for order in orders:
        blocked = order["blocked"]
        table.add_row(
            str(order["id"]), str(order["channel_label"]), str(order["external_id"]), str(order["status"]),
            str(order["channel_status"]), f"{order['total']} {order['currency']}",
            f"{blocked['reason']}: {blocked['message']}" if isinstance(blocked, dict) else "",
            "yes" if order["released_at"] else "",
        )  # fmt: skip
    return table


@orders_app.command("list")
def orders_list(
    status: Annotated[str | None, typer.Option(help="Normalized status, e.g. awaiting_shipment.")] = None,
    channel: Annotated[str | None, typer.Option(help="tiktok, shopify, pos, manual ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """The newest orders across channels."""
    from shopbridge.services import order_views

    built = ready_hub()
    with built.sessions() as session:
        orders = order_views.recent_orders(
            session, order_views.OrderFilter(channel=channel, status=status), limit=limit
        )
    console.print(_orders_table("orders, newest first", orders))


@orders_app.command("blocked")
def orders_blocked() -> None:
    """Orders that cannot be synced, with the reason to fix before `orders retry`."""
    from shopbridge.services import order_views

    built = ready_hub()
    with built.sessions() as session:
        orders = order_views.recent_orders(session, order_views.OrderFilter(blocked=True), limit=500)
    console.print(_orders_table("blocked orders", orders))


@orders_app.command("show")
def orders_show(order_id: int) -> None:
    """One order with its lines and status history."""
    from shopbridge.services import order_views

    built = ready_hub()
    with built.sessions() as session:
        try:
            detail = order_views.order_detail(session, order_id)
        except order_views.OrderNotFound as error:
            fail(str(error))
    console.print_json(json.dumps(detail))


@orders_app.command("retry")
def orders_retry(order_id: int) -> None:
    """Re-run an order's sync after fixing what blocked it."""
    from shopbridge.services import order_views

    built = ready_hub()
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            job_id = order_views.retry_order(session, order_id, built.resync_kinds, now=built.clock.now(), actor=actor)
    except order_views.OrderNotFound as error:
        fail(str(error))
    console.print(f"order {order_id} will be re-synced by job {job_id}")


@orders_app.command("cancel")
def orders_cancel(
    order_id: int,
    reason: Annotated[
        str, typer.Option(help="buyer, out_of_stock, fraud, declined, undeliverable, staff or other.")
    ] = "staff",
) -> None:
    """Cancel an order before it ships: at once for one entered in the hub, else by asking its channel."""
    from shopbridge.services import cancellations

    built = ready_hub()
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            done = cancellations.cancel_order(session, order_id, reason, actor=actor, now=built.clock.now(),
                                              cancelling_channels=built.cancelling_channels)  # fmt: skip
    except cancellations.CancellationError as error:
        fail(str(error))
    console.print(done.message)


@orders_app.command("delivered")
def orders_delivered(
    order_id: int,
    at: Annotated[
        str | None,
        typer.Option(metavar="YYYY-MM-DDTHH:MM", help="When it was delivered, in the hub's timezone. Default: now."),
    ] = None,
) -> None:
    """Mark an order entered in the hub delivered, on the merchant's or the courier's word: no channel says so for
    these orders (a TikTok or store order's own channel does)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from shopbridge.services import manual_orders

    built = ready_hub()
    zone = built.settings.timezone
    try:
        when = datetime.strptime(at, "%Y-%m-%dT%H:%M").replace(tzinfo=ZoneInfo(zone)) if at is not None else None
    except ValueError:
        fail(f"--at: expected YYYY-MM-DDTHH:MM in the hub's timezone ({zone}), got {at!r}")
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            done = manual_orders.mark_delivered(session, order_id, actor=actor, now=built.clock.now(), at=when)
    except manual_orders.DeliveryRefused as error:
        fail(str(error))
    console.print(done.message)


# --- access ----------------------------------------------------------------------------------------------


def _dashboard_url(built: Hub) -> str:
    return (built.settings.public_url or f"http://127.0.0.1:{built.settings.port}").rstrip("/")


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[str, typer.Option(help="owner, ops, finance, support or viewer.")] = "viewer",
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the user's password from standard input.")
    ] = False,
) -> None:
    """Add a user and print a first-time sign-in link (or set the password read from stdin)."""
    from shopbridge.services.access import AccessError, add_user, create_sign_in_link, set_password

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    built = ready_hub()
    now, actor = built.clock.now(), acting(built, OWNERS)
    try:
        with transaction(built.sessions) as session:
            user = add_user(session, email, role, display_name=name, now=now, actor=actor)
            if password is not None:
                set_password(session, user.email, password, now=now, actor=actor)
                link = None
            else:
                link = create_sign_in_link(session, user.email, now=now, actor=actor)
    except AccessError as error:
        fail(str(error))
    console.print(f"user {user.email} added as {role}")
    if link:
        console.print(f"first sign-in (once, within 72 hours): {_dashboard_url(built)}/sign-in/link/{link}",
                      soft_wrap=True)  # fmt: skip


@users_app.command("link")
def users_link(email: str) -> None:
    """Print a one-time sign-in link with which the user sets a (new) password."""
    from shopbridge.services.access import AccessError, create_sign_in_link

    built = ready_hub()
    actor = acting(built, OWNERS)
    try:
        with transaction(built.sessions) as session:
            link = create_sign_in_link(session, email, now=built.clock.now(), actor=actor)
    except AccessError as error:
        fail(str(error))
    console.print(f"{_dashboard_url(built)}/sign-in/link/{link}", soft_wrap=True)


@users_app.command("list")
def users_list() -> None:
    """Every user with their role and whether they are disabled."""
    from shopbridge.services.access import list_users

    built = ready_hub()
    with built.sessions() as session:
        users = list_users(session)
    table = Table("id", "e-mail", "name", "role", "password", "disabled", title="Users")
    for user in users:
        table.add_row(str(user["id"]), str(user["email"]), str(user["name"]), str(user["role"]),
                      "set" if user["has_password"] else "not yet", "yes" if user["disabled"] else "")  # fmt: skip
    console.print(table)


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Disable a user: their browser sessions end and their API tokens are refused at once."""
    from shopbridge.services.access import AccessError, disable_user

    built = ready_hub()
    actor = acting(built, OWNERS)
    try:
        with transaction(built.sessions) as session:
            disable_user(session, email, now=built.clock.now(), actor=actor)
    except AccessError as error:
        fail(str(error))
    console.print(f"user {email} disabled")


@tokens_app.command("create")
def tokens_create(
    email: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, max=3650, help="Refused after this many days.")
    ] = None,
) -> None:
    """Issue an API token for a user; it is printed once and stored only as a hash."""
    from shopbridge.services.access import AccessError, issue_token

    built = ready_hub()
    actor = acting(built, OWNERS)
    now = built.clock.now()
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    try:
        with transaction(built.sessions) as session:
            token = issue_token(session, email, name, now=now, expires_at=expires, actor=actor)
    except AccessError as error:
        fail(str(error))
    console.print(token, soft_wrap=True)


@tokens_app.command("list")
def tokens_list(email: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None) -> None:
    """API tokens (never their values): owner, name, when used, expiry, revocation."""
    from shopbridge.services.access import list_tokens

    built = ready_hub()
    with built.sessions() as session:
        tokens = list_tokens(session, email=email)
    table = Table("id", "user", "name", "created", "last used", "expires", "revoked", title="API tokens")
    for token in tokens:
        table.add_row(*(str(token[key] or "") for key in ("id", "user", "name", "created_at", "last_used_at",
                                                          "expires_at", "revoked_at")))  # fmt: skip
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke an API token: it is refused from the next request on."""
    from shopbridge.services.access import AccessError, revoke_token

    built = ready_hub()
    actor = acting(built, OWNERS)
    try:
        with transaction(built.sessions) as session:
            revoke_token(session, token_id, now=built.clock.now(), actor=actor)
    except AccessError as error:
        fail(str(error))
    console.print(f"token {token_id} revoked")


# --- stock -----------------------------------------------------------------------------------------------

Origin = Annotated[
    Literal["hub", "external"], typer.Option(help="hub, or external for a master system the hub mirrors.")
]

ImportMode = Annotated[
    Literal["movements", "counts"],
    typer.Option(
        help="movements: sku,location,kind,quantity,idempotency_key[,reference]; "
        "counts: sku,location,on_hand[,idempotency_key], which set on-hand absolutely."
    ),
]


def _print_stock(shown: dict[str, Any]) -> None:
    console.print(f"{shown['sku']}: {shown['on_hand']} on hand, {shown['reserved']} reserved "
                  f"(source of truth: {shown['source_of_truth']})", highlight=False)  # fmt: skip
    table = Table("location", "on hand", "reserved", "free")
    for row in shown["locations"]:
        table.add_row(row["location"], str(row["on_hand"]), str(row["reserved"]), str(row["free"]))
    console.print(table)
    if shown.get("channels"):
        channels = Table("channel", "listing", "should show", "held back", "last confirmed", "versions", "error")
        for row in shown["channels"]:
            channels.add_row(
                f"{row['channel']} #{row['channel_account_id']}", row["external_sku_id"], str(row["available"]),
                str(row["held_back"]), str(row["pushed_quantity"]),
                f"{row['acked_stock_version']}/{row['stock_version']}", row["push_error"] or "",
            )  # fmt: skip
        console.print(channels)


@stock_app.command("show")
def stock_show(sku: str) -> None:
    """A SKU's stock per location."""
    from shopbridge.services import stock

    built = ready_hub()
    with built.sessions() as session:
        try:
            shown = stock.stock_of(session, sku, now=built.clock.now())
        except stock.UnknownSku as error:
            fail(str(error))
    _print_stock(shown)


@stock_app.command("adjust")
def stock_adjust(
    sku: str,
    location: Annotated[str, typer.Option(help="The location code, e.g. MAIN.")],
    by: Annotated[
        int, typer.Option(help="Units to add; negative to take away (at most 1,000,000, and not below zero on hand).")
    ],
    reason: Annotated[str | None, typer.Option(help="Why; kept as the movement's reference.")] = None,
    origin: Origin = "hub",
) -> None:
    """Correct a SKU's on-hand at a location by a number of units; one that would leave it below zero is refused."""
    import uuid

    from shopbridge.services import audit, stock

    if reason is not None and len(reason) > 200:
        fail(f"--reason: at most 200 characters, got {len(reason)}")
    built = ready_hub()
    actor = acting(built, OPERATORS)
    key = f"cli-adjust:{uuid.uuid4()}"
    try:
        with transaction(built.sessions) as session:
            stock.apply_external_movement(
                session, sku=sku, location_code=location, kind="adjustment", quantity=by, idempotency_key=key,
                origin=origin, now=built.clock.now(), reference=reason,
            )  # fmt: skip
            audit.record(session, actor, "stock.movement", "sku", sku, now=built.clock.now(),
                         after={"location": location, "kind": "adjustment", "quantity": by, "idempotency_key": key,
                                "origin": origin})  # fmt: skip
            shown = stock.stock_of(session, sku, now=built.clock.now())
    except stock.StockError as error:
        fail(str(error))
    console.print(f"{sku} at {location} adjusted by {by:+d}")
    _print_stock(shown)


@stock_app.command("import")
def stock_import(
    file: Annotated[Path, typer.Argument(help="A CSV file whose first line names the columns.")],
    origin: Origin = "hub",
    mode: ImportMode = "movements",
    reference: Annotated[
        str | None, typer.Option(help="Names this import: kept on rows without one, and part of counts' keys.")
    ] = None,
) -> None:
    """Apply a CSV of movements or counts in one transaction: every row, or none if any row is bad."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from shopbridge.services import stock, stock_counts

    try:
        with file.open(newline="", encoding="utf-8-sig") as lines:
            parsed = stock_counts.read_csv(lines, mode)
    except UnicodeDecodeError as error:
        fail(f"{file}: not UTF-8 text ({error})")
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror or error}")
    built = ready_hub()
    actor = acting(built, OPERATORS)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"applying {file.name}", total=parsed.rows)
            with transaction(built.sessions) as session:
                summary = stock_counts.import_csv(
                    session, parsed, origin=origin, now=built.clock.now(), reference=reference, actor=actor,
                    name=file.name, progress=lambda done, total: progress.update(task, completed=done, total=total),
                )  # fmt: skip
    except stock_counts.RowsRefused as refused:
        for problem in refused.problems:
            errors.print(str(problem), markup=False, highlight=False)
        fail(f"{file}: {len(refused.problems)} bad row(s); nothing was applied")
    except stock.StockError as error:
        fail(str(error))
    console.print(f"{file.name}: {parsed.rows} row(s): {summary.applied} applied, {summary.already_applied} already "
                  f"applied, {summary.unchanged} unchanged")  # fmt: skip


# --- cancellations ---------------------------------------------------------------------------------------

Actor = Annotated[
    str | None, typer.Option("--as", help="The e-mail of the owner or ops user answering (kept on the request).")
]


@cancellations_app.command("list")
def cancellations_list(
    state: Annotated[
        str | None, typer.Option(help="pending, approving, rejecting, approved, rejected or closed.")
    ] = "pending",
) -> None:
    """Buyers' cancellation requests, those due soonest first (pending by default, `--state ''` for all)."""
    from shopbridge.services import cancellations

    built = ready_hub()
    try:
        with built.sessions() as session:
            requests = cancellations.list_requests(session, state or None)
    except cancellations.CancellationError as error:
        fail(str(error))
    table = Table("id", "channel", "order", "state", "reason", "respond by", "error",
                  title=f"cancellation requests ({state or 'all'})")  # fmt: skip
    for request in requests:
        table.add_row(str(request["id"]), str(request["channel_label"]), str(request["external_order_id"]),
                      str(request["state"]), str(request["reason"] or ""), str(request["respond_by"] or ""),
                      str(request["error"] or "")[:80])  # fmt: skip
    console.print(table)


def _answer_cancellation(request_id: int, approve: bool, email: str | None, reason: str | None) -> None:
    from shopbridge.services import cancellations

    built = ready_hub()
    actor = acting(built, OPERATORS, email)
    try:
        with transaction(built.sessions) as session:
            cancellations.answer(session, request_id, approve, actor=actor, now=built.clock.now(), reason=reason)
    except cancellations.CancellationError as error:
        fail(str(error))
    console.print(f"cancellation request {request_id} is {'approving' if approve else 'rejecting'}: the channel is "
                  "told next")  # fmt: skip


@cancellations_app.command("approve")
def cancellations_approve(request_id: int, actor: Actor = None) -> None:
    """Approve a buyer's cancellation request."""
    _answer_cancellation(request_id, True, actor, None)


@cancellations_app.command("reject")
def cancellations_reject(
    request_id: int,
    reason: Annotated[
        str | None, typer.Option(help="A reject reason of the channel (name or text), or a comment.")
    ] = None,
    actor: Actor = None,
) -> None:
    """Reject a buyer's cancellation request."""
    _answer_cancellation(request_id, False, actor, reason)


# --- returns ---------------------------------------------------------------------------------------------


@returns_app.command("list")
def returns_list(
    state: Annotated[str | None, typer.Option(help="unmatched, refunding, refunded or refused.")] = None,
) -> None:
    """Returns stores took back, the newest first, with their refunds on the order's channel."""
    from shopbridge.services import return_requests

    built = ready_hub()
    try:
        with built.sessions() as session:
            taken = return_requests.list_returns(session, state or None)
    except return_requests.ReturnRequestError as error:
        fail(str(error))
    table = Table("id", "taken by", "return", "order", "lines", "state", "refund", "error",
                  title=f"store returns ({state or 'all'})")  # fmt: skip
    for row in taken:
        lines = ", ".join(f"{line['quantity']} {line['sku']}" for line in row["lines"])
        refund = " ".join(str(part) for part in (row["refund"], row["currency"], row["refund_external_id"]) if part)
        table.add_row(str(row["id"]), str(row["channel_label"]), str(row["external_id"]),
                      f"{row['order_channel_label'] or ''} {row['external_order_id'] or ''}".strip(), lines,
                      str(row["state"]), refund, str(row["error"] or "")[:80])  # fmt: skip
    console.print(table)


@returns_app.command("requests")
def returns_requests(
    state: Annotated[
        str | None, typer.Option(help="pending, approving, rejecting, approved, rejected or closed.")
    ] = "pending",
) -> None:
    """Buyers' return and refund requests, those due soonest first (pending by default, `--state ''` for all)."""
    from shopbridge.services import return_requests

    built = ready_hub()
    try:
        with built.sessions() as session:
            requests = return_requests.list_requests(session, state or None)
    except return_requests.ReturnRequestError as error:
        fail(str(error))
    table = Table("id", "channel", "order", "type", "state", "waits for", "refund", "reason", "respond by", "error",
                  title=f"return requests ({state or 'all'})")  # fmt: skip
    for request in requests:
        table.add_row(str(request["id"]), str(request["channel_label"]), str(request["external_order_id"]),
                      str(request["request_type"] or ""), str(request["state"]), str(request["next_action"] or ""),
                      " ".join(str(part) for part in (request["refund"], request["currency"]) if part),
                      str(request["reason"] or ""), str(request["respond_by"] or ""),
                      str(request["error"] or "")[:80])  # fmt: skip
    console.print(table)


def _answer_return(request_id: int, approve: bool, email: str | None, reason: str | None) -> None:
    from shopbridge.services import return_requests

    built = ready_hub()
    actor = acting(built, OPERATORS, email)
    try:
        with transaction(built.sessions) as session:
            return_requests.answer(session, request_id, approve, actor=actor, now=built.clock.now(), reason=reason)
    except return_requests.ReturnRequestError as error:
        fail(str(error))
    console.print(f"return request {request_id} is {'approving' if approve else 'rejecting'}: the channel is told "
                  "next")  # fmt: skip


@returns_app.command("approve")
def returns_approve(request_id: int, actor: Actor = None) -> None:
    """Approve a buyer's return or refund request (the step the channel waits for)."""
    _answer_return(request_id, True, actor, None)


@returns_app.command("reject")
def returns_reject(
    request_id: int,
    reason: Annotated[
        str | None, typer.Option(help="A reject reason of the channel (name or text), or a comment.")
    ] = None,
    actor: Actor = None,
) -> None:
    """Reject a buyer's return or refund request."""
    _answer_return(request_id, False, actor, reason)


@returns_app.command("retry")
def returns_retry(return_id: int, actor: Actor = None) -> None:
    """Ask the order's channel again for a refused refund of a store return, once its cause is fixed."""
    from shopbridge.services import returns

    built = ready_hub()
    who = acting(built, OPERATORS, actor)
    try:
        with transaction(built.sessions) as session:
            job_id = returns.retry_refund(session, return_id, now=built.clock.now(), actor=who)
    except returns.ReturnError as error:
        fail(str(error))
    console.print(f"return {return_id} will be refunded again by job {job_id}")


# --- status drift ----------------------------------------------------------------------------------------


@drift_app.command("status")
def drift_status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The drift rate over 24 hours, the newest checks and the open drift with who should act."""
    from shopbridge.services import drift

    built = ready_hub()
    with built.sessions() as session:
        shown = drift.summary(session, now=built.clock.now())
    if as_json:
        console.print_json(json.dumps(shown))
        return
    rate = shown["last_24h"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in rate["kinds"].items()) or "none"
    console.print(f"last 24 h: {rate['drifted']} of {rate['orders_checked']} orders compared drifted "
                  f"({rate['rate']:.2%}) in {rate['checks']} checks; {rate['repaired']} repaired; "
                  f"by kind: {kinds}")  # fmt: skip
    checks = Table("checked at", "account", "orders", "drifted", "repaired", "kinds", title="newest checks")
    for check in shown["checks"][:10]:
        checks.add_row(str(check["checked_at"]), str(check["account"]), str(check["orders_checked"]),
                       str(check["drifted"]), str(check["repaired"]),
                       ", ".join(f"{kind} {count}" for kind, count in check["kinds"].items()))  # fmt: skip
    console.print(checks)
    issues = Table("issue", "kind", "who acts", "order", "account", "message", title="open drift")
    for issue in shown["open"]:
        issues.add_row(str(issue["issue_id"]), str(issue["kind"]), str(issue["act"]),
                       str(issue["external_order_id"] or issue["order_id"] or ""), str(issue["account"] or ""),
                       str(issue["message"]))  # fmt: skip
    console.print(issues)


@drift_app.command("check")
def drift_check() -> None:
    """Check every account for status drift now (the workers run the checks)."""
    from shopbridge.services import drift

    built = ready_hub()
    actor = acting(built, OPERATORS)
    with transaction(built.sessions) as session:
        queued = drift.check_now(session, frozenset(built.registry.names()), now=built.clock.now(), actor=actor,
                                 settle_seconds=built.settings.drift_settle_seconds)  # fmt: skip
        shown = [f"{account.label} (job {job_id})" for account, job_id in queued]
    if not shown:
        fail("no connected account has a drift check")
    console.print(f"checking {', '.join(shown)}; `shopbridge drift status` shows what they find")


# --- benchmarks ----------------------------------------------------------------------------------------


@bench_app.command("engine")
def bench_engine(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="A short run (under 90 s).")] = False,
    database_url: Annotated[
        str | None, typer.Option(help="Also measure PostgreSQL (4 worker processes) at this URL.")
    ] = None,
) -> None:
    """Jobs claimed and completed per second, and inbox records per second."""
    from shopbridge.bench.engine import run_engine_benchmark

    results = run_engine_benchmark(quick=quick, database_url=database_url, console=console)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")


@bench_app.command("dashboard")
def bench_dashboard(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="Fewer requests per page (under 90 s).")] = False,
    database_url: Annotated[str | None, typer.Option(help="Also measure PostgreSQL at this URL.")] = None,
    orders: Annotated[int, typer.Option(min=100, max=5_000_000, help="Orders in the queue.")] = 100_000,
) -> None:
    """The queue and order pages over 100,000 orders: server time per page (p50, p95, p99)."""
    from shopbridge.bench.dashboard import run_dashboard_benchmark

    results = run_dashboard_benchmark(quick=quick, database_url=database_url, console=console, orders=orders)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")


@bench_app.command("orders")
def bench_orders(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="A short run (under 90 s).")] = False,
) -> None:
    """Order intake from the TikTok sandbox at 50 orders/s: time to visible, webhook ack, loss and duplicates."""
    from shopbridge.bench.orders import run_orders_benchmark

    results = run_orders_benchmark(quick=quick, console=console)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")


@bench_app.command("flash-sale")
def bench_flash_sale(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="40 s per mode, both modes side by side (under 90 s).")] = False,
    chart: Annotated[
        Path | None, typer.Option(help="Write the quantity-over-time chart (SVG) here; default: next to the JSON.")
    ] = None,
) -> None:
    """50 hot SKUs sell out on TikTok and in the store: oversold units, stock propagation, API calls and 429s,
    with the hub pushing on every change and every 60 s."""
    from shopbridge.bench.flash_sale import EngineMissing, run_flash_sale_benchmark

    chart_path = chart or (json_path.with_suffix(".svg") if json_path is not None else None)
    try:
        results = run_flash_sale_benchmark(quick=quick, console=console, chart_path=chart_path)
    except EngineMissing as error:
        fail(str(error))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")
    if chart_path is not None:
        console.print(f"chart written to {chart_path}")


@bench_app.command("store-loop")
def bench_store_loop(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="A short run (under 90 s).")] = False,
    plan: Annotated[
        Literal["standard", "advanced", "plus"], typer.Option(help="The store's Shopify plan: its API cost limit.")
    ] = "standard",
) -> None:
    """TikTok orders released to the store, fulfilled there and shipped on TikTok, with the store's own web orders and
    counter sales: latencies, losses, duplicates and throttling, clean and with faults on both channels."""
    from shopbridge.bench.store_loop import run_store_loop_benchmark

    results = run_store_loop_benchmark(quick=quick, console=console, plan=plan)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")


@bench_app.command("pos")
def bench_pos(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="A short run (under 90 s).")] = False,
) -> None:
    """Four POS stores' tills, associates and returns desks beside TikTok buyers, with status drift injected: till
    sale, shipment and return to TikTok latencies, oversold units, refunds doubled or missing, drift detected,
    clean and with faults on both channels and a store offline."""
    from shopbridge.bench.pos import run_pos_benchmark

    results = run_pos_benchmark(quick=quick, console=console)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")


@bench_app.command("finance")
def bench_finance(
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    quick: Annotated[bool, typer.Option(help="50,000 transactions instead of 1,000,000.")] = False,
    database_url: Annotated[str | None, typer.Option(help="Also measure PostgreSQL at this URL.")] = None,
    transactions: Annotated[
        int | None, typer.Option(min=2_000, max=10_000_000, help="Statement transactions (overrides --quick).")
    ] = None,
) -> None:
    """1,000,000 TikTok statement transactions imported and reconciled, with discrepancies of every kind injected:
    seconds, peak RSS, exceptions found against injected, and a re-import that must change nothing."""
    from shopbridge.bench.finance import run_finance_benchmark

    results = run_finance_benchmark(quick=quick, database_url=database_url, console=console,
                                    transactions=transactions)  # fmt: skip
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        console.print(f"results written to {json_path}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
