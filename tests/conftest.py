"""Shared pytest configuration.

Every real service a test talks to comes from a fixture module under ``tests/fixtures``:
a service that is configured through the environment is used as it is, otherwise the
fixture starts a throwaway one from the installed binaries. In CI (``CI=true``) a service
that cannot be reached is a failure, never a skip.
"""

pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.databases",
    "tests.fixtures.redis_server",
    "tests.fixtures.search_standin",
]
