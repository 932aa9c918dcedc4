"""The sandbox-and-hub world of the demo, with the small catalogue the intake tests sell from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shopbridge.demo.world import World, running_world, wait_until

SKUS = {"TEE-M": "19.90", "TEE-L": "19.90", "MUG": "8.50"}

__all__ = ["SKUS", "World", "tiktok_world", "wait_until"]


@contextmanager
def tiktok_world(database_url: str, data_dir: Path, **options: Any) -> Iterator[World]:
    with running_world(database_url, data_dir, skus=SKUS, **options) as world:
        yield world
