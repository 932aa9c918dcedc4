"""Products and inventory (§5) and product webhooks 5, 15, 16, 37."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Env

pytestmark = pytest.mark.anyio


def listing(env: Env, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Men's Fashion Sports Low Cut Cotton Breathable Ankle Short Boat Invisible Socks",
        "description": "<p>Please check the measurements before purchase.</p>",
        "category_id": "824584",
        "category_version": "v1",
        "brand_id": "7082427311584347905",
        "main_images": [{"uri": "tos-maliva-i-o3syd03w52-us/c668cdf70b7f483c94dbe"}],
        "product_attributes": [{"id": "100198", "values": [{"id": "1001981", "name": "Cotton"}]}],
        "skus": [
            {
                "seller_sku": "Color-Red-XM001",
                "price": {"amount": "1.21", "currency": "USD"},
                "inventory": [{"quantity": 999}],
                "sales_attributes": [{"id": "100000", "name": "Color", "value_id": "1000003", "value_name": "Red"}],
            }
        ],
        "package_weight": {"unit": "KILOGRAM", "value": "1.32"},
        "save_mode": "LISTING",
    }
    body.update(overrides)
    return body


async def hooks_of(env: Env, type_: int) -> list[dict[str, Any]]:
    await env.sb.run_once()
    return [b for b in env.hooks.bodies() if b["type"] == type_]


async def test_create_audit_pass_and_webhooks(env: Env) -> None:
    for topic in ("PRODUCT_CREATION", "PRODUCT_STATUS_CHANGE", "PRODUCT_AUDIT_STATUS_CHANGE"):
        await env.subscribe(topic)
    created = await env.ok("POST", "/product/202309/products", body=listing(env))
    product_id = created["product_id"]
    assert created["warnings"] == []
    assert created["skus"][0]["seller_sku"] == "Color-Red-XM001"
    product = await env.ok("GET", f"/product/202309/products/{product_id}")
    assert product["status"] == "PENDING" and product["audit"]["status"] == "AUDITING"
    assert product["skus"][0]["price"]["sale_price"] == "1.21"
    assert (await hooks_of(env, 16))[0]["data"]["product_id"] == product_id

    await env.advance(env.sb.world.settings.audit_delay_seconds)
    product = await env.ok("GET", f"/product/202309/products/{product_id}")
    assert product["status"] == "ACTIVATE" and product["audit"]["status"] == "APPROVED"
    [status_hook] = await hooks_of(env, 5)
    assert status_hook["data"]["status"] == "PRODUCT_FIRST_PASS_REVIEW"
    assert status_hook["data"]["product_id"] == int(product_id)
    audits = [h["data"]["audit"]["status"] for h in await hooks_of(env, 37)]
    assert audits == ["AUDITING", "APPROVED"]


async def test_audit_failure_has_reasons(env: Env) -> None:
    created = await env.ok("POST", "/product/202309/products", body=listing(env, product_attributes=[]))
    await env.advance(env.sb.world.settings.audit_delay_seconds)
    product = await env.ok("GET", f"/product/202309/products/{created['product_id']}")
    assert product["status"] == "FAILED" and product["audit"]["status"] == "FAILED"
    [reason] = product["audit_failed_reasons"]
    assert reason["position"] == "product_attributes" and reason["reasons"] and reason["suggestions"]


async def test_forced_audit_failure_through_control(env: Env) -> None:
    created = await env.ok("POST", "/product/202309/products", body=listing(env))
    await env.control("POST", f"/products/{created['product_id']}/audit", {"result": "fail"})
    product = await env.ok("GET", f"/product/202309/products/{created['product_id']}")
    assert product["status"] == "FAILED"


async def test_draft_and_brand_warning(env: Env) -> None:
    created = await env.ok("POST", "/product/202309/products", body=listing(env, save_mode="AS_DRAFT", brand_id="123"))
    assert "Brand does not exist" in created["warnings"][0]["message"]
    product = await env.ok("GET", f"/product/202309/products/{created['product_id']}")
    assert product["status"] == "DRAFT" and "brand" not in product


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"category_id": "999"}, 12052023),
        ({"category_id": "824328"}, 12052024),
        ({"main_images": []}, 12052028),
        ({"skus": [{"seller_sku": "X", "price": {"amount": "1.234", "currency": "USD"}}]}, 12052012),
        (
            {
                "skus": [
                    {
                        "seller_sku": "X",
                        "price": {"amount": "1", "currency": "USD"},
                        "inventory": [{"warehouse_id": "42", "quantity": 1}],
                    }
                ]
            },
            12052097,
        ),
    ],
)
async def test_create_errors(env: Env, overrides: dict[str, Any], code: int) -> None:
    response = await env.api("POST", "/product/202309/products", body=listing(env, **overrides))
    assert response.status_code == 200 and response.json()["code"] == code


async def test_listing_check(env: Env) -> None:
    ok = await env.ok("POST", "/product/202309/products/listing_check", body=listing(env))
    assert ok["check_result"] == "PASS"
    bad = await env.ok(
        "POST", "/product/202309/products/listing_check", body=listing(env, category_id="700437", product_attributes=[])
    )
    assert bad["check_result"] == "FAILED" and bad["fail_reasons"]


async def test_idempotent_create(env: Env) -> None:
    first = await env.ok("POST", "/product/202309/products", body=listing(env), query=[("idempotency_key", "k1")])
    again = await env.ok("POST", "/product/202309/products", body=listing(env), query=[("idempotency_key", "k1")])
    assert first["product_id"] == again["product_id"]


async def two_warehouse_product(env: Env) -> tuple[dict[str, Any], str, str]:
    second = await env.control("POST", f"/shops/{env.shop_id}/warehouses", {"name": "East"})
    shops = await env.control("GET", "/sellers")
    first_wh = shops[0]["shops"][0]["warehouses"][0]["id"]
    product = await env.product(
        [
            {"seller_sku": "TEE-1", "price": "10.00", "inventory": {first_wh: 5, second["id"]: 3}},
            {"seller_sku": "TEE-2", "price": "10.00", "inventory": {first_wh: 1}},
        ]
    )
    return product, first_wh, second["id"]


async def test_inventory_update_absolute_and_logged(env: Env) -> None:
    product, wh1, wh2 = await two_warehouse_product(env)
    sku = product["skus"][0]["id"]
    data = await env.ok(
        "POST",
        f"/product/202309/products/{product['id']}/inventory/update",
        body={
            "skus": [
                {"id": sku, "inventory": [{"warehouse_id": wh1, "quantity": 40}, {"warehouse_id": wh2, "quantity": 0}]}
            ]
        },
    )
    assert data["errors"] == []
    truth = {s["sku_id"]: s for s in await env.control("GET", "/truth/stock")}
    assert truth[sku]["warehouses"] == {wh1: 40, wh2: 0}
    log = await env.control("GET", f"/truth/inventory_updates?sku_id={sku}")
    assert [(u["warehouse_id"], u["quantity"], u["accepted"]) for u in log] == [(wh1, 40, True), (wh2, 0, True)]
    assert log[0]["arrival_time"] == env.sb.clock.now()


async def test_inventory_update_needs_every_warehouse(env: Env) -> None:
    product, wh1, _ = await two_warehouse_product(env)
    response = await env.api(
        "POST",
        f"/product/202309/products/{product['id']}/inventory/update",
        body={"skus": [{"id": product["skus"][0]["id"], "inventory": [{"warehouse_id": wh1, "quantity": 1}]}]},
    )
    payload = response.json()
    assert payload["code"] == 12019028
    assert payload["message"].startswith("Multiple warehouses detected.")


async def test_inventory_update_per_sku_errors_inside_code_0(env: Env) -> None:
    product, wh1, wh2 = await two_warehouse_product(env)
    good, bad = product["skus"][1]["id"], product["skus"][0]["id"]
    data = await env.ok(
        "POST",
        f"/product/202309/products/{product['id']}/inventory/update",
        body={
            "skus": [
                {"id": good, "inventory": [{"warehouse_id": wh1, "quantity": 7}]},
                {
                    "id": bad,
                    "inventory": [{"warehouse_id": wh1, "quantity": 100_000}, {"warehouse_id": wh2, "quantity": 2}],
                },
            ]
        },
    )
    [error] = data["errors"]
    assert error["code"] == 12052990 and error["detail"]["sku_id"] == bad
    assert error["detail"]["extra_errors"][0] == {
        "code": 12052055,
        "message": "The SKU inventory quantity for the warehouse must be within allowed limits.",
        "warehouse_id": wh1,
    }
    truth = {s["sku_id"]: s for s in await env.control("GET", "/truth/stock")}
    assert truth[good]["total"] == 7 and truth[bad]["warehouses"] == {wh1: 5, wh2: 3}


async def test_inventory_update_wrong_type_is_400(env: Env) -> None:
    product, wh1, _ = await two_warehouse_product(env)
    response = await env.api(
        "POST",
        f"/product/202309/products/{product['id']}/inventory/update",
        body={"skus": [{"id": product["skus"][1]["id"], "inventory": [{"warehouse_id": wh1, "quantity": "many"}]}]},
    )
    assert response.status_code == 400 and response.json()["code"] == 98001004


async def test_inventory_search(env: Env) -> None:
    product, _, _ = await two_warehouse_product(env)
    await env.order([(product["skus"][0]["id"], 2)])
    data = await env.ok("POST", "/product/202309/inventory/search", body={"product_ids": [product["id"]]})
    sku = data["inventory"][0]["skus"][0]
    assert sku["total_available_quantity"] == 6 and sku["total_committed_quantity"] == 2


async def test_update_price(env: Env) -> None:
    product = await env.product([{"seller_sku": "A", "price": "10.00", "quantity": 1}])
    sku = product["skus"][0]["id"]
    path = f"/product/202309/products/{product['id']}/prices/update"
    assert (
        await env.ok("POST", path, body={"skus": [{"id": sku, "price": {"amount": "12.50", "currency": "USD"}}]}) == {}
    )
    got = await env.ok("GET", f"/product/202309/products/{product['id']}")
    assert got["skus"][0]["price"]["sale_price"] == "12.50"
    bad = await env.api("POST", path, body={"skus": [{"id": sku, "price": {"amount": "1.999", "currency": "USD"}}]})
    assert bad.json()["code"] == 12052012
    dup = await env.api("POST", path, body={"skus": [{"id": sku, "price": {"amount": "1", "currency": "USD"}}] * 2})
    assert dup.json()["code"] == 12052553


async def test_status_operations(env: Env) -> None:
    await env.subscribe("PRODUCT_STATUS_CHANGE")
    product = await env.product([{"seller_sku": "A", "price": "10.00", "quantity": 1}])
    ids = {"product_ids": [product["id"]]}
    assert (await env.ok("POST", "/product/202309/products/deactivate", body=ids))["errors"] == []
    assert (await env.ok("GET", f"/product/202309/products/{product['id']}"))["status"] == "SELLER_DEACTIVATED"
    again = await env.ok("POST", "/product/202309/products/deactivate", body=ids)
    assert again["errors"][0]["code"] == 12052901
    await env.ok("POST", "/product/202309/products/activate", body=ids)
    assert (await env.ok("GET", f"/product/202309/products/{product['id']}"))["status"] == "PENDING"
    await env.advance(env.sb.world.settings.audit_delay_seconds)
    assert (await env.ok("GET", f"/product/202309/products/{product['id']}"))["status"] == "ACTIVATE"
    await env.ok("DELETE", "/product/202309/products", body=ids)
    assert (await env.ok("GET", f"/product/202309/products/{product['id']}"))["status"] == "DELETED"
    await env.ok("POST", "/product/202309/products/recover", body=ids)
    assert (await env.ok("GET", f"/product/202309/products/{product['id']}"))["status"] == "SELLER_DEACTIVATED"
    missing = await env.ok("POST", "/product/202309/products/activate", body={"product_ids": ["1"]})
    assert missing["errors"][0]["code"] == 12019150
    assert len(await hooks_of(env, 5)) >= 4


async def test_edit_and_partial_edit(env: Env) -> None:
    await env.subscribe("PRODUCT_INFORMATION_CHANGE")
    created = await env.ok("POST", "/product/202309/products", body=listing(env))
    await env.advance(env.sb.world.settings.audit_delay_seconds)
    pid = created["product_id"]
    sku_id = created["skus"][0]["id"]
    edit = listing(env, title="Ankle Socks, renamed")
    edit["skus"][0] = {"id": sku_id, "seller_sku": "Color-Red-XM001"}
    await env.ok("PUT", f"/product/202509/products/{pid}", body=edit)
    got = await env.ok("GET", f"/product/202309/products/{pid}")
    assert got["title"] == "Ankle Socks, renamed"
    # Omitted price and stock are untouched; the edit goes to audit while the live version keeps selling.
    assert got["skus"][0]["price"]["sale_price"] == "1.21"
    assert got["skus"][0]["inventory"][0]["quantity"] == 999
    assert got["status"] == "PENDING"
    await env.ok("POST", f"/product/202309/products/{pid}/partial_edit", body={"description": "<p>New</p>"})
    [first, second] = await hooks_of(env, 15)
    assert first["data"]["changed_fields"] == ["title"] and second["data"]["changed_fields"] == ["description"]


async def test_search_pagination_round_trip(env: Env) -> None:
    for n in range(7):
        await env.product([{"seller_sku": f"S-{n}", "price": "1.00", "quantity": 1}])
    seen: list[str] = []
    token = ""
    while True:
        query = [("page_size", "3")] + ([("page_token", token)] if token else [])
        data = await env.ok("POST", "/product/202502/products/search", body={"status": "ACTIVATE"}, query=query)
        assert data["total_count"] == 7
        seen += [p["id"] for p in data["products"]]
        token = data["next_page_token"]
        if not token:
            break
        assert any(c in token for c in "+/=")
    assert len(seen) == len(set(seen)) == 7
    by_sku = await env.ok(
        "POST", "/product/202309/products/search", body={"seller_skus": ["S-3"]}, query=[("page_size", "10")]
    )
    assert len(by_sku["products"]) == 1
    too_many = await env.api(
        "POST", "/product/202309/products/search", body={"seller_skus": ["x"] * 11}, query=[("page_size", "10")]
    )
    assert too_many.json()["code"] == 12019027


async def test_categories_attributes_rules_brands(env: Env) -> None:
    cats = (await env.ok("GET", "/product/202309/categories"))["categories"]
    leaf = next(c for c in cats if c["id"] == "601302")
    assert leaf["is_leaf"] and leaf["parent_id"] == "601226"
    attrs = (await env.ok("GET", "/product/202309/categories/601302/attributes"))["attributes"]
    material = next(a for a in attrs if a["name"] == "Material")
    assert material["is_requried"] is True and material["type"] == "PRODUCT_PROPERTY"
    rules = await env.ok("GET", "/product/202309/categories/601302/rules")
    assert rules["size_chart"]["is_required"] is True
    missing = await env.api("GET", "/product/202309/categories/1/rules")
    assert missing.json()["code"] == 12052023
    brands = await env.ok("GET", "/product/202309/brands", query=[("page_size", "2")])
    assert len(brands["brands"]) == 2 and brands["next_page_token"]
