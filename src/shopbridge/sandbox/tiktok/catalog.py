"""A small, realistic category tree with attributes and rules, and a brand list (§5.7).

The ids and names are modelled on TikTok's US tree but are the sandbox's own ([INFERRED]); one tree serves both
`category_version` v1 and v2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import business
from .gateway import Call, Endpoint
from .pagination import paginate, scope_of


@dataclass(frozen=True)
class Category:
    id: str
    parent_id: str
    local_name: str
    permission: str = "AVAILABLE"
    # Attribute ids that apply to products in this (leaf) category.
    attributes: tuple[str, ...] = ()
    size_chart_required: bool = False


@dataclass(frozen=True)
class Attribute:
    id: str
    name: str
    type: str
    is_required: bool = False
    values: tuple[tuple[str, str], ...] = ()
    is_customizable: bool = True
    is_multiple_selection: bool = False


ATTRIBUTES: dict[str, Attribute] = {
    a.id: a
    for a in (
        Attribute(
            "100000",
            "Color",
            "SALES_PROPERTY",
            values=(("1000001", "Black"), ("1000002", "White"), ("1000003", "Red"), ("1000004", "Blue")),
        ),
        Attribute(
            "100007",
            "Size",
            "SALES_PROPERTY",
            values=(("1000071", "S"), ("1000072", "M"), ("1000073", "L"), ("1000074", "XL")),
        ),
        Attribute(
            "100198",
            "Material",
            "PRODUCT_PROPERTY",
            is_required=True,
            values=(("1001981", "Cotton"), ("1001982", "Polyester"), ("1001983", "Wool")),
        ),
        Attribute(
            "100392",
            "Occasion",
            "PRODUCT_PROPERTY",
            is_multiple_selection=True,
            values=(("1001533", "Birthday"), ("1001534", "Daily"), ("1001535", "Party")),
        ),
        Attribute(
            "100701",
            "Capacity",
            "PRODUCT_PROPERTY",
            is_required=True,
            values=(("1007011", "350 ml"), ("1007012", "500 ml"), ("1007013", "750 ml")),
        ),
        Attribute(
            "100810",
            "Skin Type",
            "PRODUCT_PROPERTY",
            values=(("1008101", "Dry"), ("1008102", "Oily"), ("1008103", "All skin types")),
        ),
        Attribute(
            "100905",
            "Compatible Phone Models",
            "PRODUCT_PROPERTY",
            is_multiple_selection=True,
            values=(("1009051", "iPhone 15"), ("1009052", "Galaxy S24"), ("1009053", "Pixel 8")),
        ),
    )
}

_APPAREL = ("100000", "100007", "100198", "100392")

CATEGORIES: dict[str, Category] = {
    c.id: c
    for c in (
        Category("601152", "0", "Womenswear & Underwear"),
        Category("601226", "601152", "Women's Tops"),
        Category("601302", "601226", "T-shirts", attributes=_APPAREL, size_chart_required=True),
        Category("601303", "601226", "Blouses & Shirts", attributes=_APPAREL, size_chart_required=True),
        Category("824328", "0", "Menswear & Underwear"),
        Category("824584", "824328", "Men's Socks", attributes=_APPAREL),
        Category("824456", "824328", "Men's Hoodies & Sweatshirts", attributes=_APPAREL, size_chart_required=True),
        Category("600942", "0", "Kitchenware"),
        Category("600954", "600942", "Drinkware", attributes=("100000", "100701")),
        Category("601450", "0", "Beauty & Personal Care"),
        Category("601505", "601450", "Skincare", attributes=("100810",)),
        Category("605196", "0", "Phones & Electronics"),
        Category("605248", "605196", "Phone Cases", attributes=("100000", "100905")),
        Category("700437", "605196", "E-cigarettes", permission="PROHIBITED"),
    )
}

BRANDS: list[dict[str, Any]] = [
    {"id": "7082427311584347905", "name": "Sandbox Basics"},
    {"id": "7082427311584347906", "name": "Northwind"},
    {"id": "7082427311584347907", "name": "Contoso Home"},
    {"id": "7082427311584347908", "name": "Lumen Skin"},
]


@dataclass
class CategoryIssue:
    code: int
    message: str
    position: str = "product"
    suggestions: list[str] = field(default_factory=list)


def is_leaf(category_id: str) -> bool:
    return not any(c.parent_id == category_id for c in CATEGORIES.values())


def chain(category_id: str) -> list[Category]:
    out: list[Category] = []
    current = CATEGORIES.get(category_id)
    while current is not None:
        out.append(current)
        current = CATEGORIES.get(current.parent_id)
    return list(reversed(out))


def category_json(c: Category) -> dict[str, Any]:
    return {
        "id": c.id,
        "parent_id": c.parent_id,
        "local_name": c.local_name,
        "is_leaf": is_leaf(c.id),
        "permission_statuses": [c.permission],
    }


def brand_name(brand_id: str | None) -> str | None:
    return next((b["name"] for b in BRANDS if b["id"] == brand_id), None)


def require_category(category_id: str) -> Category:
    category = CATEGORIES.get(category_id)
    if category is None:
        raise business(12052023, "Category does not exist")
    return category


def attribute_json(a: Attribute) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "type": a.type,
        # Misspelled in the real API; kept so clients parse the sandbox exactly as they parse TikTok.
        "is_requried": a.is_required,
        "is_customizable": a.is_customizable,
        "is_multiple_selection": a.is_multiple_selection,
        "values": [{"id": vid, "name": vname} for vid, vname in a.values],
    }


def get_categories(call: Call) -> dict[str, Any]:
    call.enum_param("category_version", ("v1", "v2"), "v1")
    keyword = (call.param("keyword") or "").lower()
    cats = [c for c in CATEGORIES.values() if keyword in c.local_name.lower()]
    return {"categories": [category_json(c) for c in cats]}


def get_attributes(call: Call) -> dict[str, Any]:
    category = require_category(call.path_params["category_id"])
    return {"attributes": [attribute_json(ATTRIBUTES[a]) for a in category.attributes]}


def get_rules(call: Call) -> dict[str, Any]:
    category = require_category(call.path_params["category_id"])
    return {
        "product_certifications": [],
        "size_chart": {"is_required": category.size_chart_required, "is_supported": True},
        "cod": {"is_supported": True},
        "package_dimension": {"is_required": True},
        "epr": {"is_required": False},
        "responsible_person": {"is_required": False},
        "manufacturer": {"is_required": False},
    }


def recommend_category(call: Call) -> dict[str, Any]:
    title = str(call.json().get("product_title", "")).lower()
    leaves = [c for c in CATEGORIES.values() if is_leaf(c.id) and c.permission == "AVAILABLE"]
    best = next((c for c in leaves if any(w in title for w in c.local_name.lower().split())), leaves[0])
    return {"leaf_category_id": best.id, "categories": [category_json(c) for c in chain(best.id)]}


def get_brands(call: Call) -> dict[str, Any]:
    size = call.page_size(100)
    name = (call.param("brand_name") or "").lower()
    brands = [b for b in BRANDS if name in b["name"].lower()]
    page = paginate(
        brands,
        key=lambda b: (b["id"],),
        descending=False,
        page_size=size,
        page_token=call.param("page_token"),
        scope=scope_of("brands", name),
    )
    return {
        "brands": [
            {**b, "authorized_status": "AUTHORIZED", "brand_status": "AVAILABLE", "is_t1_brand": False}
            for b in page.items
        ],
        "total_count": page.total_count,
        "next_page_token": page.next_page_token,
    }


ENDPOINTS = [
    Endpoint("GET", "/product/202309/categories", get_categories),
    Endpoint("GET", "/product/202309/categories/{category_id}/attributes", get_attributes),
    Endpoint("GET", "/product/202309/categories/{category_id}/rules", get_rules),
    Endpoint("POST", "/product/202309/categories/recommend", recommend_category),
    Endpoint("GET", "/product/202309/brands", get_brands),
]
