"""create_redis_client: which credential a URL gets, URL checks, and no leaked passwords.

Nothing here contacts Entra ID: building a client sends nothing until its first command.
"""

from __future__ import annotations

import pytest
import redis
from redis_entraid.cred_provider import EntraIdCredentialsProvider

from services.cache import (
    AZURE_REDIS_SCOPE,
    create_redis_client,
    redact_redis_url,
    uses_entra_id,
)
from tests.fixtures.redis_server import StoppableRedis

SECRET = "s3cr3t-Pa55word"


@pytest.mark.parametrize(
    "url",
    [
        "rediss://cache1.redis.cache.windows.net:6380",
        "rediss://cache1.redis.cache.windows.net:6380/0",
        "rediss://CACHE1.Redis.Cache.Windows.Net:6380",
        "rediss://amr1.westeurope.redis.azure.net:10000",
        "rediss://:@cache1.redis.cache.windows.net:6380",
    ],
)
def test_azure_host_without_password_uses_entra_id(url: str) -> None:
    assert uses_entra_id(url)
    client = create_redis_client(url)
    try:
        kwargs = client.get_connection_kwargs()
        provider = kwargs.get("credential_provider")
        assert isinstance(provider, EntraIdCredentialsProvider)
        assert not kwargs.get("password")
        assert not kwargs.get("username")
        # The token is for Azure Cache for Redis; a different scope is refused at sign-in.
        assert provider._idp._scopes == (AZURE_REDIS_SCOPE,)
        assert not provider.is_streaming(), "no token may be fetched before the first command"
    finally:
        client.close()


@pytest.mark.parametrize(
    ("url", "password"),
    [
        (f"rediss://:{SECRET}@cache1.redis.cache.windows.net:6380", SECRET),
        (f"rediss://default:{SECRET}@amr1.westeurope.redis.azure.net:10000", SECRET),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", SECRET),
        ("redis://127.0.0.1:6379/0", None),
        ("rediss://cache1.redis.cache.windows.net.example.com:6380", None),
        ("rediss://redis.cache.windows.net-evil.example:6380", None),
        ("redis://localhost", None),
    ],
)
def test_password_or_no_auth_never_uses_entra_id(url: str, password: str | None) -> None:
    assert not uses_entra_id(url)
    client = create_redis_client(url)
    try:
        kwargs = client.get_connection_kwargs()
        assert kwargs.get("credential_provider") is None
        assert kwargs.get("password") == password
    finally:
        client.close()


def test_client_settings() -> None:
    client = create_redis_client("rediss://cache1.example.com:6380/3")
    try:
        kwargs = client.get_connection_kwargs()
        assert kwargs["db"] == 3
        assert kwargs["socket_timeout"] == 5.0
        assert kwargs["socket_connect_timeout"] == 5.0
        assert kwargs["health_check_interval"] == 30
        assert kwargs["decode_responses"] is False
        assert client.connection_pool.connection_class is redis.SSLConnection
    finally:
        client.close()


def test_user_without_password_on_an_azure_host_is_refused() -> None:
    with pytest.raises(ValueError, match="no password"):
        create_redis_client("rediss://someone@cache1.redis.cache.windows.net:6380")


@pytest.mark.parametrize(
    "url",
    [
        f"http://:{SECRET}@cache1.example.com",
        f"unix://:{SECRET}@/tmp/redis.sock",
        f"redis://:{SECRET}@",
        f"redis://:{SECRET}@cache1.example.com:notaport",
        f"redis://:{SECRET}@cache1.example.com:99999",
        f"redis://:{SECRET}@cache1.example.com:6379/zero",
        "",
    ],
)
def test_malformed_urls_are_refused_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        create_redis_client(url)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"redis://:{SECRET}@host:6379/0", "redis://:***@host:6379/0"),
        (f"rediss://user:{SECRET}@host", "rediss://user:***@host"),
        ("redis://host:6379", "redis://host:6379"),
        (f"redis://:{SECRET}@[::1]:6379", "redis://:***@[::1]:6379"),
    ],
)
def test_redact_redis_url(url: str, expected: str) -> None:
    assert redact_redis_url(url) == expected


def test_password_from_the_url_authenticates(stoppable_redis: StoppableRedis) -> None:
    admin = redis.Redis.from_url(stoppable_redis.url)
    admin.config_set("requirepass", SECRET)
    admin.close()
    url_with_password = stoppable_redis.url.replace("redis://", f"redis://:{SECRET}@")

    good = create_redis_client(url_with_password)
    bad = create_redis_client(stoppable_redis.url.replace("redis://", "redis://:wrong@"))
    try:
        assert good.ping() is True
        with pytest.raises(redis.AuthenticationError) as caught:
            bad.ping()
        assert SECRET not in str(caught.value)
    finally:
        good.close()
        bad.close()
