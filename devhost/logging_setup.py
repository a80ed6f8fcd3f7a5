"""Readable one-line logs; the Azure SDKs' HTTP chatter (headers, URLs with SAS) kept quiet."""

from __future__ import annotations

import logging
import sys
import warnings

_NOISY = (
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.identity",
    "aiohttp.access",
    "asyncio",
    "urllib3",
)


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"
        )
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_sdk_warnings()


def quiet_sdk_warnings() -> None:
    # The SDK warns on every replay that sees an event before the orchestrator waits for it;
    # that is normal (buffered external events), not a problem worth a log line.
    warnings.filterwarnings("ignore", message="Potential duplicate Task completion")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"azure\.functions.*")
    warnings.filterwarnings(
        "ignore", category=DeprecationWarning, module=r"azure\.durable_functions.*"
    )
