"""OAuth (reference §1.3-§1.5): authorize → callback with a valid HMAC → token exchange with form and JSON bodies,
single-use and expiring codes, client credentials, expiring tokens with refresh rotation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import shopify

from shopbridge.sandbox.shopify.oauth import calculate_hmac

from .conftest import API_KEY, REDIRECT, SECRET, SHOP, Env

pytestmark = pytest.mark.anyio

SHOP_QUERY = "{ shop { myshopifyDomain } }"


async def authorize(env: Env, **extra: str) -> dict[str, str]:
    params = {
        "client_id": API_KEY,
        "scope": "read_orders,write_inventory",
        "redirect_uri": REDIRECT,
        "state": "nonce-42",
        **extra,
    }
    response = await env.client.get("/admin/oauth/authorize", params=params)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_callback_carries_a_valid_hmac_and_every_param(env: Env) -> None:
    params = await authorize(env)
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["shop"] == SHOP and params["state"] == "nonce-42"
    assert params["hmac"] == calculate_hmac(params, SECRET)
    shopify.Session.setup(api_key=API_KEY, secret=SECRET)
    assert shopify.Session.validate_params(params)  # the official library accepts it (timestamp is fresh)
    assert not shopify.Session.validate_hmac({**params, "state": "tampered"})


async def test_code_exchange_with_a_form_body_then_the_token_works(env: Env) -> None:
    params = await authorize(env)
    form = {"client_id": API_KEY, "client_secret": SECRET, "code": params["code"]}
    response = await env.client.post("/admin/oauth/access_token", data=form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "scope"} and body["scope"] == "read_orders,write_inventory"
    data = await env.data(SHOP_QUERY, token=body["access_token"])
    assert data["shop"]["myshopifyDomain"] == SHOP
    again = await env.client.post("/admin/oauth/access_token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"


async def test_code_exchange_with_a_json_body(env: Env) -> None:
    params = await authorize(env)
    response = await env.client.post(
        "/admin/oauth/access_token", json={"client_id": API_KEY, "client_secret": SECRET, "code": params["code"]}
    )
    assert response.status_code == 200 and response.json()["access_token"].startswith("shpua_")


async def test_codes_expire_and_credentials_are_checked(env: Env) -> None:
    params = await authorize(env)
    wrong = await env.client.post(
        "/admin/oauth/access_token", json={"client_id": API_KEY, "client_secret": "nope", "code": params["code"]}
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
    env.sb.clock.advance(601)
    late = await env.client.post(
        "/admin/oauth/access_token", json={"client_id": API_KEY, "client_secret": SECRET, "code": params["code"]}
    )
    assert late.status_code == 400


async def test_authorize_refuses_unknown_clients_and_foreign_redirects(env: Env) -> None:
    bad_client = await env.client.get("/admin/oauth/authorize", params={"client_id": "other", "redirect_uri": REDIRECT})
    assert bad_client.status_code == 400
    bad_redirect = await env.client.get(
        "/admin/oauth/authorize", params={"client_id": API_KEY, "redirect_uri": "https://evil.example/cb"}
    )
    assert bad_redirect.status_code == 400 and "whitelisted" in bad_redirect.text


async def test_client_credentials_token_lives_24_hours(env: Env) -> None:
    response = await env.client.post(
        "/admin/oauth/access_token",
        data={"client_id": API_KEY, "client_secret": SECRET, "grant_type": "client_credentials"},
    )
    body = response.json()
    assert response.status_code == 200 and body["expires_in"] == 86399
    await env.data(SHOP_QUERY, token=body["access_token"])
    env.sb.clock.advance(86400)
    expired = await env.post(SHOP_QUERY, token=body["access_token"])
    assert expired.status_code == 401


async def test_expiring_tokens_rotate_their_refresh_token(env: Env) -> None:
    params = await authorize(env)
    first = (
        await env.client.post(
            "/admin/oauth/access_token",
            json={"client_id": API_KEY, "client_secret": SECRET, "code": params["code"], "expiring": "1"},
        )
    ).json()
    assert first["expires_in"] == 3600 and first["refresh_token_expires_in"] == 90 * 86400
    await env.data(SHOP_QUERY, token=first["access_token"])
    env.sb.clock.advance(3601)
    assert (await env.post(SHOP_QUERY, token=first["access_token"])).status_code == 401
    refresh = {
        "client_id": API_KEY,
        "client_secret": SECRET,
        "grant_type": "refresh_token",
        "refresh_token": first["refresh_token"],
    }
    second = await env.client.post("/admin/oauth/access_token", json=refresh)
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    await env.data(SHOP_QUERY, token=rotated["access_token"])
    reused = await env.client.post("/admin/oauth/access_token", json=refresh)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
