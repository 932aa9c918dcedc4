"""The protocol's one error shape, ``{"error": {"code", "message", "details"}}`` (docs/pos-protocol.md §4), raised as
:class:`PosError` anywhere in the sandbox and answered by the app's handler."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


class PosError(Exception):
    """A request the POS refuses: its HTTP status, a machine-readable code, words for a person, and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.code, self.message, self.details), self.status, headers=self.headers)


def unknown_task(**key: str) -> PosError:
    (name, value), *_ = key.items()
    return PosError(404, "unknown_task", f"no task has {name} {value}", dict(key))


def unknown_location(location_id: str) -> PosError:
    return PosError(404, "unknown_location", f"no location {location_id}", {"location_id": location_id})


def location_offline(location_id: str, retry_after: int) -> PosError:
    return PosError(
        503,
        "location_offline",
        f"{location_id} is offline; try again later",
        {"location_id": location_id, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )
