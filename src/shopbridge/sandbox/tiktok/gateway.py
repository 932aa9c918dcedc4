"""The Open API gateway: routing, signature and credential checks, rate limits, faults and the envelope.

Checks run in the order the live gateway was observed to apply them (reference §2.3, Appendix C): the path,
then `app_key` (rejected before the signature), `sign`, `timestamp`, the signature itself, the access token,
`shop_cipher`, then rate limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from . import errors
from .errors import ApiError, invalid_parameter
from .faults import decide
from .models import EndpointFault, RateLimit, Seller, Shop, Token
from .signing import verify
from .state import World

if TYPE_CHECKING:
    from .runtime import TikTokSandbox

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
# A handler always answers an object: the envelope's `data` is `null` on errors only (§2.3).
Handler = Callable[["Call"], dict[str, Any]]

TIMESTAMP_PAST_SECONDS = 300
TIMESTAMP_FUTURE_SECONDS = 30
# The RateLimit id of the optional bucket shared by every path of a shop ("50 requests/s per shop").
SHOP_WIDE = "shop"


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    handler: Handler
    shop_scoped: bool = True
    # Uploads take multipart/form-data and nothing else.
    multipart: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template) + "$"
        object.__setattr__(self, "pattern", re.compile(regex))

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


class Router:
    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = list(endpoints)

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        path_matched = False
        for endpoint in self.endpoints:
            found = endpoint.pattern.match(path)
            if found is None:
                continue
            path_matched = True
            if endpoint.method == method:
                return endpoint, found.groupdict()
        raise (errors.INVALID_METHOD if path_matched else errors.INVALID_PATH).error()


@dataclass
class Call:
    """One authenticated API call as a handler sees it."""

    sb: TikTokSandbox
    endpoint: Endpoint
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    raw_body: bytes
    request_id: str
    seller: Seller
    shop: Shop | None
    # Where the sandbox is being reached, for URLs it hands out (shipping documents).
    base_url: str = ""
    # The request's Content-Type header as sent (with its parameters): uploads read their boundary from it.
    content_type: str = ""

    @property
    def world(self) -> World:
        return self.sb.world

    @property
    def now(self) -> int:
        return self.sb.clock.now_s()

    def require_shop(self) -> Shop:
        assert self.shop is not None, "shop-scoped endpoint without a shop"
        return self.shop

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def values(self, name: str) -> list[str]:
        """A list parameter sent repeated (`ids=a&ids=b`) or comma-joined (`ids=a,b`)."""
        out: list[str] = []
        for k, v in self.query:
            if k == name:
                out.extend(part for part in v.split(",") if part)
        return out

    def int_param(self, name: str, *, default: int | None = None, low: int = 0, high: int = 2**62) -> int | None:
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?\d+", raw):
            raise invalid_parameter(name, f"{raw!r} is not an integer", f"an integer in [{low}, {high}]")
        value = int(raw)
        if not low <= value <= high:
            raise invalid_parameter(name, f"{value} is out of range", f"an integer in [{low}, {high}]")
        return value

    def page_size(self, maximum: int, *, required: bool = True, default: int = 20) -> int:
        size = self.int_param("page_size", low=1, high=maximum)
        if size is None:
            if required:
                raise invalid_parameter("page_size", "missing", f"an integer in [1, {maximum}]")
            return default
        return size

    def enum_param(self, name: str, allowed: Sequence[str], default: str) -> str:
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        if raw not in allowed:
            raise invalid_parameter(name, f"unknown value {raw!r}", " | ".join(allowed))
        return raw

    def json(self) -> dict[str, Any]:
        if not self.raw_body.strip():
            return {}
        try:
            value = json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_parameter("body", "the body is not valid JSON", "a JSON object") from exc
        if not isinstance(value, dict):
            raise invalid_parameter("body", "the body is not a JSON object", "a JSON object")
        return value

    def body(self, model: type[M]) -> M:
        payload = self.json()
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise validation_error(exc) from exc


def validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"]) or "body"
    ctx = first.get("ctx") or {}
    expected = str(ctx.get("expected", first["type"]))
    return invalid_parameter(name, first["msg"], expected)


def envelope(code: int, message: str, request_id: str, data: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": request_id, "data": data}


def error_response(exc: ApiError, request_id: str) -> JSONResponse:
    return JSONResponse(
        envelope(exc.code, exc.message, request_id, None), status_code=exc.http_status, headers=exc.headers
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Gateway:
    def __init__(self, sandbox: TikTokSandbox, router: Router) -> None:
        self.sb = sandbox
        self.router = router

    async def __call__(self, request: Request) -> JSONResponse:
        sb = self.sb
        request_id = sb.ids.request_id(sb.clock.now())
        try:
            data = await self._handle(request, request_id)
        except ApiError as exc:
            sb.world.commit()
            response = error_response(exc, request_id)
            self._count(request, response.status_code, exc.code)
            return response
        except Exception:
            # A sandbox bug must still look like the gateway: the caller sees 36009003, the log has the trace.
            log.exception("sandbox handler failed")
            sb.world.commit()
            failure = errors.INTERNAL_ERROR.error()
            self._count(request, failure.http_status, failure.code)
            return error_response(failure, request_id)
        sb.world.commit()
        self._count(request, 200, 0)
        return JSONResponse(envelope(0, "Success", request_id, data))

    def _count(self, request: Request, http_status: int, code: int) -> None:
        """Every answer the Partner API gave, by endpoint, HTTP status and code (`/_sandbox/truth/api_calls`)."""
        endpoint = getattr(request.state, "sandbox_endpoint", None) or "unmatched"
        self.sb.api_calls[(endpoint, http_status, code)] += 1

    async def _handle(self, request: Request, request_id: str) -> dict[str, Any]:
        sb = self.sb
        endpoint, path_params = self.router.match(request.method, request.url.path)
        request.state.sandbox_endpoint = endpoint.key
        query = list(request.query_params.multi_items())
        params = dict(reversed(query))  # first value wins for single-valued parameters

        if params.get("app_key") != sb.config.app_key:
            raise errors.INVALID_APP_KEY.error()
        given_sign = params.get("sign")
        if not given_sign:
            raise errors.MISSING_SIGN.error()
        self._check_timestamp(params.get("timestamp"))
        body = await request.body()
        media_type = _media_type(request)
        if endpoint.multipart and media_type != "multipart/form-data":
            raise errors.MULTIPART_REQUIRED.error()
        if body and media_type not in ("application/json", "multipart/form-data"):
            raise errors.INVALID_BODY_FORMAT.error()
        if not verify(sb.config.app_secret, request.url.path, query, body, media_type, given_sign):
            raise errors.INVALID_SIGN.error()

        token_value = request.headers.get("x-tts-access-token") or params.get("access_token")
        token = sb.world.get(Token, token_value) if token_value else None
        if token is None:
            raise errors.INVALID_TOKEN.error()
        if token.access_expires_at <= sb.clock.now():
            raise errors.EXPIRED_TOKEN.error()
        seller = sb.world.get(Seller, token.seller_id)
        if seller is None:
            raise errors.INVALID_TOKEN.error()

        cipher = params.get("shop_cipher")
        shop: Shop | None = None
        if endpoint.shop_scoped:
            if not cipher:
                raise errors.MISSING_SHOP_CIPHER.error()
            shop_id = sb.world.shop_by_cipher.get(cipher)
            if shop_id is None or shop_id not in seller.shop_ids:
                raise errors.SHOP_MISMATCH.error()
            shop = sb.world.get(Shop, shop_id)
        elif cipher is not None:
            raise errors.UNEXPECTED_SHOP_CIPHER.error()

        self._check_rate(endpoint, cipher or "")
        await self._inject_faults(endpoint)

        sb.tick()
        base_url = str(request.base_url).rstrip("/")
        content_type = request.headers.get("content-type", "")
        call = Call(sb, endpoint, path_params, query, body, request_id, seller, shop, base_url, content_type)
        return endpoint.handler(call)

    def _check_timestamp(self, raw: str | None) -> None:
        if raw is None or not re.fullmatch(r"-?\d+", raw) or int(raw) < 0:
            raise errors.TIMESTAMP_NEGATIVE.error()
        # Request timestamps are checked against real time, so advancing the sandbox clock never breaks signing.
        now = self.sb.clock.wall()
        value = int(raw)
        if value < now - TIMESTAMP_PAST_SECONDS:
            raise errors.TIMESTAMP_TOO_OLD.error()
        if value > now + TIMESTAMP_FUTURE_SECONDS:
            raise errors.TIMESTAMP_TOO_NEW.error()

    def _check_rate(self, endpoint: Endpoint, cipher: str) -> None:
        sb = self.sb
        # Optional: one bucket per (app, shop) that every path of the shop draws from, on top of the per-path ones.
        shop_wide = sb.world.get(RateLimit, SHOP_WIDE) if cipher else None
        if shop_wide is not None:
            self._take((sb.config.app_key, cipher, SHOP_WIDE), shop_wide.qps, shop_wide.burst)
        limit = sb.world.get(RateLimit, endpoint.template) or sb.world.get(RateLimit, "*")
        qps = limit.qps if limit else sb.world.settings.rate_limit_qps
        burst = limit.burst if limit else sb.world.settings.rate_limit_burst
        self._take((sb.config.app_key, cipher, endpoint.template), qps, burst)

    def _take(self, key: tuple[str, str, str], qps: float, burst: int) -> None:
        wait = self.sb.limiter.take(key, qps=qps, burst=burst, now=self.sb.clock.wall())
        if wait is not None:
            retry_after = "3600" if wait == float("inf") else str(max(1, int(wait + 0.999)))
            raise errors.TOO_MANY_REQUESTS.error(**{"Retry-After": retry_after})

    async def _inject_faults(self, endpoint: Endpoint) -> None:
        sb = self.sb
        fault = sb.world.get(EndpointFault, endpoint.key) or sb.world.get(EndpointFault, "*")
        if fault is None:
            return
        decision = decide(fault, sb.rng)
        if decision.latency_seconds:
            await sb.sleep(decision.latency_seconds)
        if decision.action == "timeout":
            await sb.sleep(decision.timeout_seconds)
            raise errors.REQUEST_TIMEOUT.error()
        if decision.action == "throttle":
            raise errors.TOO_MANY_REQUESTS.error(**{"Retry-After": "1"})
        if decision.action == "error":
            spec = errors.INJECTABLE.get(decision.error_code)
            if spec is not None:
                raise spec.error()
            raise ApiError(decision.error_code, "Injected error.", 200)


async def real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
