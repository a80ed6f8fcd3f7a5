"""Escaping a userId into Redis globs, checked against Redis's own matcher."""

from __future__ import annotations

import pytest
import redis

from services.cache import CacheCleaner, escape_glob, expand_patterns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", r"\*"),
        ("?", r"\?"),
        ("[a]", r"\[a\]"),
        ("a\\b", "a\\\\b"),
        ("^", r"\^"),
        ("[^a]", r"\[\^a\]"),
        ("a-c", r"a\-c"),
        ("alice", "alice"),
        ("user.42@example.com", "user.42@example.com"),
        ("Zoë_ümlaut", "Zoë_ümlaut"),
        ("", ""),
    ],
)
def test_escape_glob(text: str, expected: str) -> None:
    assert escape_glob(text) == expected


def test_expand_patterns_replaces_every_placeholder_and_keeps_the_glob() -> None:
    patterns = ["search:{userId}:*", "{userId}:{userId}", "static:*", "tpl:{other}:{userId}"]
    assert expand_patterns(patterns, "a*b") == [
        r"search:a\*b:*",
        r"a\*b:a\*b",
        "static:*",
        r"tpl:{other}:a\*b",
    ]


def test_expand_patterns_of_nothing_is_nothing() -> None:
    assert expand_patterns([], "alice") == []


# (userId, other users' ids). Each `others` list holds at least one id that the *unescaped*
# pattern would also match, so these cases fail if escaping is broken.
LOOKALIKES: list[tuple[str, list[str]]] = [
    ("*", ["alice", "bob", "", "**"]),
    ("?", ["a", "?a", "??"]),
    ("[a]", ["a", "b", "[a]x"]),
    ("[^a]", ["b", "^", "[a]"]),
    ("[a-c]", ["b", "-", "a-c"]),
    ("a\\b", ["ab", "a\\\\b"]),
    ("a*", ["ab", "a", "a**"]),
]


@pytest.mark.parametrize(("user_id", "others"), LOOKALIKES)
def test_tricky_user_id_clears_only_its_own_keys(
    redis_client: redis.Redis, user_id: str, others: list[str]
) -> None:
    own = [f"search:{user_id}:1", f"search:{user_id}:2"]
    foreign = [f"search:{other}:1" for other in others]
    for key in own + foreign:
        redis_client.set(key, "v")
    naive_matches = {k.decode() for k in redis_client.scan_iter(match=f"search:{user_id}:*")}
    assert naive_matches - set(own), "test data must contain a key the unescaped glob matches"

    deleted = CacheCleaner(redis_client).clear(["search:{userId}:*"], user_id)

    assert deleted == len(own)
    remaining = {k.decode() for k in redis_client.scan_iter(match="*")}
    assert remaining == set(foreign)


def test_star_user_id_is_a_literal_star(redis_client: redis.Redis) -> None:
    redis_client.mset({"search:*:q1": "1", "search:alice:q1": "1", "search:bob:q1": "1"})

    assert CacheCleaner(redis_client).clear(["search:{userId}:*"], "*") == 1

    assert sorted(redis_client.scan_iter(match="*")) == [b"search:alice:q1", b"search:bob:q1"]


def test_placeholder_inside_a_bracket_expression_treats_dash_and_caret_literally(
    redis_client: redis.Redis,
) -> None:
    # In `[a-c]` the dash makes a range and in `[^a]` the caret negates: escaped, both are
    # plain members of the set.
    redis_client.mset({f"k:{c}": "1" for c in "abc-^x"})

    assert CacheCleaner(redis_client).clear(["k:[{userId}]"], "a-c") == 3  # a, -, c
    assert CacheCleaner(redis_client).clear(["k:[{userId}]"], "^x") == 2  # ^, x

    assert sorted(redis_client.scan_iter(match="*")) == [b"k:b"]
