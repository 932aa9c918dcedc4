"""Request body limits, enforced while the body arrives and before any route (so before a webhook's signature check).

A forged webhook or API call cannot make the hub hold more than its route's limit: a Content-Length past it is
refused at once, and a body without one (chunked) is counted as its ASGI ``http.request`` messages arrive and refused
with 413 at the first message past the limit. The API's JSON bodies are also refused when nested deeper than
``JSON_DEPTH`` (the parser would recurse into them) or when they, the path or the query carry a NUL character
(PostgreSQL cannot store one in text). The figures are documented in docs/operations.md, *Limits and headers*."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KiB, MiB = 1024, 1024 * 1024
JSON_DEPTH = 32


@dataclass(frozen=True)
class BodyLimit:
    max_bytes: int
    api: bool  # a JSON API route: depth and NUL checks

    @property
    def shown(self) -> str:
        return f"{self.max_bytes // MiB} MiB" if self.max_bytes % MiB == 0 else f"{self.max_bytes // KiB} KiB"


# TikTok's largest notifications (a package update listing its orders, a chat message) are a few KiB.
WEBHOOK = BodyLimit(256 * KiB, api=False)
API = BodyLimit(1 * MiB, api=True)
OTHER = BodyLimit(1 * MiB, api=False)
ROUTES = {"/api/v1/stock/levels": BodyLimit(4 * MiB, api=True)}  # up to 10,000 counted rows


def limit_for(path: str) -> BodyLimit:
    exact = ROUTES.get(path)
    if exact is not None:
        return exact
    if path.startswith("/hooks/"):
        return WEBHOOK
    return API if path.startswith("/api/") else OTHER


class BodyLimits:
    """Plain ASGI middleware: reads the body itself (counting), then hands the route the body it read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"])
        declared = content_type = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                content_type = value
        if limit.api and _nul_in_url(scope):
            await _refuse(send, 422, "the path or query contains a NUL character, which the hub does not accept")
            return
        if declared is not None and declared.isdigit() and int(declared) > limit.max_bytes:
            await _refuse(send, 413, f"the request body is larger than the {limit.shown} this route accepts")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit.max_bytes:
                await _refuse(send, 413, f"the request body is larger than the {limit.shown} this route accepts")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if body and limit.api and (content_type is None or _is_json(content_type)):  # what FastAPI parses as JSON
            if nested_deeper_than(body, JSON_DEPTH):
                await _refuse(send, 422, f"the JSON body is nested more than {JSON_DEPTH} levels deep")
                return
            if _has_nul_escape(body):
                await _refuse(send, 422, "the body contains a NUL character (\\u0000), which the hub does not accept")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # e.g. a disconnect a streaming response listens for
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def nested_deeper_than(body: bytes, depth: int) -> bool:
    """Whether JSON ``body`` nests arrays and objects more than ``depth`` deep, without parsing it: strings removed,
    each pass drops the innermost pairs. Unbalanced openers left over count as nested (``[[[[`` is deep too)."""
    if body.count(b"[") + body.count(b"{") <= depth:
        return False
    brackets = _STRING.sub(b"", body).translate(_AS_SQUARE, _NOT_BRACKET)
    for _ in range(depth):
        shorter = brackets.replace(b"[]", b"")
        if shorter == brackets:
            break
        brackets = shorter
    return b"[]" in brackets or brackets.count(b"[") > depth


def _has_nul_escape(body: bytes) -> bool:
    return b"\\u0000" in body and _NUL_ESCAPE.search(body) is not None


def _nul_in_url(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"%00" in query or b"\x00" in query


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is never read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
