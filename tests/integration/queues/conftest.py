"""Fixtures for PipelineQueues on Azurite: the six contract queues, emptied before each test.

``queue_service`` and ``storage_connection_string`` come from ``tests/fixtures/azurite.py``.
"""

from __future__ import annotations

import pytest
from azure.storage.queue import QueueServiceClient

from services.pipeline_queues import PipelineQueues
from tests.integration.queues.storage import reset_queues


@pytest.fixture
def clean_queues(queue_service: QueueServiceClient) -> QueueServiceClient:
    reset_queues(queue_service)
    return queue_service


@pytest.fixture
def pipeline_queues(clean_queues: QueueServiceClient) -> PipelineQueues:
    return PipelineQueues(clean_queues)
