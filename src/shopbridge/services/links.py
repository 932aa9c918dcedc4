"""Which channel listing sells which hub variant: the links by SKU (domain/linking.py) kept on the listings, the
problems a person has to settle, and the manual link and unlink. The same for every channel: a channel's catalogue
import stores its listings, then calls ``relink`` for its account."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shopbridge.domain.linking import AUTO, LINKS, MANUAL, UNLINKED, Linking, LinkProblem, Listing, link_by_sku
from shopbridge.services import audit
from shopbridge.services.availability import mark_dirty
from shopbridge.store.sync_issues import raise_issue, resolve_issue
from shopbridge.store.tables import ChannelAccount, ChannelListing, Variant

ISSUE_KIND = "link_problems"
GONE = "deleted"  # the status of a listing its channel no longer has: it links to nothing
NOT_LINKED = "not_linked"  # a listing state beside the link modes: auto, but without a variant
STATES = (*LINKS, NOT_LINKED)


class LinkError(ValueError):
    """A link or unlink that cannot be made; the message says why."""


class UnknownListing(LinkError, LookupError):
    pass


class UnknownSku(LinkError, LookupError):
    pass


class VariantTaken(LinkError):
    pass


def issue_fingerprint(account_id: int) -> str:
    return f"{ISSUE_KIND}:{account_id}"


@dataclass(frozen=True)
class Relinked:
    linked: set[int]  # variants that gained a listing (their stock is to be pushed there)
    problems: list[LinkProblem]


def _labels(session: Session) -> dict[int, str]:
    """The accounts compared: every one not disconnected, by label."""
    return dict(session.execute(select(ChannelAccount.id, ChannelAccount.label)
                                .where(ChannelAccount.status != "disconnected")).all())  # fmt: skip


def _listings(session: Session, account_ids: Collection[int]) -> list[ChannelListing]:
    return list(session.scalars(select(ChannelListing).where(ChannelListing.channel_account_id.in_(list(account_ids)))))


def _as_listing(row: ChannelListing) -> Listing:
    if row.status == GONE:  # kept apart like an unlinked one, whatever its link said
        return Listing(row.channel_account_id, row.external_sku_id, row.seller_sku, UNLINKED, None)
    return Listing(row.channel_account_id, row.external_sku_id, row.seller_sku, row.link, row.variant_id)


def _decide(session: Session, account_ids: Collection[int] | None = None) -> tuple[Linking, dict[int, str]]:
    labels = _labels(session)
    wanted = set(labels) if account_ids is None else set(account_ids) & set(labels)
    variants = dict(session.execute(select(Variant.sku, Variant.id)).all())
    rows = _listings(session, wanted)
    return link_by_sku(variants, [_as_listing(row) for row in rows], {a: labels[a] for a in wanted}), labels


def relink(session: Session, account_id: int, *, now: datetime) -> Relinked:
    """Link the account's ``auto`` listings by SKU (``manual`` and ``unlinked`` ones stay as a person set them) and
    keep one sync issue per account counting the listings left without a variant. The caller marks the variants
    that gained a listing dirty (``mark_dirty``), so their stock is pushed there."""
    rows = _listings(session, [account_id])
    variants = dict(session.execute(select(Variant.sku, Variant.id)).all())
    decision = link_by_sku(variants, [_as_listing(row) for row in rows], {})
    linked: set[int] = set()
    for row in rows:
        variant_id = decision.links[(row.channel_account_id, row.external_sku_id)]
        if (row.link == AUTO or row.status == GONE) and row.variant_id != variant_id:
            row.variant_id = variant_id
            if variant_id is not None:
                linked.add(variant_id)
    session.flush()
    blocking = [problem for problem in decision.problems if problem.blocking]
    stranded = len({key for problem in blocking for key in problem.listings if decision.links.get(key) is None})
    fingerprint = issue_fingerprint(account_id)
    if stranded:
        label = session.scalar(select(ChannelAccount.label).where(ChannelAccount.id == account_id))
        raise_issue(
            session, kind=ISSUE_KIND, severity="warning", fingerprint=fingerprint,
            message=f"{stranded} listing(s) of {label} are not linked to a hub SKU, so their stock is not pushed and "
            "their orders are blocked: see `shopbridge links list --problems` or GET /api/v1/links/problems",
            now=now, channel_account_id=account_id, subject_type="channel_account", subject_id=str(account_id),
            details={"not_linked": stranded,
                     "by_reason": {r: sum(1 for p in blocking if p.reason == r) for r in {p.reason for p in blocking}}},
        )  # fmt: skip
    else:
        resolve_issue(session, fingerprint, now)
    return Relinked(linked, decision.problems)


def problems(session: Session) -> list[dict[str, Any]]:
    """Every link problem across the accounts, blocking ones first, each with the sentence saying what to do."""
    decision, labels = _decide(session)
    shown = sorted(decision.problems, key=lambda p: (not p.blocking, p.reason, p.sku or "", p.listings))
    return [
        {
            "reason": problem.reason,
            "sku": problem.sku,
            "blocking": problem.blocking,
            "accounts": [{"id": account_id, "label": labels.get(account_id)} for account_id in problem.account_ids],
            "listings": [{"account_id": account, "external_sku_id": sku_id} for account, sku_id in problem.listings],
            "missing_from": list(problem.missing_from),
            "message": problem.message,
        }
        for problem in shown
    ]  # fmt: skip


def listings(session: Session, account_id: int | None = None, state: str | None = None) -> list[dict[str, Any]]:
    """Listings with their link: ``state`` auto, manual, unlinked, or not_linked (auto without a variant)."""
    if state is not None and state not in STATES:
        raise LinkError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    query = (
        select(ChannelListing, ChannelAccount.label, ChannelAccount.channel, Variant.sku)
        .join(ChannelAccount, ChannelAccount.id == ChannelListing.channel_account_id)
        .outerjoin(Variant, Variant.id == ChannelListing.variant_id)
        .order_by(ChannelListing.channel_account_id, ChannelListing.seller_sku, ChannelListing.external_sku_id)
    )
    if account_id is not None:
        query = query.where(ChannelListing.channel_account_id == account_id)
    if state == NOT_LINKED:
        query = query.where(ChannelListing.link == AUTO, ChannelListing.variant_id.is_(None))
    elif state is not None:
        query = query.where(ChannelListing.link == state)
    return [_view(row, label, channel, sku) for row, label, channel, sku in session.execute(query).all()]


def _view(row: ChannelListing, label: str, channel: str, sku: str | None) -> dict[str, Any]:
    return {
        "account_id": row.channel_account_id, "account": label, "channel": channel,
        "external_product_id": row.external_product_id, "external_sku_id": row.external_sku_id,
        "external_stock_id": row.external_stock_id, "seller_sku": row.seller_sku, "status": row.status,
        "link": row.link, "variant_id": row.variant_id, "sku": sku,
    }  # fmt: skip


def _listing(session: Session, account_id: int, external_sku_id: str) -> ChannelListing:
    row = session.scalar(select(ChannelListing).where(ChannelListing.channel_account_id == account_id,
                                                      ChannelListing.external_sku_id == external_sku_id))  # fmt: skip
    if row is None:
        raise UnknownListing(f"channel account {account_id} has no listing {external_sku_id!r} (import its catalogue "
                             "first, or check `shopbridge links list`)")  # fmt: skip
    return row


def _audit(session: Session, actor: str, action: str, row: ChannelListing, before: dict[str, Any],
           now: datetime) -> None:  # fmt: skip
    audit.record(session, actor, action, "channel_listing", f"{row.channel_account_id}:{row.external_sku_id}",
                 now=now, before=before, after={"link": row.link, "variant_id": row.variant_id})  # fmt: skip


def link(
    session: Session, account_id: int, external_sku_id: str, sku: str, *, now: datetime, actor: str = "system"
) -> dict[str, Any]:
    """Link a listing by hand to the hub variant with ``sku``; the link is kept by later imports. A variant sells
    through one listing per account, so one already linked there is refused until that listing is unlinked."""
    row = _listing(session, account_id, external_sku_id)
    variant = session.scalar(select(Variant).where(Variant.sku == sku))
    if variant is None:
        raise UnknownSku(f"the hub has no SKU {sku!r}")
    other = session.scalar(
        select(ChannelListing.external_sku_id).where(
            ChannelListing.channel_account_id == account_id, ChannelListing.variant_id == variant.id,
            ChannelListing.external_sku_id != external_sku_id, ChannelListing.link != UNLINKED,
        )
    )  # fmt: skip
    if other is not None:
        raise VariantTaken(f"SKU {sku} is already linked to listing {other} of channel account {account_id}: "
                           f"unlink that listing first")  # fmt: skip
    before = {"link": row.link, "variant_id": row.variant_id}
    row.link, row.variant_id = MANUAL, variant.id
    _audit(session, actor, "listing.link", row, before, now)
    session.flush()
    relinked = relink(session, account_id, now=now)
    mark_dirty(session, {variant.id, *relinked.linked}, now=now)
    return _view(row, _label(session, account_id), _channel(session, account_id), sku)


def unlink(
    session: Session, account_id: int, external_sku_id: str, *, now: datetime, actor: str = "system"
) -> dict[str, Any]:
    """Keep a listing apart from every variant (its stock is no longer pushed); later imports leave it so."""
    row = _listing(session, account_id, external_sku_id)
    before = {"link": row.link, "variant_id": row.variant_id}
    row.link, row.variant_id = UNLINKED, None
    _audit(session, actor, "listing.unlink", row, before, now)
    session.flush()
    relinked = relink(session, account_id, now=now)  # a duplicate's other listing may link now
    mark_dirty(session, relinked.linked, now=now)
    return _view(row, _label(session, account_id), _channel(session, account_id), None)


def _label(session: Session, account_id: int) -> str:
    return str(session.scalar(select(ChannelAccount.label).where(ChannelAccount.id == account_id)))


def _channel(session: Session, account_id: int) -> str:
    return str(session.scalar(select(ChannelAccount.channel).where(ChannelAccount.id == account_id)))
