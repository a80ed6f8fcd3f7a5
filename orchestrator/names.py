"""Registered orchestrator names (the contract fixes them)."""

from typing import Final

PIPELINE_JOB_ORCHESTRATOR: Final = "PipelineJobOrchestrator"
DEFAULT_FINISHED_ORCHESTRATOR: Final = "PipelineJobDefaultFinished"
