"""Queue trigger on ``data-pipeline-job-finished``: hands each report to its waiting job."""

import azure.durable_functions as df
import azure.functions as func

from schemas.queues import FINISHED_QUEUE
from wiring import app_services

bp = df.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=FINISHED_QUEUE, connection="PipelineStorage")
@bp.durable_client_input(client_name="client")
async def PipelineJobFinishedReceived(
    message: func.QueueMessage, client: df.DurableOrchestrationClient
) -> None:
    await app_services().finish_reports.receive(message.get_body(), client)
