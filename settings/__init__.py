"""The app settings (contract 6), read once from the environment and validated."""

from settings.app_settings import AppSettings, SettingsError, load_settings

__all__ = ["AppSettings", "SettingsError", "load_settings"]
