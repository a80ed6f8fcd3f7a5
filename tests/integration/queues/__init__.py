"""Tests of PipelineQueues against a real Azurite."""
