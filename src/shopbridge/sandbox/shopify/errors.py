"""Business errors as GraphQL ``userErrors`` (HTTP 200, reference §11.1).

A payload's ``userErrors`` carry ``field`` (the path to the input that caused it), ``message`` and, for the typed
errors (``OrderCreateUserError``, ``InventorySetQuantitiesUserError``…), a ``code``. A plain ``UserError`` has no
``code`` field; GraphQL then simply never selects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UserErr:
    message: str
    field: list[str] | None = None
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "code": self.code}


def errors_json(errors: list[UserErr]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in errors]


class SandboxError(Exception):
    """A control-API request the world refuses (unknown SKU, nothing to fulfil…): answered as HTTP 4xx."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
