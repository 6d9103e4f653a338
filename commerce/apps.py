from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "commerce"
    verbose_name = "Orders"

    def ready(self) -> None:
        from digitalriver.registry import register_performer

        from . import handlers  # noqa: F401  (registers the event handlers)
        from .performers import CreateRefundPerformer

        register_performer(CreateRefundPerformer())
