"""Tests of the registered functions (queue triggers, status API) with a durable client double."""
