"""Seller authorization (§3): the consent page, auth-code exchange and token refresh.

The token endpoints live on `auth.tiktok-shops.com` in production; the sandbox serves them on the same port.
They are unsigned GETs that carry the app secret in the query, and their expiries are absolute Unix times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from . import errors
from .errors import ApiError, ErrorSpec, invalid_parameter
from .gateway import envelope, error_response
from .models import AuthCode, Seller, Token
from .sellers import default_seller

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

GRANTED_SCOPES = [
    "seller.authorization.info",
    "seller.shop.info",
    "seller.order.info",
    "seller.product.basic",
    "seller.product.write",
    "seller.fulfillment.basic",
    "seller.fulfillment.package.write",
    "seller.logistics",
    "seller.return_refund.basic",
    "seller.finance.info",
    "seller.customer_service",
    "seller.webhook",
]

# The reference has no texts for these two; they are [INFERRED] by analogy with the documented ones.
INVALID_APP_SECRET = ErrorSpec(36009004, "Invalid credentials. The `app_secret` query parameter is invalid.", 401)
INVALID_REFRESH_TOKEN = ErrorSpec(36004004, "Invalid refresh token.", 200)


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def authorize(sb: TikTokSandbox, request: Request) -> Response:
    """The seller sees the consent page and clicks "authorize" (or "deny" with `decision=deny`)."""
    q = request.query_params
    if q.get("service_id") != sb.config.service_id and q.get("app_key") != sb.config.app_key:
        return PlainTextResponse("Unknown service_id: this app is not registered.", status_code=400)
    state = q.get("state", "")
    if q.get("decision") == "deny":
        target = _with_query(sb.config.redirect_url, {"code": "null", "error": "auth_denied", "state": state})
        return RedirectResponse(target, status_code=302)
    seller_id = q.get("seller_id")
    seller = sb.world.get(Seller, seller_id) if seller_id else default_seller(sb)
    if seller is None:
        return PlainTextResponse(f"Unknown seller_id {seller_id}.", status_code=400)
    code = AuthCode(
        id=sb.ids.auth_code(),
        seller_id=seller.id,
        expires_at=sb.clock.now_s() + sb.world.settings.auth_code_ttl_seconds,
    )
    sb.world.save(code)
    sb.world.commit()
    return RedirectResponse(_with_query(sb.config.redirect_url, {"code": code.id, "state": state}), 302)


def _check_app(sb: TikTokSandbox, request: Request, grant_type: str) -> None:
    q = request.query_params
    if q.get("app_key") != sb.config.app_key:
        raise errors.INVALID_APP_KEY.error()
    if q.get("app_secret") != sb.config.app_secret:
        raise INVALID_APP_SECRET.error()
    if q.get("grant_type") != grant_type:
        raise invalid_parameter("grant_type", f"unexpected value {q.get('grant_type')!r}", grant_type)


def _issue(sb: TikTokSandbox, seller: Seller, refresh_expires_at: int | None = None) -> Token:
    now = sb.clock.now_s()
    settings = sb.world.settings
    token = Token(
        id=sb.ids.access_token(),
        seller_id=seller.id,
        refresh_token=sb.ids.refresh_token(),
        access_expires_at=now + settings.access_token_ttl_seconds,
        refresh_expires_at=refresh_expires_at or now + settings.refresh_token_ttl_seconds,
        granted_scopes=list(GRANTED_SCOPES),
    )
    sb.world.save(token)
    return token


def _token_data(token: Token, seller: Seller) -> dict[str, Any]:
    return {
        "access_token": token.id,
        "access_token_expire_in": token.access_expires_at,
        "refresh_token": token.refresh_token,
        "refresh_token_expire_in": token.refresh_expires_at,
        "open_id": seller.id,
        "seller_name": seller.name,
        "seller_base_region": seller.base_region,
        "user_type": 0,
        "granted_scopes": token.granted_scopes,
    }


def _respond(sb: TikTokSandbox, data: dict[str, Any]) -> JSONResponse:
    sb.world.commit()
    # The token endpoints answer "success" in lower case (doc sample), unlike the Open API's "Success".
    return JSONResponse(envelope(0, "success", sb.ids.request_id(sb.clock.now()), data))


def get_token(sb: TikTokSandbox, request: Request) -> JSONResponse:
    request_id = sb.ids.request_id(sb.clock.now())
    try:
        _check_app(sb, request, "authorized_code")
        code = sb.world.get(AuthCode, request.query_params.get("auth_code", ""))
        if code is None or code.used or code.expires_at <= sb.clock.now():
            raise errors.INVALID_AUTH_CODE.error()
        code.used = True
        sb.world.save(code)
        seller = sb.world.get(Seller, code.seller_id)
        if seller is None:
            raise errors.INVALID_AUTH_CODE.error()
        return _respond(sb, _token_data(_issue(sb, seller), seller))
    except ApiError as exc:
        sb.world.commit()
        return error_response(exc, request_id)


def refresh_token(sb: TikTokSandbox, request: Request) -> JSONResponse:
    request_id = sb.ids.request_id(sb.clock.now())
    try:
        _check_app(sb, request, "refresh_token")
        given = request.query_params.get("refresh_token", "")
        old = next((t for t in sb.world.table(Token).values() if t.refresh_token == given), None)
        if old is None or old.refresh_used or old.refresh_expires_at <= sb.clock.now():
            raise INVALID_REFRESH_TOKEN.error()
        seller = sb.world.get(Seller, old.seller_id)
        if seller is None:
            raise INVALID_REFRESH_TOKEN.error()
        # Rotation: the old refresh token is spent; the old access token lives until its own expiry.
        old.refresh_used = True
        sb.world.save(old)
        return _respond(sb, _token_data(_issue(sb, seller, old.refresh_expires_at), seller))
    except ApiError as exc:
        sb.world.commit()
        return error_response(exc, request_id)
