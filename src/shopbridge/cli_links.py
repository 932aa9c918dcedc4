"""`shopbridge links`: which channel listing sells which hub SKU, the SKU problems to settle, link and unlink by hand.
Added to the main command by cli.py (``app.add_typer(links_app, name="links")``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

links_app = typer.Typer(help="Channel listings and the hub SKUs they sell: problems, link, unlink.",
                        no_args_is_help=True)  # fmt: skip


def _listings_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("account", "listing", "seller SKU", "status", "link", "hub SKU", title="channel listings")
    for row in rows:
        table.add_row(f"{row['account']} #{row['account_id']}", row["external_sku_id"], row["seller_sku"] or "",
                      row["status"], row["link"], row["sku"] or "")  # fmt: skip
    return table


@links_app.command("list")
def links_list(
    problems: Annotated[bool, typer.Option("--problems", help="The SKU problems to settle instead.")] = False,
    account: Annotated[int | None, typer.Option(help="Only this channel account's listings.")] = None,
    state: Annotated[str | None, typer.Option(help="auto, manual, unlinked or not_linked.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The listings with their link, or (--problems) what keeps SKUs from linking, with what to do."""
    from shopbridge.cli import console, fail, ready_hub
    from shopbridge.services import links

    built = ready_hub()
    with built.sessions() as session:
        try:
            shown = links.problems(session) if problems else links.listings(session, account, state)
        except links.LinkError as error:
            fail(str(error))
    if as_json:
        console.print_json(json.dumps(shown))
    elif not problems:
        console.print(_listings_table(shown))
    elif not shown:
        console.print("no link problems")
    else:
        table = Table("reason", "SKU", "accounts", "what to do", title="link problems")
        for problem in shown:
            accounts = ", ".join(f"{account['label']} #{account['id']}" for account in problem["accounts"])
            table.add_row(problem["reason"], problem["sku"] or "", accounts, problem["message"])
        console.print(table)


@links_app.command("link")
def links_link(account_id: int, external_sku_id: str, sku: str) -> None:
    """Link a listing by hand to the hub's SKU; later imports keep the link."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.services import links
    from shopbridge.services.access import OPERATORS
    from shopbridge.store.db import transaction

    built = ready_hub()
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            links.link(session, account_id, external_sku_id, sku, now=built.clock.now(), actor=actor)
    except links.LinkError as error:
        fail(str(error))
    console.print(f"listing {external_sku_id} of account {account_id} now sells {sku}", highlight=False)


@links_app.command("unlink")
def links_unlink(account_id: int, external_sku_id: str) -> None:
    """Keep a listing apart from every hub SKU (its stock is no longer pushed); later imports keep it so."""
    from shopbridge.cli import acting, console, fail, ready_hub
    from shopbridge.services import links
    from shopbridge.services.access import OPERATORS
    from shopbridge.store.db import transaction

    built = ready_hub()
    actor = acting(built, OPERATORS)
    try:
        with transaction(built.sessions) as session:
            links.unlink(session, account_id, external_sku_id, now=built.clock.now(), actor=actor)
    except links.LinkError as error:
        fail(str(error))
    console.print(f"listing {external_sku_id} of account {account_id} is unlinked", highlight=False)
