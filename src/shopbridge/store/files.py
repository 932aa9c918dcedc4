"""Files and directories the hub creates hold its databases and its key: they are made owner-only, whatever the
umask, and what exists already keeps the mode its owner gave it."""

from __future__ import annotations

import os
from pathlib import Path


def make_private_dirs(path: Path) -> None:
    """Create the directory ``path`` and any missing parents, owner-only (0700, whatever the umask): the data
    directory holds the databases and the secret key. A directory that exists already keeps its mode, as the user
    (or the administrator) made it."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made by another process at the same moment: its mode is its maker's business
        directory.chmod(0o700)  # mkdir's mode is masked by the umask, which may take the owner's own bits too


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty and owner-only (0600) unless it exists already (then leave it, and its mode, alone).
    Returns whether it was created. Programs that later open the file (SQLite, for the databases) keep its mode,
    and SQLite gives the -wal, -shm and journal files it creates beside a database the database file's mode."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(descriptor, 0o600)  # the umask may have taken the owner's bits
    finally:
        os.close(descriptor)
    return True
