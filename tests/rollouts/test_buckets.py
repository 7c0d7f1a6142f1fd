"""Routing buckets: sticky, monotone, and the share each percentage promises. Pure, no database."""
import hashlib

import pytest

from rollouts.routing import BUCKETS, bucket, goes_to_candidate

KEYS = [f"req-{i}" for i in range(10_000)]


def _reference_bucket(salt: str, key: str) -> int:
    # Written out independently: sha256 of salt, unit separator, key; the first 8 bytes, big-endian.
    digest = hashlib.sha256(salt.encode() + b"\x1f" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def test_bucket_is_stable_and_in_range():
    assert bucket("salt", "req-1") == bucket("salt", "req-1")
    assert all(0 <= bucket("s", k) < 10_000 for k in KEYS[:2000])
    # A new salt reshuffles: another rollout's canary is not the same slice of customers.
    same = sum(bucket("a", k) == bucket("b", k) for k in KEYS[:2000])
    assert same < 10


def test_raising_traffic_only_adds_keys_and_shares_match_targets():
    salt = "0123456789abcdef"
    buckets = [bucket(salt, k) for k in KEYS]
    previous: set[str] = set()
    for percent in (5, 10, 25, 50, 100):
        chosen = {k for k, b in zip(KEYS, buckets) if goes_to_candidate(b, percent)}
        assert previous <= chosen, f"a key moved back to humans when going to {percent} %"
        assert abs(len(chosen) / len(KEYS) - percent / 100) <= 0.01
        previous = chosen



def test_bucket_is_the_documented_hash():
    for salt, key in [("0123456789abcdef", "req-8812"), ("", ""), ("s", "ключ-ü"), ("a\x1fb", "c")]:
        assert bucket(salt, key) == _reference_bucket(salt, key)
    assert BUCKETS == 10_000


def test_salt_and_key_do_not_run_together():
    # "ab" + "c" and "a" + "bc" are different requests: the separator keeps them apart.
    assert bucket("ab", "c") != bucket("a", "bc")


@pytest.mark.parametrize("value, percent, to_agent", [
    (0, 0, False), (9_999, 100, True), (0, 100, True),
    (499, 5, True), (500, 5, False),  # 5 % is buckets 0..499
    (49, 0.5, True), (50, 0.5, False),  # half a percent is 50 buckets
    (2_499, 25, True), (2_500, 25, False),
    (0, 0.01, True), (1, 0.01, False),  # the smallest share: one bucket
    (0, 0.004, False),  # below one bucket rounds to none
])
def test_a_bucket_goes_to_the_agent_below_the_percentage_bar(value, percent, to_agent):
    assert goes_to_candidate(value, percent) is to_agent
