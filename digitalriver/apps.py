from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


class DigitalRiverConfig(AppConfig):
    name = "digitalriver"
    verbose_name = "Digital River integration"

    def ready(self) -> None:
        setting_changed.connect(_forget_client_on_dr_setting)


def _forget_client_on_dr_setting(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("DR_"):
        from .client import reset_client

        reset_client()
