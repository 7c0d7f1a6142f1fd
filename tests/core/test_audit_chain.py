"""The audit trail: entries are recorded unsealed and sealed into one keyed chain; the chain and its
checkpoints verify; every kind of tampering is named by verify_audit; PostgreSQL refuses edits."""
import json
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from rolloutops.audit import (
    ALG_SHA256,
    GENESIS,
    audit_record,
    audit_seal,
    audit_verify,
    entry_digest,
    request_seal,
)
from rolloutops.audit_checkpoints import audit_checkpoint, audit_checkpoint_metrics, checkpoints_read
from rolloutops.audit_keys import key_id
from rolloutops.models import AuditCheckpoint, AuditEntry
from rolloutops.tasks import seal_audit

pytestmark = pytest.mark.django_db

KEY = "test-audit-key-" + "k" * 40


@pytest.fixture(autouse=True)
def audit_settings(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_RETIRED_KEYS = []
    settings.AUDIT_CHECKPOINT_FILE = str(tmp_path / "audit-checkpoints.jsonl")
    return settings


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only triggers exist on PostgreSQL only")


@pytest.fixture
def tamperable():
    """A raw cursor that can change audit rows, as the table's owner could. On PostgreSQL the
    owner first switches the guard off (rolled back with the test)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE rolloutops_auditentry DISABLE TRIGGER USER")
        yield cursor
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE rolloutops_auditentry ENABLE TRIGGER USER")


def _entries(n, actor=None, seal=True):
    made = [audit_record(actor=actor, action="test.thing_changed", object_type="test.thing", object_id=i,
                         object_repr=f"thing {i}", before={"n": i}, after={"n": i + 1, "ratio": 0.1}) for i in range(n)]
    if seal:
        audit_seal()
    for e in made:
        e.refresh_from_db()
    return made


def _verify_audit_failure(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exc:
        call_command("verify_audit", *args)
    assert exc.value.code == 1
    return capsys.readouterr().err


def _recompute_unkeyed(cursor, from_seq: int) -> None:
    """What someone with the database but not the key can do: rehash every entry from a position
    on with the plain algorithm, so every link and every hash is consistent again."""
    prev = AuditEntry.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first() or GENESIS
    for e in AuditEntry.objects.filter(seq__gte=from_seq).order_by("seq"):
        digest = entry_digest(prev_hash=prev, at=e.at, actor_id=e.actor_id, actor_label=e.actor_label, action=e.action,
                              object_type=e.object_type, object_id=e.object_id, object_repr=e.object_repr,
                              before=e.before, after=e.after, source_ip=e.source_ip)
        cursor.execute("UPDATE rolloutops_auditentry SET prev_hash = %s, hash = %s, alg = %s WHERE id = %s",
                       [prev, digest, ALG_SHA256, e.pk])
        prev = digest


# --- recording and sealing ---------------------------------------------------------------------

def test_an_entry_is_recorded_unsealed_and_the_sealer_links_it(operator):
    entry = audit_record(actor=operator, action="rollout.paused", object_type="rollouts.rollout", object_id=7,
                         object_repr="support-bot 1.2", before={"state": "running"}, after={"state": "paused"},
                         source_ip="10.0.0.9")
    entry.refresh_from_db()
    assert (entry.seq, entry.hash, entry.prev_hash, entry.sealed) == (None, None, "", False)
    assert (entry.actor_id, entry.actor_label, entry.source_ip) == (operator.pk, "olivia", "10.0.0.9")
    assert (entry.before, entry.after, entry.object_id) == ({"state": "running"}, {"state": "paused"}, "7")
    assert audit_seal() == 1
    entry.refresh_from_db()
    assert entry.seq == 1 and entry.prev_hash == GENESIS and entry.sealed
    assert entry.alg == f"hmac-sha256:{key_id(KEY.encode())}"
    assert audit_seal() == 0  # nothing left; a second run changes nothing


def test_sealing_links_entries_in_id_order_and_verify_audit_exits_zero(operator, capsys):
    entries = _entries(5, actor=operator)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    call_command("verify_audit")  # returns normally: exit status 0
    assert "audit chain intact: 5 entries verified" in capsys.readouterr().out
    assert audit_verify().checked == AuditEntry.objects.count()


def test_verify_audit_seals_pending_entries_first(capsys):
    _entries(3, seal=False)
    call_command("verify_audit")
    assert "3 entries verified (3 sealed just now)" in capsys.readouterr().out
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()


def test_sealing_in_small_batches_makes_the_same_chain():
    _entries(7, seal=False)
    assert audit_seal(batch=3) == 7
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 8))
    assert audit_verify().intact


def test_recording_asks_for_sealing_after_commit_and_the_task_seals(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        audit_record(actor=None, action="test.thing_changed", object_repr="x")
    assert request_seal in callbacks
    seal_audit()  # what the worker runs
    assert AuditEntry.objects.get().sealed


def test_audit_api_csv_and_page_show_unsealed_entries_as_such(manager, client, api_client_for):
    api = api_client_for(manager)  # its token's issue is audited too, and sealed below
    _entries(1)
    pending = audit_record(actor=None, action="test.pending", object_repr="not yet sealed")
    rows = {r["id"]: r for r in api.get("/api/v1/audit").json()["results"]}
    assert (rows[pending.pk]["sealed"], rows[pending.pk]["seq"], rows[pending.pk]["hash"]) == (False, None, "")
    sealed = [r for r in rows.values() if r["id"] != pending.pk]
    assert [(r["sealed"], r["seq"], len(r["hash"])) for r in sealed] == [(True, 2, 64), (True, 1, 64)]
    client.force_login(manager)
    csv_text = b"".join(client.get("/audit/export.csv").streaming_content).decode()
    header, first = csv_text.splitlines()[:2]
    assert header.endswith(",hash,seq") and first.startswith(f"{pending.pk},") and first.endswith(",,")
    page = client.get("/audit/").content.decode()
    assert page.count("sealing…") == 1


# --- tampering that the chain alone catches ----------------------------------------------------

def test_altered_entry_is_named_by_verify_audit(tamperable, capsys):
    entries = _entries(4)
    victim = entries[2]
    tamperable.execute("UPDATE rolloutops_auditentry SET after = %s WHERE id = %s", ['{"n": 1000}', victim.pk])
    err = _verify_audit_failure(capsys)
    assert f"#{victim.pk}" in err
    assert "altered" in err
    assert audit_verify().first_bad_id == victim.pk


def test_altered_actor_label_is_detected(tamperable):
    entries = _entries(3)
    tamperable.execute("UPDATE rolloutops_auditentry SET actor_label = 'someone-else' WHERE id = %s", [entries[0].pk])
    assert audit_verify().first_bad_id == entries[0].pk


def test_deleted_middle_entry_is_detected_at_the_next_one(tamperable, capsys):
    entries = _entries(5)
    tamperable.execute("DELETE FROM rolloutops_auditentry WHERE id = %s", [entries[2].pk])
    err = _verify_audit_failure(capsys)
    assert f"#{entries[3].pk}" in err
    assert "removed" in err


def test_rehashed_entry_still_breaks_the_link_of_its_successor(tamperable):
    entries = _entries(3)
    tamperable.execute("UPDATE rolloutops_auditentry SET hash = %s WHERE id = %s", ["f" * 64, entries[1].pk])
    assert audit_verify().first_bad_id == entries[1].pk


def test_recomputing_keyed_entries_without_the_key_is_detected(tamperable, capsys):
    # Rewrite one entry and rehash it and everything after it with a key of one's own.
    entries = _entries(4)
    tamperable.execute("UPDATE rolloutops_auditentry SET after = %s WHERE id = %s", ['{"n": -1}', entries[1].pk])
    from rolloutops.audit import keyed_digest

    forged_key = b"a guess"
    prev = entries[0].hash
    for e in AuditEntry.objects.filter(seq__gte=2).order_by("seq"):
        digest = keyed_digest(forged_key, seq=e.seq, entry_id=e.pk, prev_hash=prev, at=e.at, actor_id=e.actor_id,
                              actor_label=e.actor_label, action=e.action, object_type=e.object_type,
                              object_id=e.object_id, object_repr=e.object_repr, before=e.before, after=e.after,
                              source_ip=e.source_ip)
        tamperable.execute("UPDATE rolloutops_auditentry SET prev_hash = %s, hash = %s WHERE id = %s", [prev, digest, e.pk])
        prev = digest
    err = _verify_audit_failure(capsys)
    assert f"entry #{entries[1].pk}: its content does not match its hash" in err


def test_recomputing_with_the_unkeyed_algorithm_after_keyed_entries_is_detected(tamperable):
    entries = _entries(4)
    tamperable.execute("UPDATE rolloutops_auditentry SET after = %s WHERE id = %s", ['{"n": -1}', entries[2].pk])
    _recompute_unkeyed(tamperable, from_seq=3)
    report = audit_verify()
    assert report.first_bad_id == entries[2].pk
    assert "unkeyed algorithm after keyed entries" in report.problem


# --- tampering that only the checkpoints catch -------------------------------------------------

def test_a_checkpoint_is_written_to_the_log_the_file_and_the_database(caplog):
    _entries(3, seal=False)
    with caplog.at_level("INFO", logger="rolloutops.audit.checkpoint"):
        checkpoint = audit_checkpoint()
    head = AuditEntry.objects.get(seq=3)
    assert (checkpoint.seq, checkpoint.head_id, checkpoint.head_hash) == (3, head.pk, head.hash)
    logged = [r for r in caplog.records if r.getMessage() == "audit checkpoint"]
    assert len(logged) == 1 and logged[0].mac == checkpoint.mac and logged[0].seq == 3
    from django.conf import settings

    (line,) = open(settings.AUDIT_CHECKPOINT_FILE).read().splitlines()
    assert json.loads(line) == checkpoint.record()
    assert AuditCheckpoint.objects.get().mac == checkpoint.mac


def test_removing_the_newest_entries_is_detected_by_the_checkpoints(tamperable, capsys):
    entries = _entries(6)
    audit_checkpoint()
    newest = [e.pk for e in entries[-2:]]
    tamperable.execute(f"DELETE FROM rolloutops_auditentry WHERE id IN ({newest[0]}, {newest[1]})")
    # The chain that remains is consistent: only the checkpoint knows it was longer.
    err = _verify_audit_failure(capsys)
    assert "the chain has 4 entries but the checkpoint of" in err
    assert "the newest 2 entries were removed" in err


def test_removal_is_detected_by_a_logged_checkpoint_even_when_the_stored_ones_are_gone(tamperable, tmp_path, capsys,
                                                                                      settings):
    entries = _entries(5)
    checkpoint = audit_checkpoint()
    # The application's log: the checkpoint line among others, with a log shipper's prefix.
    log_file = tmp_path / "app.log"
    log_file.write_text(
        '{"time": "…", "level": "INFO", "logger": "django.request", "message": "GET /"}\n'
        f'2026-01-15T10:00:00Z web-1 {json.dumps({"message": "audit checkpoint", **checkpoint.record()})}\n'
        "not json at all\n")
    settings.AUDIT_CHECKPOINT_FILE = ""
    if connection.vendor == "postgresql":
        tamperable.execute("ALTER TABLE rolloutops_auditcheckpoint DISABLE TRIGGER USER")
    tamperable.execute("DELETE FROM rolloutops_auditcheckpoint")
    tamperable.execute("DELETE FROM rolloutops_auditentry WHERE id = %s", [entries[-1].pk])
    if connection.vendor == "postgresql":  # and covers their tracks
        tamperable.execute("ALTER TABLE rolloutops_auditcheckpoint ENABLE TRIGGER USER")
        tamperable.execute("ALTER TABLE rolloutops_auditentry ENABLE TRIGGER USER")
    call_command("verify_audit")  # nothing left in the database says otherwise
    capsys.readouterr()
    err = _verify_audit_failure(capsys, "--checkpoints", str(log_file))
    assert "the chain has 4 entries but the checkpoint of" in err and "app.log line 2" in err


def test_emptying_the_table_is_detected_by_the_checkpoints(tamperable, capsys):
    _entries(3)
    audit_checkpoint()
    tamperable.execute("DELETE FROM rolloutops_auditentry")
    err = _verify_audit_failure(capsys)
    assert "the chain has 0 entries" in err and "(or the table was emptied)" in err


def test_a_rewritten_and_recomputed_legacy_chain_is_detected_by_the_checkpoints(tamperable, capsys):
    # Entries chained before keyed hashes (plain SHA-256) can be recomputed by anyone; the
    # checkpoint's keyed statement of the head is what catches it.
    _entries(4)
    _recompute_unkeyed(tamperable, from_seq=1)
    audit_checkpoint()  # a checkpoint of the (legacy) chain as it was
    victim = AuditEntry.objects.get(seq=2)
    tamperable.execute("UPDATE rolloutops_auditentry SET actor_label = 'nobody' WHERE id = %s", [victim.pk])
    _recompute_unkeyed(tamperable, from_seq=2)
    assert AuditEntry.objects.get(seq=2).actor_label == "nobody"
    err = _verify_audit_failure(capsys)
    assert "is not the one the checkpoint of" in err and "rewritten and recomputed" in err


def test_a_forged_checkpoint_is_named(tmp_path, capsys):
    _entries(2)
    record = audit_checkpoint().record()
    forged = dict(record, seq=1, head_id=AuditEntry.objects.get(seq=1).pk,
                  head_hash=AuditEntry.objects.get(seq=1).hash)  # the MAC no longer matches
    path = tmp_path / "forged.jsonl"
    path.write_text(json.dumps(forged) + "\n")
    err = _verify_audit_failure(capsys, "--checkpoints", str(path))
    assert "forged.jsonl line 1) does not carry a valid MAC" in err


def test_checkpoints_read_skips_other_lines(tmp_path):
    _entries(1)
    record = audit_checkpoint().record()
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(["", "plain text", json.dumps({"mac": "x"}), json.dumps(record), '{"mac": broken']))
    found, unreadable = checkpoints_read(path)
    assert [c.mac for c in found] == [record["mac"]]
    assert unreadable == 1


def test_rotated_keys_still_verify_what_they_signed(audit_settings, capsys):
    _entries(2)
    audit_checkpoint()
    audit_settings.AUDIT_CHECKPOINT_KEY = "the-new-key-" + "n" * 40
    _entries(2)
    report = audit_verify()
    assert not report.intact
    assert "which this verifier does not have" in report.problem
    audit_settings.AUDIT_RETIRED_KEYS = [KEY]
    call_command("verify_audit")
    assert "audit chain intact: 4 entries verified" in capsys.readouterr().out


def test_checkpoint_metrics_expose_the_newest_checkpoint(operator, api_client_for):
    assert audit_checkpoint_metrics()["checkpoint_entries"] is None
    scraper = api_client_for(operator)
    _entries(1)  # and the token's entry
    audit_record(actor=None, action="test.pending", object_repr="pending")
    checkpoint = audit_checkpoint()
    audit_record(actor=None, action="test.pending", object_repr="pending")
    values = audit_checkpoint_metrics()
    assert values["unsealed_entries"] == 1
    assert (values["checkpoint_entries"], values["checkpoint_mac"]) == (3, checkpoint.mac)
    body = scraper.get("/metrics").content.decode()
    assert "rolloutops_audit_checkpoint_entries 3" in body
    assert "rolloutops_audit_unsealed_entries 1" in body
    assert f'mac="{checkpoint.mac}"' in body


# --- PostgreSQL: the database refuses ----------------------------------------------------------

def _refused(sql, params=None):
    with pytest.raises(DatabaseError) as exc:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    return str(exc.value)


def test_postgres_refuses_update_delete_and_truncate_of_entries(postgres_only):
    entry = _entries(1)[0]
    assert "append-only: UPDATE refused" in _refused(
        "UPDATE rolloutops_auditentry SET after = '{}' WHERE id = %s", [entry.pk])
    assert "append-only: DELETE refused" in _refused("DELETE FROM rolloutops_auditentry WHERE id = %s", [entry.pk])
    assert "append-only: TRUNCATE refused" in _refused("TRUNCATE rolloutops_auditentry")
    assert "append-only: UPDATE refused" in _refused(  # sealing twice: a sealed row stays as it is
        "UPDATE rolloutops_auditentry SET hash = %s, seq = 99 WHERE id = %s", ["a" * 64, entry.pk])
    entry.refresh_from_db()
    assert entry.after == {"n": 1, "ratio": 0.1} and entry.seq == 1
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic():
            AuditEntry.objects.filter(pk=entry.pk).delete()


def test_postgres_refuses_changing_the_content_of_an_unsealed_entry(postgres_only):
    entry = _entries(1, seal=False)[0]
    assert "append-only: UPDATE refused" in _refused(
        "UPDATE rolloutops_auditentry SET action = 'x' WHERE id = %s", [entry.pk])
    # Not even together with sealing it.
    assert "append-only: UPDATE refused" in _refused(
        "UPDATE rolloutops_auditentry SET action = 'x', seq = 1, hash = %s WHERE id = %s", ["b" * 64, entry.pk])
    assert audit_seal() == 1


def test_postgres_refuses_changes_to_checkpoints(postgres_only):
    _entries(1)
    audit_checkpoint()
    assert "append-only: UPDATE refused" in _refused("UPDATE rolloutops_auditcheckpoint SET seq = 0")
    assert "append-only: DELETE refused" in _refused("DELETE FROM rolloutops_auditcheckpoint")
    assert "append-only: TRUNCATE refused" in _refused("TRUNCATE rolloutops_auditcheckpoint")


def test_owner_truncating_with_the_guard_off_is_detected(postgres_only, capsys):
    _entries(3)
    audit_checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rolloutops_auditentry DISABLE TRIGGER rolloutops_audit_no_truncate")
        cursor.execute("TRUNCATE rolloutops_auditentry")
        cursor.execute("ALTER TABLE rolloutops_auditentry ENABLE TRIGGER rolloutops_audit_no_truncate")
    err = _verify_audit_failure(capsys)
    assert "the chain has 0 entries but the checkpoint of" in err


def test_owner_disabling_the_guard_deleting_and_enabling_it_again_is_detected(postgres_only, capsys):
    entries = _entries(4)
    audit_checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rolloutops_auditentry DISABLE TRIGGER rolloutops_audit_append_only")
        cursor.execute("DELETE FROM rolloutops_auditentry WHERE id = %s", [entries[-1].pk])
    err = _verify_audit_failure(capsys)
    assert "the trigger rolloutops_audit_append_only on rolloutops_auditentry is disabled" in err
    assert "the newest 1 entry was removed" in err
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE rolloutops_auditentry ENABLE TRIGGER rolloutops_audit_append_only")
    err = _verify_audit_failure(capsys)
    assert "disabled" not in err and "the newest 1 entry was removed" in err


# --- concurrency ---------------------------------------------------------------------------------

def _threads(count, work):
    start = threading.Barrier(count)
    errors = []

    def run(n):
        try:
            start.wait()
            work(n)
        except Exception as exc:  # noqa: BLE001 (surfaced in the main thread below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_and_sealers_make_one_chain():
    """6 writers append 20 entries each while 2 sealers seal: every entry is sealed exactly once,
    positions 1..n without gaps, and the chain verifies."""
    writers, per_writer = 6, 20
    done = threading.Event()

    def work(n):
        if n < writers:
            for i in range(per_writer):
                with transaction.atomic():
                    audit_record(actor=None, action="test.concurrent", object_type="test.writer",
                                 object_id=n, object_repr=f"writer {n} entry {i}", after={"i": i})
            return
        while not done.is_set():
            audit_seal(batch=7)

    sealers = threading.Thread(target=lambda: _threads(2, lambda n: work(writers + n)))
    sealers.start()
    _threads(writers, work)
    done.set()
    sealers.join(timeout=120)
    audit_seal()
    total = writers * per_writer
    assert AuditEntry.objects.filter(action="test.concurrent").count() == total
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, total + 1))
    duplicates = [h for h, n in Counter(AuditEntry.objects.values_list("prev_hash", flat=True)).items() if n > 1]
    assert duplicates == []
    report = audit_verify()
    assert report.intact, report.problems
    assert report.checked == total


@pytest.mark.django_db(transaction=True)
def test_an_entry_that_commits_late_is_sealed_after_the_ones_before_it(postgres_only):
    """A transaction that took a lower id but commits later gets a later position, not a gap."""
    inserted, release = threading.Event(), threading.Event()
    late = {}

    def slow_writer(_):
        with transaction.atomic():
            late["entry"] = audit_record(actor=None, action="test.late", object_repr="slow transaction")
            inserted.set()
            release.wait(30)

    thread = threading.Thread(target=lambda: _threads(1, slow_writer))
    thread.start()
    assert inserted.wait(30)
    quick = audit_record(actor=None, action="test.quick", object_repr="committed first")
    assert audit_seal() == 1  # the slow one is not committed: not visible, not skipped for good
    release.set()
    thread.join(30)
    assert audit_seal() == 1
    assert late["entry"].pk < quick.pk
    assert dict(AuditEntry.objects.values_list("action", "seq")) == {"test.quick": 1, "test.late": 2}
    assert audit_verify().intact


def test_a_checkpoint_goes_to_the_webhooks_when_asked(audit_settings, django_capture_on_commit_callbacks, caplog):
    audit_settings.ROLLOUTOPS = {**audit_settings.ROLLOUTOPS, "WEBHOOK_URLS": ["https://hooks.example.internal/x"]}
    _entries(1)
    with django_capture_on_commit_callbacks() as callbacks:
        audit_checkpoint()
    assert callbacks == []  # off by default
    audit_settings.AUDIT_CHECKPOINT_WEBHOOK = True
    with caplog.at_level("INFO", logger="rolloutops.notifications"), django_capture_on_commit_callbacks() as callbacks:
        audit_checkpoint()
    assert len(callbacks) == 1  # one delivery per configured URL, after commit
    assert [r.kind for r in caplog.records if r.getMessage() == "notification"] == ["audit.checkpoint"]
