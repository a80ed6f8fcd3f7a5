"""The app settings (contract 6), read once from the environment and validated."""

from settings.app_settings import SETTING_NAMES, AppSettings, SettingsError, load_settings

__all__ = ["SETTING_NAMES", "AppSettings", "SettingsError", "load_settings"]
