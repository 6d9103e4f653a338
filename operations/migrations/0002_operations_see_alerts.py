from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("operations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_alerts = Permission.objects.filter(content_type__app_label="operations", codename="view_operationsalert")
    for group in Group.objects.filter(name="Operations"):
        group.permissions.add(*view_alerts)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name="Operations"):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="operations", codename="view_operationsalert")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0001_initial"),
        ("fulfillment", "0004_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
