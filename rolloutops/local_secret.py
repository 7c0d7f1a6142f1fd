"""A secret generated once and kept in a file under var/, for the embedded set-up (no Django here:
the settings module uses it)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def persisted_secret(path: Path) -> str:
    """A random secret generated on first use and kept in `path` (mode 0600), for the embedded
    set-up only. Written to a private file first and linked into place, so processes starting
    together (the demo's web server and worker) all end up with the same value."""
    try:
        value = path.read_text().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(draft, path)  # fails if another process got there first: theirs wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()
