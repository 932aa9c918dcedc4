"""Linking channel listings to the hub's variants by SKU, and the SKU problems a person has to settle.

A listing is one sellable unit as a channel account knows it. Its ``link`` says who decides its variant:

- ``auto``: the hub, by SKU: the variant whose SKU equals the listing's, unless the listing has no SKU, the hub has
  no such variant, or another listing of the same account carries the same SKU (then neither is linked: pushing
  the hub's truth to both would offer every unit twice);
- ``manual``: a person linked it to a variant; kept as it is;
- ``unlinked``: a person keeps it apart from every variant; kept as it is.

Sides are the channel accounts, named by the labels handed in; the hub's catalogue is the other side. Pure: the
variants and listings are read by services/links.py and the channels' catalogue imports, and handed in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

AUTO = "auto"
MANUAL = "manual"
UNLINKED = "unlinked"
LINKS = (AUTO, MANUAL, UNLINKED)


class LinkReason:
    """Why a SKU needs a person: a code people and the API filter by, beside a sentence saying what to do."""

    MISSING_SKU = "missing_sku"  # a listing without a SKU
    DUPLICATE_SKU = "duplicate_sku"  # listings of one account share a SKU
    NOT_IN_HUB = "not_in_hub"  # a listing's SKU is not in the hub's catalogue
    ONLY_ON_SOME_ACCOUNTS = "only_on_some_accounts"  # a SKU some accounts list and others do not


# Reasons that leave a listing without a variant (its stock is not pushed and its orders are Blocked); the last one
# only informs: its listings are linked.
BLOCKING = (LinkReason.MISSING_SKU, LinkReason.DUPLICATE_SKU, LinkReason.NOT_IN_HUB)
REASONS = (*BLOCKING, LinkReason.ONLY_ON_SOME_ACCOUNTS)

ListingKey = tuple[int, str]  # (channel account id, the channel's SKU id)


@dataclass(frozen=True)
class Listing:
    account_id: int
    external_sku_id: str
    seller_sku: str | None
    link: str = AUTO
    variant_id: int | None = None

    @property
    def key(self) -> ListingKey:
        return (self.account_id, self.external_sku_id)

    @property
    def sku(self) -> str | None:
        """The SKU to match by; blank counts as none."""
        return self.seller_sku if self.seller_sku and self.seller_sku.strip() else None


@dataclass(frozen=True)
class LinkProblem:
    reason: str
    sku: str | None
    listings: tuple[ListingKey, ...]  # the listings concerned (for only_on_some_accounts: every one carrying the SKU)
    message: str
    missing_from: tuple[int, ...] = ()  # only_on_some_accounts: the accounts without the SKU

    @property
    def account_ids(self) -> tuple[int, ...]:
        return tuple(sorted({account_id for account_id, _ in self.listings} | set(self.missing_from)))

    @property
    def blocking(self) -> bool:
        return self.reason in BLOCKING


@dataclass(frozen=True)
class Linking:
    """Every listing's variant as decided (``links[key]``: None for none) and the problems, SKU by SKU."""

    links: dict[ListingKey, int | None]
    problems: list[LinkProblem]

    def changed(self, listings: Iterable[Listing]) -> list[Listing]:
        """The listings whose variant the decision changes."""
        return [listing for listing in listings if self.links[listing.key] != listing.variant_id]


def link_by_sku(
    variants: Mapping[str, int], listings: Iterable[Listing], accounts: Mapping[int, str]
) -> Linking:  # fmt: skip
    """Decide the listings' variants and list the problems. ``variants`` is the hub's catalogue (SKU → variant id),
    ``accounts`` names each account (its label). Accounts without listings have not been imported yet, so they are
    left out of the comparison between accounts."""
    listings = sorted(listings, key=lambda listing: listing.key)
    links: dict[ListingKey, int | None] = {}
    problems: list[LinkProblem] = []
    label = _labeller(accounts)
    # Listings that take part in linking by SKU (a person's "unlinked" keeps a listing apart), by account and SKU.
    by_account_sku: dict[tuple[int, str], list[Listing]] = defaultdict(list)
    for listing in listings:
        if listing.link != UNLINKED and listing.sku is not None:
            by_account_sku[(listing.account_id, listing.sku)].append(listing)
    # A variant a person linked a listing to is that account's: a second listing would offer its units twice.
    held = {(listing.account_id, listing.variant_id): listing for listing in listings
            if listing.link == MANUAL and listing.variant_id is not None}  # fmt: skip
    unknown: dict[str, list[Listing]] = defaultdict(list)
    for listing in listings:
        if listing.link != AUTO:
            links[listing.key] = listing.variant_id if listing.link == MANUAL else None
            continue
        links[listing.key] = None
        sku = listing.sku
        if sku is None:
            problems.append(LinkProblem(
                LinkReason.MISSING_SKU, None, (listing.key,),
                f"{label(listing.account_id)} listing {listing.external_sku_id} has no SKU: give it one there and "
                "import again, or link it by hand",
            ))  # fmt: skip
        elif len(by_account_sku[(listing.account_id, sku)]) > 1:
            pass  # reported once per account and SKU below
        elif sku not in variants:
            unknown[sku].append(listing)
        elif (holder := held.get((listing.account_id, variants[sku]))) is not None:
            problems.append(LinkProblem(
                LinkReason.DUPLICATE_SKU, sku, (listing.key, holder.key),
                f"{label(listing.account_id)} listing {listing.external_sku_id} has SKU {sku}, whose variant is "
                f"linked by hand to its listing {holder.external_sku_id}: unlink one of them",
            ))  # fmt: skip
        else:
            links[listing.key] = variants[sku]
    for (account_id, sku), group in sorted(by_account_sku.items()):
        if len(group) > 1 and any(listing.link == AUTO for listing in group):
            ids = ", ".join(listing.external_sku_id for listing in group)
            problems.append(LinkProblem(
                LinkReason.DUPLICATE_SKU, sku, tuple(listing.key for listing in group),
                f"{len(group)} listings of {label(account_id)} share SKU {sku} ({ids}), so none is linked "
                "automatically: give each its own SKU there, or link one by hand and unlink the others",
            ))  # fmt: skip
    for sku, stranded in sorted(unknown.items()):
        where = _names(label(account_id) for account_id in sorted({listing.account_id for listing in stranded}))
        problems.append(LinkProblem(
            LinkReason.NOT_IN_HUB, sku, tuple(listing.key for listing in stranded),
            f"SKU {sku} is on {where} but not in the hub's catalogue: add a variant with SKU {sku} to the hub, "
            "or link the listing by hand to the hub's SKU for it",
        ))  # fmt: skip
    problems.extend(_one_sided(listings, accounts, set(unknown), label))
    return Linking(links, problems)


def _one_sided(
    listings: list[Listing], accounts: Mapping[int, str], not_in_hub: set[str], label: Callable[[int], str]
) -> list[LinkProblem]:  # fmt: skip
    """SKUs some imported accounts list and others do not (a SKU missing from the hub is reported as that)."""
    imported = sorted({listing.account_id for listing in listings} & set(accounts))
    if len(imported) < 2:
        return []
    carriers: dict[str, list[Listing]] = defaultdict(list)
    for listing in listings:
        if listing.sku is not None and listing.account_id in accounts:
            carriers[listing.sku].append(listing)
    problems = []
    for sku, carrying in sorted(carriers.items()):
        present = sorted({listing.account_id for listing in carrying})
        missing = tuple(account_id for account_id in imported if account_id not in present)
        if not missing or sku in not_in_hub:
            continue
        problems.append(LinkProblem(
            LinkReason.ONLY_ON_SOME_ACCOUNTS, sku, tuple(listing.key for listing in carrying),
            f"SKU {sku} is on {_names(label(a) for a in present)} but not on {_names(label(a) for a in missing)}: "
            "list it there too if it should sell there",
            missing_from=missing,
        ))  # fmt: skip
    return problems


def _labeller(accounts: Mapping[int, str]) -> Callable[[int], str]:
    return lambda account_id: accounts.get(account_id) or f"account {account_id}"


def _names(labels: Iterable[str]) -> str:
    names = list(labels)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
