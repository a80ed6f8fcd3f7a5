"""Creates the app's six queues when they are missing: at start-up, then every 30 minutes.

The Functions host does not create the queues a trigger listens on, and the data pipeline
reads the start queues, so waiting for the first job to create them is not enough. Creating
an existing queue is a cheap no-op, which makes running on every instance start harmless.
"""

import logging

import azure.durable_functions as df
import azure.functions as func

from wiring import app_services

bp = df.Blueprint()
logger = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="0 */30 * * * *", run_on_startup=True)
def EnsurePipelineQueues(timer: func.TimerRequest) -> None:
    app_services().queues.ensure_queues()
    logger.info("Pipeline queues are in place")
