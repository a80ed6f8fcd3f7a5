"""Queue trigger on ``data-pipeline-job-pending``: starts one orchestration per job."""

import azure.durable_functions as df
import azure.functions as func

from schemas.queues import PENDING_QUEUE
from wiring import app_services

bp = df.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=PENDING_QUEUE, connection="PipelineStorage")
@bp.durable_client_input(client_name="client")
async def PendingJobReceived(
    message: func.QueueMessage, client: df.DurableOrchestrationClient
) -> None:
    await app_services().pending_intake.receive(message.get_body(), client)
