"""Seller authorization (§3): consent redirect, single-use codes, absolute expiries, refresh rotation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .conftest import APP_KEY, APP_SECRET, REDIRECT, SERVICE_ID, T0, Env

pytestmark = pytest.mark.anyio


async def _code(client: httpx.AsyncClient) -> str:
    response = await client.get("/open/authorize", params={"service_id": SERVICE_ID, "state": "s1"})
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


def _token_params(code: str) -> dict[str, str]:
    return {"app_key": APP_KEY, "app_secret": APP_SECRET, "auth_code": code, "grant_type": "authorized_code"}


async def test_token_response_shape_and_absolute_expiries(env: Env) -> None:
    code = await _code(env.client)
    payload = (await env.client.get("/api/v2/token/get", params=_token_params(code))).json()
    assert payload["code"] == 0 and payload["message"] == "success"
    data = payload["data"]
    assert data["access_token"].startswith("TTP_")
    assert data["access_token_expire_in"] == int(T0) + 7 * 86400
    assert data["refresh_token_expire_in"] > data["access_token_expire_in"]
    assert data["user_type"] == 0
    assert isinstance(data["open_id"], str) and data["seller_name"]
    assert "seller.order.info" in data["granted_scopes"]


async def test_code_is_single_use(env: Env) -> None:
    code = await _code(env.client)
    assert (await env.client.get("/api/v2/token/get", params=_token_params(code))).json()["code"] == 0
    again = (await env.client.get("/api/v2/token/get", params=_token_params(code))).json()
    assert again == {**again, "code": 36004004, "message": "Invalid auth code.", "data": None}


async def test_code_expires_after_30_minutes(env: Env) -> None:
    code = await _code(env.client)
    await env.advance(1800)
    assert (await env.client.get("/api/v2/token/get", params=_token_params(code))).json()["code"] == 36004004


async def test_bad_app_credentials(env: Env) -> None:
    code = await _code(env.client)
    bad_key = await env.client.get("/api/v2/token/get", params={**_token_params(code), "app_key": "x"})
    assert bad_key.status_code == 400 and bad_key.json()["code"] == 36009004
    bad_secret = await env.client.get("/api/v2/token/get", params={**_token_params(code), "app_secret": "x"})
    assert bad_secret.status_code == 401
    bad_grant = await env.client.get("/api/v2/token/get", params={**_token_params(code), "grant_type": "x"})
    assert bad_grant.json()["code"] == 98001004


async def test_refresh_rotates_and_keeps_the_authorization_expiry(env: Env) -> None:
    first = await env.authorize()
    await env.advance(3600)
    params = {
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "refresh_token": first["refresh_token"],
        "grant_type": "refresh_token",
    }
    refreshed = (await env.client.get("/api/v2/token/refresh", params=params)).json()
    assert refreshed["code"] == 0
    data = refreshed["data"]
    assert data["access_token"] != first["access_token"]
    assert data["refresh_token"] != first["refresh_token"]
    assert data["access_token_expire_in"] == int(T0) + 3600 + 7 * 86400
    assert data["refresh_token_expire_in"] == first["refresh_token_expire_in"]
    reused = (await env.client.get("/api/v2/token/refresh", params=params)).json()
    assert reused["code"] == 36004004 and reused["data"] is None
    env.token = data["access_token"]
    assert (await env.api("GET", "/authorization/202309/shops", shop=False)).json()["code"] == 0


async def test_authorized_shops_and_active_shops(env: Env) -> None:
    data = await env.ok("GET", "/authorization/202309/shops", shop=False)
    shop = data["shops"][0]
    assert set(shop) == {"id", "name", "region", "seller_type", "cipher", "code"}
    assert shop["seller_type"] in ("LOCAL", "CROSS_BORDER")
    active = await env.ok("GET", "/seller/202309/shops", shop=False)
    assert active["shops"] == [{"id": shop["id"], "region": shop["region"]}]


async def test_denied_authorization(env: Env) -> None:
    response = await env.client.get(
        "/open/authorize", params={"service_id": SERVICE_ID, "state": "s", "decision": "deny"}
    )
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["auth_denied"] and query["code"] == ["null"]


async def test_unknown_service_id(env: Env) -> None:
    response = await env.client.get("/open/authorize", params={"service_id": "999", "state": "s"})
    assert response.status_code == 400
