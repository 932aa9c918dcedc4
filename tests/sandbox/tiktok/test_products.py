"""Products and inventory (§5) and product webhooks 5, 15, 16, 37."""

from __future__ import annotations

import struct
import zlib
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


async def test_listing_check_fail_reasons_carry_a_code_and_a_message(env: Env) -> None:
    # An audit problem (required attribute missing) and a blocking check (category not a leaf).
    for overrides in ({"category_id": "700437", "product_attributes": []}, {"category_id": "824328"}):
        bad = await env.ok("POST", "/product/202309/products/listing_check", body=listing(env, **overrides))
        assert bad["check_result"] == "FAILED" and bad["fail_reasons"]
        for reason in bad["fail_reasons"]:
            assert isinstance(reason["code"], int)
            assert isinstance(reason["message"], str) and reason["message"]
    not_leaf = await env.ok("POST", "/product/202309/products/listing_check", body=listing(env, category_id="824328"))
    assert not_leaf["fail_reasons"] == [
        {"code": 12052024, "message": "Category is not final category", "reasons": ["Category is not final category"]}
    ]


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


# --- image upload: the size reported is the image's own -------------------------------------------------------

UPLOAD = "/product/202309/images/upload"


def png(width: int, height: int) -> bytes:
    """A complete, valid PNG (one grey row repeated), built with the standard library."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def jpeg(width: int, height: int) -> bytes:
    """SOI, a JFIF APP0, a DHT (0xC4 is not a frame header) then SOF2 (progressive) with the size, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 5) + b"\x00\x00\x00"
    sof = b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + dht + sof + b"\xff\xd9"


def _riff(chunk_kind: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk_kind + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy(width: int, height: int) -> bytes:
    return _riff(b"VP8 ", b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8)


def webp_lossless(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return _riff(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 4)


def webp_extended(width: int, height: int) -> bytes:
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return _riff(b"VP8X", b"\x10\x00\x00\x00" + size)


def multipart(fields: dict[str, bytes], boundary: str = "sandbox-boundary-7MA4YWxkTrZu0gW") -> tuple[bytes, str]:
    out = b""
    for name, value in fields.items():
        disposition = f'form-data; name="{name}"' + ('; filename="image.bin"' if name == "data" else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if name == "data":
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def upload(env: Env, fields: dict[str, bytes]) -> Any:
    raw, content_type = multipart(fields)
    return await env.api("POST", UPLOAD, raw=raw, content_type=content_type, shop=False)


@pytest.mark.parametrize(
    ("image", "size"),
    [
        (png(320, 240), (320, 240)),
        (png(1, 4000), (1, 4000)),
        (gif(301, 302), (301, 302)),
        (jpeg(1024, 768), (1024, 768)),
        (webp_lossy(640, 480), (640, 480)),
        (webp_lossless(1000, 1333), (1000, 1333)),
        (webp_extended(4000, 3000), (4000, 3000)),
    ],
    ids=["png", "png-tall", "gif", "jpeg-progressive", "webp-lossy", "webp-lossless", "webp-extended"],
)
async def test_image_upload_reports_the_images_own_size(env: Env, image: bytes, size: tuple[int, int]) -> None:
    response = await upload(env, {"data": image, "use_case": b"MAIN_IMAGE"})
    payload = response.json()
    assert response.status_code == 200 and payload["code"] == 0, payload
    data = payload["data"]
    assert (data["width"], data["height"]) == size
    assert data["uri"].startswith("tos-maliva-i-sandbox/") and data["use_case"] == "MAIN_IMAGE"


async def test_image_upload_uri_depends_on_the_image_only(env: Env) -> None:
    first = (await upload(env, {"data": png(400, 400)})).json()["data"]
    again, _ = multipart({"data": png(400, 400)}, boundary="another-boundary")
    second = await env.ok("POST", UPLOAD, raw=again, content_type="multipart/form-data; boundary=another-boundary",
                          shop=False)  # fmt: skip
    other = (await upload(env, {"data": png(400, 401)})).json()["data"]
    assert first["uri"] == second["uri"] != other["uri"]


@pytest.mark.parametrize(
    "fields",
    [
        {"data": b"%PDF-1.7 not an image at all"},
        {"data": b"\x89PNG\r\n\x1a\n"},  # a PNG signature with no header after it
        {"data": b""},
        {"use_case": b"MAIN_IMAGE"},  # no file at all
    ],
    ids=["pdf", "truncated-png", "empty", "no-data-part"],
)
async def test_image_upload_refuses_what_is_not_an_image(env: Env, fields: dict[str, bytes]) -> None:
    response = await upload(env, fields)
    payload = response.json()
    assert response.status_code == 400 and payload["code"] == 98001004, payload
    assert payload["message"].startswith("Parameter data is invalid. Reason: ")
    assert payload["data"] is None
