"""rolloutops_client.request_key(): time-ordered request keys (UUIDv7) for runtimes without ids."""
import threading
import time
import uuid

from rolloutops_client import request_key


def test_keys_are_uuid7_text_and_sort_in_the_order_they_were_made():
    before = int(time.time() * 1000)
    keys = [request_key() for _ in range(20_000)]
    after = int(time.time() * 1000)
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys)  # as text, as the server's indexes compare them
    for key in (keys[0], keys[-1]):
        parsed = uuid.UUID(key)
        assert str(parsed) == key and len(key) == 36 and parsed.version == 7
        assert before <= parsed.int >> 80 <= after  # its first 48 bits: the millisecond it was made


def test_keys_made_at_once_by_several_threads_are_all_distinct():
    made = [[] for _ in range(4)]

    def make(out):
        out.extend(request_key() for _ in range(10_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({key for out in made for key in out}) == 40_000
    assert all(out == sorted(out) for out in made)
