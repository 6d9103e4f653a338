from django.db import migrations

ROLES = {
    "Customer service": [
        ("commerce", "order", ["view_order", "change_order", "cancel_order_lines", "record_shipment"]),
        ("commerce", "orderline", ["view_orderline"]),
        ("commerce", "charge", ["view_charge"]),
        ("fulfillment", "fulfillmentorder", ["view_fulfillmentorder"]),
        ("fulfillment", "shipment", ["view_shipment"]),
        ("fulfillment", "drfulfillment", ["view_drfulfillment"]),
        ("fulfillment", "cancellationrequest", ["view_cancellationrequest"]),
        ("fulfillment", "notification", ["view_notification"]),
        ("catalog", "sku", ["view_sku"]),
    ],
    "Operations": [
        ("digitalriver", "webhookevent", ["view_webhookevent", "replay_webhookevent"]),
        ("digitalriver", "instruction", ["view_instruction", "operate_instruction"]),
        ("digitalriver", "attempt", ["view_attempt"]),
        ("digitalriver", "apicall", ["view_apicall"]),
        ("commerce", "order", ["view_order", "change_order"]),
        ("fulfillment", "fulfillmentorder", ["view_fulfillmentorder"]),
        ("fulfillment", "shipment", ["view_shipment"]),
        ("fulfillment", "drfulfillment", ["view_drfulfillment"]),
        ("fulfillment", "cancellationrequest", ["view_cancellationrequest"]),
        ("fulfillment", "notification", ["view_notification"]),
        ("catalog", "sku", ["view_sku"]),
    ],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, model, codenames in grants:
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, content_type__model=model, codename__in=codenames
                )
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("fulfillment", "0003_notification"),
        ("commerce", "0001_initial"),
        ("digitalriver", "0002_instruction_attempts_before_retry"),
        ("catalog", "0002_merchandisers_group"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
