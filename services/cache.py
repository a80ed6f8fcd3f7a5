"""Clearing a user's keys from the Redis cache (contract 4.2, "Cache").

Keys are found with SCAN and removed with UNLINK, one SCAN page at a time, so memory stays
bounded by the page size however many keys match. KEYS, FLUSHDB and FLUSHALL are never used:
KEYS blocks the server for the whole keyspace and the other two would drop every user's data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Final, cast
from urllib.parse import SplitResult, urlsplit

import redis

logger = logging.getLogger(__name__)

USER_ID_PLACEHOLDER: Final = "{userId}"

# A backslash makes the next byte literal both outside and inside a bracket expression in
# Redis's matcher (util.c stringmatchlen), so escaping a character that is not special at its
# position is harmless. `^` and `-` only matter when a configured pattern puts `{userId}` inside
# `[...]`; escaping them always keeps that case correct without parsing the pattern.
_GLOB_SPECIAL: Final = frozenset("\\*?[]^-")

AZURE_REDIS_HOST_SUFFIXES: Final = (".redis.cache.windows.net", ".redis.azure.net")
AZURE_REDIS_SCOPE: Final = "https://redis.azure.com/.default"
_SCHEMES: Final = ("redis", "rediss")


def escape_glob(text: str) -> str:
    """Return ``text`` as a Redis glob that matches exactly ``text``."""
    return "".join("\\" + char if char in _GLOB_SPECIAL else char for char in text)


def expand_patterns(patterns: Sequence[str], user_id: str) -> list[str]:
    """Put the escaped ``user_id`` in place of every ``{userId}``; the rest stays a glob."""
    escaped = escape_glob(user_id)
    # str.replace rather than str.format: configured globs may hold other braces.
    return [pattern.replace(USER_ID_PLACEHOLDER, escaped) for pattern in patterns]


class CacheClearError(RuntimeError):
    """Redis failed part-way; ``deleted`` keys were already gone by then."""

    def __init__(self, message: str, deleted: int) -> None:
        super().__init__(message)
        self.deleted = deleted


class CacheCleaner:
    """Deletes the keys matching a user's cache patterns."""

    def __init__(self, redis: redis.Redis, scan_count: int = 1000, unlink_batch: int = 500) -> None:
        if scan_count < 1:
            raise ValueError(f"scan_count must be at least 1, got {scan_count}")
        if unlink_batch < 1:
            raise ValueError(f"unlink_batch must be at least 1, got {unlink_batch}")
        if redis.get_connection_kwargs().get("decode_responses"):
            # Keys are arbitrary bytes; decoding SCAN replies would crash part-way on the
            # first key that is not valid UTF-8.
            raise ValueError("CacheCleaner needs a Redis client with decode_responses=False")
        self._redis = redis
        self._scan_count = scan_count
        self._unlink_batch = unlink_batch

    def clear(self, patterns: Sequence[str], user_id: str) -> int:
        """Delete every key matching any of ``patterns`` for ``user_id``; return how many.

        The count is the sum of UNLINK replies, so a key that SCAN reports twice (it may, while
        the keyspace is being rehashed) or that matches two patterns is counted once.
        """
        deleted = 0
        # dict.fromkeys: drop repeated patterns but keep the configured order.
        expanded = list(dict.fromkeys(expand_patterns(patterns, user_id)))
        try:
            for pattern in expanded:
                before = deleted
                for count in self._unlink_matches(pattern):
                    deleted += count
                logger.debug("Redis pattern %r: %d keys deleted", pattern, deleted - before)
        except redis.RedisError as exc:
            raise CacheClearError(
                f"Redis failed after {deleted} keys were deleted: {type(exc).__name__}: {exc}",
                deleted,
            ) from exc
        logger.info("Deleted %d Redis keys matching %d pattern(s)", deleted, len(expanded))
        return deleted

    def _unlink_matches(self, pattern: str) -> Iterator[int]:
        cursor = 0
        while True:
            reply = self._redis.scan(cursor=cursor, match=pattern, count=self._scan_count)
            cursor, keys = cast(tuple[int, list[bytes]], reply)
            if keys:
                yield self._unlink(keys)
            if cursor == 0:
                return

    def _unlink(self, keys: list[bytes]) -> int:
        # One round trip for the whole SCAN page; transaction=False because atomicity buys
        # nothing here and MULTI would hold the server for the entire page.
        pipe = self._redis.pipeline(transaction=False)
        for start in range(0, len(keys), self._unlink_batch):
            pipe.unlink(*keys[start : start + self._unlink_batch])
        return sum(int(reply) for reply in pipe.execute())


def redact_redis_url(url: str) -> str:
    """``url`` with its password replaced, for log lines and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{_host_port(parts)}"
        return parts._replace(netloc=netloc).geturl()
    except ValueError:
        return "<unparseable Redis URL>"


def uses_entra_id(url: str) -> bool:
    """True when ``create_redis_client`` would sign in with Microsoft Entra ID for ``url``."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    return not parts.password and host.endswith(AZURE_REDIS_HOST_SUFFIXES)


def create_redis_client(
    url: str,
    *,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 5.0,
    health_check_interval: int = 30,
) -> redis.Redis:
    """A pooled client for a ``redis://`` or ``rediss://`` URL.

    Azure Cache for Redis and Azure Managed Redis hosts given without a password get a
    Microsoft Entra ID token (DefaultAzureCredential) instead. Nothing is sent to the server
    or to Entra ID until the first command.
    """
    url = url.strip()
    parts = _checked_url(url)
    options: dict[str, object] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_connect_timeout,
        # Azure closes idle connections after 10 minutes; a PING before reusing a connection
        # idle for longer than this finds that out before a real command fails.
        "health_check_interval": health_check_interval,
        "decode_responses": False,
    }
    if uses_entra_id(url):
        if parts.username:
            raise ValueError(
                "The Redis URL names a user but has no password. For Microsoft Entra ID leave "
                "both out (the token supplies the user); for an access key give both."
            )
        # Imported here so hosts that never use Entra ID do not pay for azure-identity/msal.
        from redis_entraid.cred_provider import create_from_default_azure_credential

        options["credential_provider"] = create_from_default_azure_credential((AZURE_REDIS_SCOPE,))
        logger.info("Redis at %s: signing in with Microsoft Entra ID", parts.hostname)
    return redis.Redis.from_url(url, **options)


def _checked_url(url: str) -> SplitResult:
    # Messages never quote the URL: it may carry the password.
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("The Redis URL is malformed (check the host and port)") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise ValueError("The Redis URL must start with redis:// or rediss://")
    if not parts.hostname:
        raise ValueError("The Redis URL has no host")
    if port == 0:
        raise ValueError("The Redis URL has port 0")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError("The Redis URL path must be a database number, e.g. /0")
    return parts


def _host_port(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port is None else f"{host}:{parts.port}"
