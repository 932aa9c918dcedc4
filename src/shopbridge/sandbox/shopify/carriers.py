"""Tracking companies, the tracking URLs Shopify builds for them, and realistic tracking numbers.

``FulfillmentTrackingInfo.company``: when the company matches a supported name exactly (capitalization matters),
Shopify builds the tracking URL itself; otherwise the caller passes ``url`` (reference §5.2). ``SUPPORTED`` is the
docstring's "any country" list plus the US and UK extras. The URL templates are the carriers' public tracking pages
([INFERRED]: the reference does not record the exact URLs Shopify builds).

The store simulation (traffic.py) ships mostly with carriers that TikTok Shop also knows (the TikTok sandbox lists
USPS, UPS and FedEx) and, for a configurable share, with Shopify-supported carriers TikTok does not list.
"""

from __future__ import annotations

import random
import string

SUPPORTED = frozenset(
    """4PX|AGS|Amazon|Amazon Logistics UK|An Post|Anjun Logistics|APC|Asendia USA|Australia Post|Bonshaw|BPost|
BPost International|Canada Post|Canpar|CDL Last Mile|China Post|Chronopost|Chukou1|Colissimo|Comingle|Coordinadora|
Correios|Correos|CTT|CTT Express|Cyprus Post|Delnext|Deutsche Post|DHL eCommerce|DHL eCommerce Asia|DHL Express|DPD|
DPD Local|DPD UK|DTD Express|DX|Eagle|Estes|Evri|FedEx|First Global Logistics|First Line|FSC|Fulfilla|GLS|
Guangdong Weisuyi Information Technology (WSE)|Heppner Internationale Spedition GmbH & Co.|Iceland Post|IDEX|
Israel Post|Japan Post (EN)|Japan Post (JA)|La Poste Colissimo|La Poste Burkina Faso|Lasership|Latvia Post|
Lietuvos Paštas|Logisters|Lone Star Overnight|M3 Logistics|Meteor Space|Mondial Relay|New Zealand Post|NinjaVan|
North Russia Supply Chain (Shenzhen) Co.|OnTrac|Packeta|Pago Logistics|Ping An Da Tengfei Express|Pitney Bowes|
Portal PostNord|Poste Italiane|PostNL|PostNord DK|PostNord NO|PostNord SE|Purolator|Qxpress|Qyun Express|Royal Mail|
Royal Shipments|Sagawa (EN)|Sagawa (JA)|Sendle|SF Express|SFC Fulfillment|SHREE NANDAN COURIER|Singapore Post|
Southwest Air Cargo|StarTrack|Step Forward Freight|Swiss Post|TForce Final Mile|Tinghao|TNT|Toll IPEC|
United Delivery Service|UPS|USPS|Venipak|We Post|Whistl|Wizmo|WMYC|Xpedigo|XPO Logistics|Yamato (EN)|Yamato (JA)|
YiFan Express|YunExpress|Alliance Air Freight|Pilot Freight|LSO|Old Dominion|Pandion|R+L Carriers|Parcelforce|Yodel|
DHL Parcel|Tuffnells""".replace("\n", "").split("|")
)

URL_TEMPLATES: dict[str, str] = {
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}",
    "UPS": "https://www.ups.com/track?loc=en_US&tracknum={n}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={n}",
    "DHL Express": "https://www.dhl.com/en/express/tracking.html?AWB={n}&brand=DHL",
    "DHL eCommerce": "https://webtrack.dhlecs.com/?trackingnumber={n}",
    "Evri": "https://www.evri.com/track/parcel/{n}/details",
    "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/{n}",
    "Parcelforce": "https://www.parcelforce.com/track-trace?trackNumber={n}",
    "Sendle": "https://track.sendle.com/tracking?ref={n}",
    "OnTrac": "https://www.ontrac.com/tracking/?number={n}",
    "Lasership": "https://www.lasership.com/track/{n}",
    "Canada Post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={n}",
    "Purolator": "https://www.purolator.com/en/shipping/tracker?pin={n}",
    "Australia Post": "https://auspost.com.au/mypost/track/#/details/{n}",
    "DPD UK": "https://track.dpd.co.uk/parcels/{n}",
    "DPD": "https://tracking.dpd.de/status/en_US/parcel/{n}",
    "GLS": "https://gls-group.com/track/{n}",
    "PostNL": "https://postnl.nl/tracktrace/?B={n}",
    "Yodel": "https://www.yodel.co.uk/tracking/{n}",
    "Amazon Logistics UK": "https://track.amazon.co.uk/tracking/{n}",
}

# Carriers TikTok Shop also knows (the TikTok sandbox's shipping providers), and Shopify-supported ones it does not.
COMMON = ("USPS", "UPS", "FedEx")
COMMON_WEIGHTS = (5, 3, 2)
FOREIGN = ("DHL Express", "Evri", "Royal Mail", "Sendle", "OnTrac")


def tracking_url(company: str | None, number: str | None) -> str | None:
    """The URL Shopify builds for a supported company, or None (then the caller's ``url`` is kept)."""
    if not company or not number:
        return None
    template = URL_TEMPLATES.get(company)
    return template.format(n=number) if template else None


def choose_carrier(rng: random.Random, foreign_share: float) -> str:
    if rng.random() < foreign_share:
        return rng.choice(FOREIGN)
    return rng.choices(COMMON, weights=COMMON_WEIGHTS)[0]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def tracking_number(carrier: str, rng: random.Random) -> str:
    """A number shaped like the carrier's: USPS 22 digits (9400…), UPS 1Z + 16, FedEx 12 digits, DHL Express
    10 digits, Royal Mail S10 (AB123456789GB), Evri 16 characters (H…), OnTrac C + 14 digits, Sendle 8 characters."""
    if carrier == "USPS":
        return "9400" + _digits(rng, 18)
    if carrier == "UPS":
        return "1Z" + _alnum(rng, 6) + _digits(rng, 10)
    if carrier == "FedEx":
        return _digits(rng, 12)
    if carrier == "DHL Express":
        return _digits(rng, 10)
    if carrier == "Royal Mail":
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(2))
        return f"{letters}{_digits(rng, 9)}GB"
    if carrier == "Evri":
        return "H" + _alnum(rng, 15)
    if carrier == "OnTrac":
        return "C" + _digits(rng, 14)
    if carrier == "Sendle":
        return "S" + _alnum(rng, 7)
    return _alnum(rng, 12)
