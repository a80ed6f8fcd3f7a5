"""Builds the app's clients and services once per process, from the validated settings."""

from wiring.container import AppServices, app_services

__all__ = ["AppServices", "app_services"]
