"""Checkpoints of the audit chain's head, written outside the database — a JSON log line, an
append-only file, `/metrics`, optionally a webhook — and read back by `verify_audit`. Whoever can
rewrite the audit table cannot reach these copies, nor forge new ones without the key."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .audit import Checkpoint, checkpoint_make
from .models import AuditCheckpoint, AuditEntry
from .notifications import notify

log = logging.getLogger("rolloutops.audit.checkpoint")

_REQUIRED = ("at", "seq", "head_hash", "key_id", "mac")


def audit_checkpoint() -> Checkpoint:
    """Seal, state the head under the key, and publish the statement everywhere it is kept."""
    checkpoint = checkpoint_make()
    record = checkpoint.record()
    log.info("audit checkpoint", extra=record)
    if settings.AUDIT_CHECKPOINT_FILE:
        _append(Path(settings.AUDIT_CHECKPOINT_FILE), record)
    if settings.AUDIT_CHECKPOINT_WEBHOOK:
        notify(kind="audit.checkpoint", summary=f"Audit chain checkpoint: {checkpoint.seq} entries", payload=record)
    return checkpoint


def _append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def checkpoints_read(path: Path) -> tuple[list[Checkpoint], int]:
    """Checkpoints found in a file of JSON lines: our checkpoint file, or a log that holds our
    log lines among others (anything before the first "{" on a line, such as a log shipper's
    prefix, is ignored). Returns (checkpoints, lines that looked like one but could not be read)."""
    found, unreadable = [], 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            start = line.find("{")
            if start < 0 or '"mac"' not in line:
                continue
            try:
                data = json.loads(line[start:])
                if not isinstance(data, dict) or not all(k in data for k in _REQUIRED):
                    continue
                found.append(Checkpoint.from_record(data, source=f"{path.name} line {number}"))
            except (ValueError, TypeError, KeyError):
                unreadable += 1
    return found, unreadable


def audit_checkpoint_metrics() -> dict:
    """Plain values for /metrics: the newest checkpoint (None values before the first) and the
    entries not yet sealed. A scraper that stores these keeps one more copy outside the database."""
    latest = AuditCheckpoint.objects.order_by("-id").first()
    values = {
        "unsealed_entries": AuditEntry.objects.filter(seq__isnull=True).count(),
        "checkpoint_timestamp_seconds": None, "checkpoint_age_seconds": None, "checkpoint_entries": None,
        "checkpoint_head_id": None, "checkpoint_head_hash": None, "checkpoint_key_id": None, "checkpoint_mac": None,
        "checkpoint_at": None,
    }
    if latest is not None:
        values.update({
            "checkpoint_timestamp_seconds": latest.at.timestamp(),
            "checkpoint_age_seconds": (timezone.now() - latest.at).total_seconds(),
            "checkpoint_entries": latest.seq, "checkpoint_head_id": latest.head_id,
            "checkpoint_head_hash": latest.head_hash, "checkpoint_key_id": latest.key_id, "checkpoint_mac": latest.mac,
            "checkpoint_at": Checkpoint.from_row(latest).record()["at"],  # the exact time the MAC covers
        })
    return values
