from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from digitalriver.registry import register_performer

        from .performers import SkuDeletePerformer, SkuPushPerformer

        register_performer(SkuPushPerformer())
        register_performer(SkuDeletePerformer())
