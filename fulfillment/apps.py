from django.apps import AppConfig


class FulfillmentConfig(AppConfig):
    name = "fulfillment"
    verbose_name = "Fulfillment"

    def ready(self) -> None:
        from digitalriver.registry import register_performer

        from . import (
            handlers,  # noqa: F401  (registers the event handlers)
            refund_handlers,  # noqa: F401  (registers the refund event handlers)
        )
        from .performers import CreateFulfillmentOrderPerformer, FulfillmentPerformer, RequestCancellationPerformer

        register_performer(CreateFulfillmentOrderPerformer())
        register_performer(FulfillmentPerformer())
        register_performer(RequestCancellationPerformer())

        from .return_performers import CreateFulfillmentReturnPerformer, CreateReturnPerformer, ReceiveReturnPerformer

        register_performer(CreateFulfillmentReturnPerformer())
        register_performer(CreateReturnPerformer())
        register_performer(ReceiveReturnPerformer())
