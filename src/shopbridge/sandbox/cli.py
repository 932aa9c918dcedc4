"""`shopbridge sandbox ...`: run the outside world locally."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import uvicorn

STDIN_FILENO = 0

sandbox_app = typer.Typer(
    help="Run local emulators of the outside world (TikTok Shop, Shopify, a POS).", no_args_is_help=True
)


@sandbox_app.callback()
def sandbox() -> None:
    """Run local emulators of the outside world."""
    # An explicit callback keeps each emulator a subcommand of its own.


@sandbox_app.command("tiktok")
def tiktok(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the Partner API, OAuth and /_sandbox/.")] = 8101,
    app_key: Annotated[str, typer.Option(help="The app key registered with the sandbox.")] = "sandbox_app_key",
    app_secret: Annotated[str, typer.Option(help="The app secret.")] = "sandbox_app_secret",  # noqa: S107
    service_id: Annotated[str, typer.Option(help="The service id used by /open/authorize.")] = "7000000000000000001",
    redirect_url: Annotated[
        str, typer.Option(help="Where /open/authorize redirects with the auth code.")
    ] = "http://127.0.0.1:8000/connect/tiktok/callback",
    state: Annotated[Path | None, typer.Option(help="SQLite state file (default: in memory).")] = None,
    seed: Annotated[str | None, typer.Option(help="'demo' seeds a shop with ~200 SKUs and some orders.")] = None,
    clock_speed: Annotated[float, typer.Option(help="Sandbox clock multiplier; 1.0 = real time.")] = 1.0,
    random_seed: Annotated[int | None, typer.Option(help="Make ids, audits and faults reproducible.")] = None,
    dispatcher_interval: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Seconds between passes applying due transitions and retries; a new webhook goes at once.",
        ),
    ] = 0.2,
    webhook_concurrency: Annotated[int, typer.Option(min=1, help="Webhook deliveries in flight at once.")] = 16,
    webhook_sender_process: Annotated[
        bool, typer.Option(help="Post webhooks from a process of their own, unslowed by the sandbox's API traffic.")
    ] = True,
    quiet: Annotated[bool, typer.Option(help="Log warnings only.")] = False,
    stop_on_stdin_eof: Annotated[
        bool,
        typer.Option(
            "--stop-on-stdin-eof",
            help="Stop when stdin closes: for a parent process running the sandbox beside it (`shopbridge demo`), "
            "whose end of the pipe closes however it ends, SIGKILL included.",
        ),
    ] = False,
) -> None:
    """Serve the TikTok Shop sandbox."""
    import uvicorn

    from .tiktok import SandboxClock, SandboxConfig, create_app

    config = SandboxConfig(
        app_key=app_key,
        app_secret=app_secret,
        service_id=service_id,
        redirect_url=redirect_url,
        state_path=state,
        seed=seed,
        clock=SandboxClock(speed=clock_speed),
        random_seed=random_seed,
        dispatcher_interval=dispatcher_interval,
        webhook_concurrency=webhook_concurrency,
        webhook_sender_process=webhook_sender_process,
    )
    typer.echo(f"TikTok Shop sandbox on http://{host}:{port}  (control API: http://{host}:{port}/docs)")
    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port,
                                           log_level="warning" if quiet else "info", access_log=not quiet))  # fmt: skip
    if stop_on_stdin_eof:
        _stop_when_stdin_closes(server)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is how it is stopped
        server.run()
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: it could not start (its error is above)


@sandbox_app.command("shopify")
def shopify(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the Admin API, OAuth and /_sandbox/.")] = 8102,
    state: Annotated[Path | None, typer.Option(help="SQLite state file (default: in memory).")] = None,
    seed: Annotated[
        str | None, typer.Option(help="'demo' seeds a store carrying the TikTok demo's SKUs, two locations.")
    ] = None,
    shop_domain: Annotated[str, typer.Option(help="The shop's myshopify domain.")] = "sandbox-store.myshopify.com",
    access_token: Annotated[
        str, typer.Option(help="The custom app's Admin API token (X-Shopify-Access-Token).")
    ] = "shpat_sandbox_token",  # noqa: S107
    api_key: Annotated[str, typer.Option(help="The app's API key (OAuth client_id).")] = "sandbox_api_key",
    api_secret: Annotated[
        str, typer.Option(help="The app's API secret: OAuth client_secret and webhook HMAC key.")
    ] = "sandbox_api_secret",  # noqa: S107
    redirect_url: Annotated[
        str, typer.Option(help="Where /admin/oauth/authorize redirects (same scheme and host accepted).")
    ] = "http://127.0.0.1:8000/connect/shopify/callback",
    random_seed: Annotated[int | None, typer.Option(help="Make ids, traffic and faults reproducible.")] = None,
    traffic: Annotated[
        bool, typer.Option(help="Simulate the store: web orders, in-store sales, staff fulfilment.")
    ] = False,
    webhook_sender_process: Annotated[
        bool, typer.Option(help="Post webhooks from a process of their own, unslowed by the sandbox's API traffic.")
    ] = True,
    quiet: Annotated[bool, typer.Option(help="Log warnings only.")] = False,
    stop_on_stdin_eof: Annotated[
        bool,
        typer.Option(
            "--stop-on-stdin-eof",
            help="Stop when stdin closes: for a parent process running the sandbox beside it, whose end of the "
            "pipe closes however it ends, SIGKILL included.",
        ),
    ] = False,
) -> None:
    """Serve the Shopify sandbox (GraphQL Admin API, OAuth, webhooks)."""
    import uvicorn

    from .shopify import ShopifySandboxConfig, create_app

    config = ShopifySandboxConfig(
        shop_domain=shop_domain,
        access_token=access_token,
        api_key=api_key,
        api_secret=api_secret,
        redirect_url=redirect_url,
        state_path=state,
        seed=seed,
        random_seed=random_seed,
        traffic=traffic,
        webhook_sender_process=webhook_sender_process,
    )
    typer.echo(f"Shopify sandbox on http://{host}:{port}  (control API: http://{host}:{port}/docs)")
    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port,
                                           log_level="warning" if quiet else "info", access_log=not quiet))  # fmt: skip
    if stop_on_stdin_eof:
        _stop_when_stdin_closes(server)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise typer.Exit(3)


@sandbox_app.command("pos")
def pos(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the POS API (/v1) and /_sandbox/.")] = 8103,
    account: Annotated[str, typer.Option(help="The POS account id (X-POS-Account).")] = "pos-sandbox",
    secret: Annotated[
        str, typer.Option(help="The shared secret, at least 32 characters: signs events, checks API calls.")
    ] = "pos_sandbox_secret_0123456789abcdef",  # noqa: S107
    hub_url: Annotated[
        str, typer.Option(help="Where events are posted (the hub's POST /hooks/pos).")
    ] = "http://127.0.0.1:8000/hooks/pos",
    seed: Annotated[str | None, typer.Option(help="'demo' stocks four stores with the TikTok demo's SKUs.")] = None,
    random_seed: Annotated[int | None, typer.Option(help="Make ids, traffic and faults reproducible.")] = None,
    traffic: Annotated[
        bool, typer.Option(help="Simulate the stores: till sales, associates shipping tasks, returns, receipts.")
    ] = False,
    event_sender_process: Annotated[
        bool, typer.Option(help="Post events from a process of their own, unslowed by the sandbox's API traffic.")
    ] = True,
    quiet: Annotated[bool, typer.Option(help="Log warnings only.")] = False,
    stop_on_stdin_eof: Annotated[
        bool,
        typer.Option(
            "--stop-on-stdin-eof",
            help="Stop when stdin closes: for a parent process running the sandbox beside it, whose end of the "
            "pipe closes however it ends, SIGKILL included.",
        ),
    ] = False,
) -> None:
    """Serve the POS sandbox (the POS protocol's API under /v1, signed events to the hub)."""
    import uvicorn

    from .pos import PosSandboxConfig, create_app

    try:
        config = PosSandboxConfig(
            account=account,
            secret=secret,
            hub_event_url=hub_url,
            seed=seed,
            random_seed=random_seed,
            traffic=traffic,
            event_sender_process=event_sender_process,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"POS sandbox on http://{host}:{port}/v1  (control API: http://{host}:{port}/docs)")
    server = uvicorn.Server(uvicorn.Config(create_app(config), host=host, port=port,
                                           log_level="warning" if quiet else "info", access_log=not quiet))  # fmt: skip
    if stop_on_stdin_eof:
        _stop_when_stdin_closes(server)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise typer.Exit(3)


def _stop_when_stdin_closes(server: uvicorn.Server) -> None:
    """Shut ``server`` down as on Ctrl-C (its requests finish, the sandbox saves its state and stops its webhook
    sender) once stdin reaches its end. Nothing is written to the pipe: it closes when the parent stops the sandbox
    or dies. (It may close before uvicorn has started: the server then stops right after starting.)"""

    def watch() -> None:
        # The descriptor itself, not sys.stdin: a daemon thread blocked in sys.stdin's reader holds that reader's
        # lock, which the interpreter then cannot take at exit (a fatal error once the server stopped otherwise).
        try:
            while os.read(STDIN_FILENO, 4096):
                pass
        except OSError:
            pass  # no stdin to watch is a stdin that closed
        server.should_exit = True

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    sandbox_app()
