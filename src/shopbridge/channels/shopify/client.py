"""The Shopify GraphQL Admin API client (reference §1, §2, §11): the access token header, the calculated-cost
bucket read from every answer's ``extensions.cost`` (a call waits for the points it needs instead of being
throttled), THROTTLED answered with 200 or 429 waited out with the reference's formula, 5xx and transport errors
retried a few times, and every failure turned into one of the work engine's error classes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from shopbridge.runtime.errors import Deferred, PermanentError, ReauthRequired, RetryableError

API_VERSION = "2026-07"
MAX_PAGE = 250
# A call waits this long in its worker at most for the store's cost bucket (or a THROTTLED answer); a longer wait
# gives the worker back to other work and the job comes back when the bucket should hold enough (Deferred: no
# attempt used up), so a store at its cost limit never starves the marketplace's jobs, nor fails one.
MAX_WAIT_SECONDS = 1.0
TRANSPORT_TRIES = 3


class ShopifyError(Exception):
    """A failed call, with what Shopify said (its message and code) so a person can act on it."""

    retry_after: float | None = None

    def __init__(self, message: str, *, code: str | None = None, http_status: int = 0,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(f"Shopify {code}: {message}" if code else f"Shopify: {message}")
        self.code = code
        self.platform_message = message
        self.http_status = http_status
        self.retry_after = retry_after


class ShopifyRetryable(ShopifyError, RetryableError):
    """Throttled past the wait a call may take, server trouble, a timeout: try again later."""


class ShopifyBusy(ShopifyError, Deferred):
    """The store's cost bucket needs longer to refill than a call waits in its worker: run the job again then."""


class ShopifyPermanent(ShopifyError, PermanentError):
    """A query or input Shopify refuses, or an access scope the app lacks: retrying cannot help."""


class ShopifyReauth(ShopifyError, ReauthRequired):
    """401: the token was revoked or the app uninstalled; someone must reconnect the store."""


@dataclass(frozen=True)
class UserError:
    field: list[str] | None
    message: str
    code: str | None = None

    def __str__(self) -> str:
        where = ".".join(self.field or [])
        return f"{where}: {self.message}" if where else self.message


class UserErrors(ShopifyPermanent):
    """A mutation's ``userErrors``: Shopify refused what was asked (a business rule); the messages say why."""

    def __init__(self, mutation: str, errors: list[UserError]) -> None:
        super().__init__(f"{mutation} refused: " + "; ".join(str(e) for e in errors), code=errors[0].code)
        self.errors = errors


def user_errors(payload: Mapping[str, Any] | None, key: str = "userErrors") -> list[UserError]:
    rows = (payload or {}).get(key) or []
    return [UserError(row.get("field"), str(row.get("message")), row.get("code")) for row in rows]


class CostBucket:
    """What this client last learned of the store's bucket: points available at a moment, and the restore rate.
    Calls wait here until the bucket should hold what they ask for, so a busy connector slows down instead of
    being throttled."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.available: float | None = None
        self.maximum = 1000.0
        self.restore_rate = 50.0
        self._seen_at = 0.0

    def wait_for(self, cost: float) -> float:
        with self._lock:
            if self.available is None:
                return 0.0
            now = self._clock()
            have = min(self.maximum, self.available + (now - self._seen_at) * self.restore_rate)
            need = min(cost, self.maximum)
            return 0.0 if have >= need else (need - have) / self.restore_rate

    def spend(self, cost: float) -> None:
        with self._lock:
            if self.available is not None:
                now = self._clock()
                self.available = min(self.maximum, self.available + (now - self._seen_at) * self.restore_rate) - cost
                self._seen_at = now

    def learn(self, throttle: Mapping[str, Any]) -> None:
        with self._lock:
            self.maximum = float(throttle.get("maximumAvailable") or self.maximum)
            self.restore_rate = float(throttle.get("restoreRate") or self.restore_rate)
            self.available = float(throttle.get("currentlyAvailable") or 0.0)
            self._seen_at = self._clock()


@dataclass(frozen=True)
class Store:
    """Where one store's Admin API answers, and the token that opens it."""

    shop_domain: str
    access_token: str
    api_version: str = API_VERSION
    base_url: str | None = None  # instead of https://{shop_domain}: a sandbox or a proxy

    @property
    def admin_url(self) -> str:
        return (self.base_url or f"https://{self.shop_domain}").rstrip("/")

    @property
    def graphql_url(self) -> str:
        return f"{self.admin_url}/admin/api/{self.api_version}/graphql.json"


class ShopifyClient:
    """One store's GraphQL client; safe to share between a worker's threads."""

    def __init__(
        self,
        store: Store,
        http: httpx.Client,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = MAX_WAIT_SECONDS,
    ) -> None:
        self.store = store
        self.http = http
        self.bucket = CostBucket(clock)
        self.sleep = sleep
        self.max_wait = max_wait
        self.calls = 0
        self.throttled = 0

    def query(self, document: str, variables: Mapping[str, Any] | None = None, *, cost: float = 10.0) -> dict[str, Any]:
        """Run a query or mutation and return its ``data``; ``cost`` is what the call is expected to ask of the
        bucket (a mutation costs 10), so it waits for that first."""
        waited = 0.0
        transport_failures = 0
        while True:
            pause = self.bucket.wait_for(cost)
            if pause:
                waited = self._pause(pause, waited)
                continue
            self.bucket.spend(cost)
            try:
                response = self.http.post(
                    self.store.graphql_url, json={"query": document, "variables": dict(variables or {})},
                    headers={"X-Shopify-Access-Token": self.store.access_token, "Accept": "application/json"},
                )  # fmt: skip
            except httpx.TransportError as error:
                transport_failures += 1
                if transport_failures >= TRANSPORT_TRIES:
                    raise ShopifyRetryable(
                        f"{type(error).__name__} calling {self.store.shop_domain}: {error}"
                    ) from error
                self.sleep(
                    0.2 * 2 ** (transport_failures - 1)
                )  # server trouble: a short backoff, not the bucket's wait
                continue
            self.calls += 1
            body = _json(response)
            throttle = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus")
            if throttle:
                self.bucket.learn(throttle)
            if response.status_code == 429 or _code(body) == "THROTTLED":
                self.throttled += 1
                waited = self._pause(_throttle_wait(response, body, cost), waited)
                continue
            if response.status_code >= 500:
                transport_failures += 1
                if transport_failures >= TRANSPORT_TRIES:
                    raise ShopifyRetryable(f"HTTP {response.status_code} from {self.store.shop_domain}",
                                           http_status=response.status_code)  # fmt: skip
                self.sleep(
                    0.2 * 2 ** (transport_failures - 1)
                )  # server trouble: a short backoff, not the bucket's wait
                continue
            return _data(response, body)

    def _pause(self, seconds: float, waited: float) -> float:
        if waited + seconds > self.max_wait:
            raise ShopifyBusy(
                f"Shopify's cost bucket of {self.store.shop_domain} needs {seconds:.1f} s more", retry_after=seconds
            )
        self.sleep(seconds)
        return waited + seconds

    def mutate(self, document: str, variables: Mapping[str, Any], field: str,
               *, errors_key: str = "userErrors") -> dict[str, Any]:  # fmt: skip
        """A mutation whose payload's ``userErrors`` (or ``errors_key``) become UserErrors."""
        payload = self.query(document, variables).get(field) or {}
        problems = user_errors(payload, errors_key)
        if problems:
            raise UserErrors(field, problems)
        return dict(payload)

    def nodes(self, document: str, variables: Mapping[str, Any], path: tuple[str, ...],
              *, page_size: int = MAX_PAGE) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every node of a connection, page by page: ``document`` takes ``$first`` and ``$after``, and ``path``
        leads from ``data`` to the connection (``("products",)``)."""
        after: str | None = None
        while True:
            data = self.query(document, {**variables, "first": page_size, "after": after}, cost=2 + page_size)
            connection: Any = data
            for key in path:
                connection = (connection or {}).get(key)
            connection = connection or {}
            yield from connection.get("nodes") or []
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info.get("endCursor")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(body: Mapping[str, Any]) -> str | None:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return (errors[0].get("extensions") or {}).get("code")
    return None


def _throttle_wait(response: httpx.Response, body: Mapping[str, Any], cost: float) -> float:
    """(cost - available) / restore rate (reference §2.1), or Retry-After, or a second."""
    cost_info = (body.get("extensions") or {}).get("cost") or {}
    throttle = cost_info.get("throttleStatus") or {}
    needed = float(cost_info.get("actualQueryCost") or cost_info.get("requestedQueryCost") or cost)
    rate = float(throttle.get("restoreRate") or 0)
    if rate > 0:
        return max(0.05, (needed - float(throttle.get("currentlyAvailable") or 0)) / rate)
    retry_after = response.headers.get("Retry-After")
    try:
        return max(0.05, float(retry_after)) if retry_after else 1.0
    except ValueError:
        return 1.0


def _data(response: httpx.Response, body: dict[str, Any]) -> dict[str, Any]:
    status = response.status_code
    errors = body.get("errors")
    if status == 401:
        raise ShopifyReauth(str(errors or "invalid API key or access token"), http_status=status)
    if status in (402, 423):
        raise ShopifyRetryable(f"the store is frozen or locked (HTTP {status}): {errors}", http_status=status,
                               retry_after=300)  # fmt: skip
    if status == 403 or status == 404 or status >= 400:
        raise ShopifyPermanent(f"HTTP {status}: {errors or response.text[:200]}", http_status=status)
    if errors:
        first = errors[0] if isinstance(errors, list) and errors else {"message": str(errors)}
        code = (first.get("extensions") or {}).get("code") if isinstance(first, dict) else None
        message = "; ".join(str(e.get("message")) if isinstance(e, dict) else str(e) for e in errors)
        raise ShopifyPermanent(message, code=code, http_status=status)
    data = body.get("data")
    if not isinstance(data, dict):
        raise ShopifyRetryable(f"an answer without data (HTTP {status})", http_status=status)
    return data
