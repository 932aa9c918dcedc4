"""The name staff search an order by: whichever name the channel gave, in one search form."""

from __future__ import annotations

import pytest

from shopbridge.domain.orders import MAX_NAME, buyer_name, search_form


@pytest.mark.parametrize(
    ("buyer", "recipient", "expected"),
    [
        ({}, {"name": "Ana  Silva"}, "ana silva"),  # TikTok's recipient_address.name, a manual order's customer
        ({}, {"first_name": "Ana", "last_name": "Silva"}, "ana silva"),
        ({}, {"firstName": "ÅSA", "lastName": "Berg"}, "åsa berg"),  # Shopify's MailingAddress, any script
        ({"customer_name": "Budi Santoso", "name": "#1001"}, {}, "budi santoso"),  # the store order's name is no buyer
        ({"customer_name": "Budi"}, {"name": "Siti"}, "siti"),  # the recipient first
        ({"buyer_email": "x@scs.tiktokw.us"}, {"name": "   "}, None),
        ({}, {}, None),
    ],
)
def test_the_first_name_given_in_search_form(buyer: dict[str, str], recipient: dict[str, str],
                                             expected: str | None) -> None:  # fmt: skip
    assert buyer_name(buyer, recipient) == expected


def test_search_form_ignores_case_and_spacing_and_fits_the_column() -> None:
    assert search_form("  SITI\tRahma ") == search_form("siti rahma") == "siti rahma"
    assert search_form("Straße") == "strasse"
    assert len(search_form("x" * 500)) == MAX_NAME
