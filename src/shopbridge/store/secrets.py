"""Channel credentials are encrypted at rest with Fernet; the key comes from config or, for the embedded
default only, is generated once into the data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from shopbridge.store.files import make_private_dirs


class SecretKeyMissing(Exception):
    pass


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyMissing(
                "SHOPBRIDGE_SECRET_KEY: expected a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, secrets: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode())

    def open(self, token: bytes, *, ttl: int | None = None) -> dict[str, Any]:
        """Decrypt; with ``ttl`` a token older than that many seconds is refused like a forged one."""
        try:
            opened: dict[str, Any] = json.loads(self._fernet.decrypt(token, ttl=ttl))
        except InvalidToken:
            raise SecretKeyMissing(
                "credentials cannot be decrypted with the configured SHOPBRIDGE_SECRET_KEY"
            ) from None
        return opened


def load_or_create_key(data_dir: Path) -> str:
    """The embedded default's key file, created owner-only (0600, in a data directory the hub creates 0700) on
    first run."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    make_private_dirs(data_dir)
    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(fd, 0o600)  # whatever the umask
        handle.write(key + "\n")
    return key
