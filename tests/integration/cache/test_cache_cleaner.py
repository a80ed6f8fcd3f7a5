"""CacheCleaner against a real Redis."""

from __future__ import annotations

import math
import tracemalloc

import pytest
import redis

from services.cache import CacheCleaner, CacheClearError, create_redis_client
from tests.fixtures.redis_server import StoppableRedis

PATTERNS = ["search:{userId}:*", "profile:{userId}", "feed:*:{userId}"]


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started, from INFO commandstats."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def calls_since(before: dict[str, int], client: redis.Redis) -> dict[str, int]:
    after = command_calls(client)
    return {name: after[name] - before.get(name, 0) for name in after}


def fill(client: redis.Redis, prefix: str, count: int) -> None:
    pipe = client.pipeline(transaction=False)
    for start in range(0, count, 5000):
        pipe.mset({f"{prefix}{i:07d}": "x" for i in range(start, min(start + 5000, count))})
    pipe.execute()


def all_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter(match="*", count=1000))


def test_clears_every_pattern_and_leaves_other_users_and_other_keys(
    redis_client: redis.Redis,
) -> None:
    redis_client.mset(
        {
            "search:alice:q1": "1",
            "search:alice:q2": "1",
            "profile:alice": "1",
            "feed:home:alice": "1",
            "feed:news:alice": "1",
            "search:bob:q1": "1",
            "profile:bob": "1",
            "feed:home:bob": "1",
            "profile:alice:extra": "1",  # `profile:{userId}` has no trailing glob
            "session:alice": "1",
            "search:alicia:q1": "1",
        }
    )
    redis_client.hset("search:alice:h", mapping={"f": "v"})
    redis_client.rpush("feed:list:alice", "a", "b")
    redis_client.sadd("search:bob:s", "m")

    deleted = CacheCleaner(redis_client).clear(PATTERNS, "alice")

    assert deleted == 7
    assert all_keys(redis_client) == {
        b"search:bob:q1",
        b"profile:bob",
        b"feed:home:bob",
        b"profile:alice:extra",
        b"session:alice",
        b"search:alicia:q1",
        b"search:bob:s",
    }


def test_nothing_to_delete_returns_zero(redis_client: redis.Redis) -> None:
    redis_client.set("search:bob:q1", "1")
    cleaner = CacheCleaner(redis_client)

    assert cleaner.clear(PATTERNS, "alice") == 0
    assert cleaner.clear([], "bob") == 0
    assert all_keys(redis_client) == {b"search:bob:q1"}


def test_a_key_matched_by_two_patterns_is_counted_once(redis_client: redis.Redis) -> None:
    fill(redis_client, "search:alice:", 50)

    deleted = CacheCleaner(redis_client).clear(
        ["search:{userId}:*", "search:{userId}:00*", "search:{userId}:*"], "alice"
    )

    assert deleted == 50
    assert all_keys(redis_client) == set()


def test_small_batches_use_many_unlinks(redis_client: redis.Redis) -> None:
    fill(redis_client, "search:alice:", 1000)
    fill(redis_client, "search:bob:", 100)
    before = command_calls(redis_client)

    deleted = CacheCleaner(redis_client, scan_count=50, unlink_batch=7).clear(
        ["search:{userId}:*"], "alice"
    )

    used = calls_since(before, redis_client)
    assert deleted == 1000
    assert used["unlink"] >= math.ceil(1000 / 7)
    assert redis_client.dbsize() == 100


def test_clears_100_000_keys_in_batches_with_scan_and_unlink_only(
    redis_client: redis.Redis,
) -> None:
    fill(redis_client, "search:alice:", 100_000)
    fill(redis_client, "search:bob:", 1_000)
    before = command_calls(redis_client)

    deleted = CacheCleaner(redis_client).clear(["search:{userId}:*"], "alice")

    used = calls_since(before, redis_client)
    assert deleted == 100_000
    assert redis_client.dbsize() == 1_000
    assert used["scan"] > 1
    # At most unlink_batch (500) keys per UNLINK, so at least 200 of them.
    assert used["unlink"] >= 100_000 // 500
    for forbidden in ("keys", "flushdb", "flushall", "del"):
        assert used.get(forbidden, 0) == 0, forbidden


def test_memory_does_not_grow_with_the_number_of_keys(redis_client: redis.Redis) -> None:
    fill(redis_client, "search:alice:", 100_000)
    cleaner = CacheCleaner(redis_client, scan_count=1000, unlink_batch=500)
    tracemalloc.start()
    try:
        deleted = cleaner.clear(["search:{userId}:*"], "alice")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert deleted == 100_000
    # Holding all 100,000 keys at once would take about 6 MB (a bytes object and a list slot
    # each); one SCAN page of ~1,000 keys takes well under 1 MB.
    assert peak < 1.5 * 1024 * 1024, f"peak {peak / 1024:.0f} KiB"


def test_rejects_nonsense_settings(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="scan_count"):
        CacheCleaner(redis_client, scan_count=0)
    with pytest.raises(ValueError, match="unlink_batch"):
        CacheCleaner(redis_client, unlink_batch=0)


def test_rejects_a_decoding_client(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses"):
            CacheCleaner(client)
    finally:
        client.close()


def test_binary_keys_are_deleted(redis_client: redis.Redis) -> None:
    redis_client.set(b"search:alice:\xff\xfe", "1")
    redis_client.set(b"search:bob:\xff", "1")

    assert CacheCleaner(redis_client).clear(["search:{userId}:*"], "alice") == 1
    assert all_keys(redis_client) == {b"search:bob:\xff"}


def test_works_through_create_redis_client(redis_client: redis.Redis, redis_url: str) -> None:
    fill(redis_client, "search:alice:", 10)
    client = create_redis_client(redis_url)
    try:
        assert CacheCleaner(client).clear(["search:{userId}:*"], "alice") == 10
    finally:
        client.close()
    assert redis_client.dbsize() == 0


def test_a_stopped_redis_raises_cache_clear_error(stoppable_redis: StoppableRedis) -> None:
    client = create_redis_client(stoppable_redis.url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.mset({"search:alice:1": "1", "search:alice:2": "1"})
        stoppable_redis.stop()

        with pytest.raises(CacheClearError) as caught:
            CacheCleaner(client).clear(["search:{userId}:*"], "alice")
        assert caught.value.deleted == 0
        assert isinstance(caught.value.__cause__, redis.ConnectionError)

        # Back on the same URL with the data saved at shutdown; the same client recovers.
        stoppable_redis.start()
        assert CacheCleaner(client).clear(["search:{userId}:*"], "alice") == 2
    finally:
        client.close()
