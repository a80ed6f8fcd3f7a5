"""Queue triggers, polled the way the Functions host's queue listener does it.

Per queue function: create the queue if missing, receive up to ``batchSize`` messages while at
most ``batchSize + newBatchThreshold`` are in flight, hand each to the function as an
``azure.functions.QueueMessage``, delete it on success. On failure the message is released for
redelivery after host.json ``visibilityTimeout``; once it has been dequeued ``maxDequeueCount``
times its original text goes to ``<queue>-poison`` and it is deleted. Idle queues are polled
with exponential back-off up to ``maxPollingInterval``. Message bodies are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueMessage as StorageQueueMessage
from azure.storage.queue.aio import QueueClient

from devhost.app_loader import AppFunction, resolve_setting_expressions
from devhost.function_invoker import FunctionInvoker, first_line
from devhost.host_config import QueuesConfig
from devhost.queue_codec import decode_body
from devhost.storage_accounts import StorageAccounts

log = logging.getLogger("devhost.queue")

MIN_POLLING_SECONDS = 0.1
# Messages being processed stay invisible for this long and are renewed halfway through, so a
# host that dies lets its messages reappear within a minute.
LEASE_SECONDS = 60
SHUTDOWN_GRACE_SECONDS = 3.0


@dataclass
class _Lease:
    message_id: str
    pop_receipt: str


class QueueListener:
    def __init__(
        self,
        *,
        function: AppFunction,
        accounts: StorageAccounts,
        config: QueuesConfig,
        invoker: FunctionInvoker,
    ) -> None:
        self.function = function
        self.queue_name = resolve_setting_expressions(str(function.trigger["queueName"]))
        self._connection = function.trigger.get("connection")
        self._accounts = accounts
        self._config = config
        self._invoker = invoker
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    def _queue(self, name: str) -> QueueClient:
        return self._accounts.queue_service(self._connection).get_queue_client(name)

    @staticmethod
    async def _ensure_exists(queue: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()

    async def run(self) -> None:
        queue = self._queue(self.queue_name)
        delay = MIN_POLLING_SECONDS
        limit = self._config.batch_size + self._config.new_batch_threshold
        ready = False
        try:
            while not self._stopping.is_set():
                try:
                    if not ready:
                        await self._ensure_exists(queue)
                        ready = True
                    capacity = limit - len(self._in_flight)
                    if capacity <= self._config.new_batch_threshold and self._in_flight:
                        await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                        continue
                    count = max(1, min(self._config.batch_size, capacity))
                    messages = [
                        m
                        async for m in queue.receive_messages(
                            messages_per_page=count,
                            max_messages=count,
                            visibility_timeout=LEASE_SECONDS,
                        )
                    ]
                except ResourceNotFoundError:
                    ready = False  # deleted under us: create it again
                    messages = []
                except AzureError as exc:
                    log.warning("queue %s: polling failed: %s", self.queue_name, type(exc).__name__)
                    messages = []
                except Exception:
                    log.exception("queue %s: listener error", self.queue_name)
                    messages = []
                if messages:
                    delay = MIN_POLLING_SECONDS
                    for message in messages:
                        task = asyncio.create_task(self._process(queue, message))
                        self._in_flight.add(task)
                        task.add_done_callback(self._in_flight.discard)
                    continue
                await self._idle(delay)
                delay = min(delay * 2, self._config.max_polling_interval.total_seconds())
        finally:
            await self._drain(queue)

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _drain(self, queue: QueueClient) -> None:
        if not self._in_flight:
            return
        _, pending = await asyncio.wait(set(self._in_flight), timeout=SHUTDOWN_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
            log.warning(
                "queue %s: abandoned %d message(s) at shutdown; they will be delivered again",
                self.queue_name,
                len(pending),
            )

    async def _renew(self, queue: QueueClient, lease: _Lease) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 2)
            with contextlib.suppress(AzureError):
                updated = await queue.update_message(
                    lease.message_id,
                    pop_receipt=lease.pop_receipt,
                    visibility_timeout=LEASE_SECONDS,
                )
                lease.pop_receipt = updated.pop_receipt or lease.pop_receipt

    async def _process(self, queue: QueueClient, message: StorageQueueMessage) -> None:
        dequeue_count = int(message.dequeue_count or 0)
        lease = _Lease(message.id, str(message.pop_receipt))
        max_count = self._config.max_dequeue_count
        if dequeue_count > max_count:
            # Already failed (or was abandoned) too often, e.g. across host restarts.
            await self._poison(queue, message, lease)
            return
        started = time.monotonic()
        renewal = asyncio.create_task(self._renew(queue, lease))
        try:
            body = decode_body(str(message.content or ""), self._config.message_encoding)
            trigger_value = FunctionQueueMessage(  # type: ignore[no-untyped-call]
                id=message.id,
                body=body,
                dequeue_count=dequeue_count,
                expiration_time=message.expires_on,
                insertion_time=message.inserted_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            await self._invoker.invoke(self.function, trigger_value)
        except asyncio.CancelledError:
            renewal.cancel()
            await self._release(queue, lease, 0)
            raise
        except Exception as exc:
            renewal.cancel()
            elapsed = (time.monotonic() - started) * 1000
            log.warning(
                "queue %s -> %s message=%s attempt %d/%d failed in %.0f ms: %s: %s",
                self.queue_name,
                self.function.name,
                message.id,
                dequeue_count,
                max_count,
                elapsed,
                type(exc).__name__,
                first_line(exc),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            if dequeue_count >= max_count:
                await self._poison(queue, message, lease)
            else:
                visibility = int(self._config.visibility_timeout.total_seconds())
                await self._release(queue, lease, visibility)
            return
        renewal.cancel()
        with contextlib.suppress(ResourceNotFoundError):
            await queue.delete_message(lease.message_id, pop_receipt=lease.pop_receipt)
        log.info(
            "queue %s -> %s message=%s attempt %d succeeded in %.0f ms",
            self.queue_name,
            self.function.name,
            message.id,
            dequeue_count,
            (time.monotonic() - started) * 1000,
        )

    async def _release(self, queue: QueueClient, lease: _Lease, visibility: int) -> None:
        with contextlib.suppress(AzureError):
            await queue.update_message(
                lease.message_id, pop_receipt=lease.pop_receipt, visibility_timeout=visibility
            )

    async def _poison(
        self, queue: QueueClient, message: StorageQueueMessage, lease: _Lease
    ) -> None:
        poison_name = f"{self.queue_name}-poison"
        poison = self._queue(poison_name)
        try:
            await self._ensure_exists(poison)
            # The original text, untouched: whoever reads the poison queue sees what was sent.
            await poison.send_message(message.content)
            await queue.delete_message(lease.message_id, pop_receipt=lease.pop_receipt)
        except AzureError as exc:
            log.error(
                "queue %s: could not move message=%s to %s: %s",
                self.queue_name,
                message.id,
                poison_name,
                type(exc).__name__,
            )
            return
        log.warning(
            "queue %s: message=%s moved to %s after %d attempt(s)",
            self.queue_name,
            message.id,
            poison_name,
            message.dequeue_count,
        )
