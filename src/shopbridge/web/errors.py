"""One error body for the whole API: ``{"detail": "<one readable line>"}``, and for a request that fails validation
also ``"errors"``, each problem with where it is (``loc``), pydantic's message and its type. Routes declare the
refusals they can answer with ``responses=refusals(...)`` so the OpenAPI document says so."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

_PLACES = ("body", "query", "path", "header", "cookie")
_SHOWN_PROBLEMS = 3
_SHOWN_INPUT = 60


class Problem(BaseModel):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "counts", 1, "on_hand"] or ["query", "limit"].')
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="pydantic's error type, e.g. missing or int_parsing.")


class ErrorBody(BaseModel):
    """What every refusal of the API answers."""

    detail: str = Field(description="What was wrong, in one line naming the field.")
    errors: list[Problem] | None = Field(
        default=None, description="Present when the request failed validation: every problem found."
    )


_MEANINGS = {
    400: "The request cannot be used as it is (a cursor this API did not give out, a body that is not UTF-8).",
    401: "No API token, or one the hub does not know (`Authorization: Bearer <token>`).",
    403: "The token's role may not do this.",
    404: "Not found.",
    409: "Conflicts with the current state (e.g. the SKU's stock is kept by the other side).",
    413: "The body is larger than this route accepts.",
    422: "A parameter or the body is invalid (too deeply nested JSON, a NUL character, a bad field: named).",
    503: "Not available on this hub (e.g. no TikTok app configured).",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these statuses with an ErrorBody."""
    return {status: {"model": ErrorBody, "description": _MEANINGS[status]} for status in statuses}


def readable(problems: Sequence[Any]) -> str:
    """One line for a client's log: the first few problems, each naming its field and what it was given."""
    lines = [_line(problem) for problem in problems[:_SHOWN_PROBLEMS]]
    if len(problems) > _SHOWN_PROBLEMS:
        lines.append(f"and {len(problems) - _SHOWN_PROBLEMS} more")
    return "; ".join(lines)


def _field(loc: Sequence[Any]) -> str:
    parts = list(loc[1:] if loc and loc[0] in _PLACES else loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    if not name:
        return "the body" if loc and loc[0] == "body" else "the request"
    return name


def _line(problem: Any) -> str:
    kind, message = str(problem.get("type", "")), str(problem.get("msg", ""))
    if kind == "json_invalid":
        reason = (problem.get("ctx") or {}).get("error")
        return "the body is not valid JSON" + (f" ({reason})" if reason else "")
    field = _field(problem.get("loc", ()))
    if kind == "missing":
        return f"{field} is required"
    for prefix in ("Input should ", "String should ", "List should ", "Value should ", "Dictionary should "):
        if message.startswith(prefix):
            message = f"{field} must {message.removeprefix(prefix)}"
            break
    else:
        reason = message.removeprefix("Value error, ")
        message = f"{field} {reason}" if reason.startswith("must ") else f"{field}: {reason}"
    return message + _given(problem.get("input"))


def _given(value: Any) -> str:
    if isinstance(value, str):
        shown = repr(value if len(value) <= _SHOWN_INPUT else value[:_SHOWN_INPUT] + "...")
    elif value is None or isinstance(value, bool | int | float):
        shown = json.dumps(value)
    else:
        return ""
    return f", got {shown}"


async def validation_refused(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's handler for RequestValidationError, answering the API's one error body."""
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    listed = [{"loc": list(problem.get("loc", ())), "msg": str(problem.get("msg", "")),
               "type": str(problem.get("type", ""))} for problem in problems]  # fmt: skip
    return JSONResponse({"detail": readable(problems), "errors": listed}, status_code=422)
