"""Schedule the budget-counter reconciliation (every 5 minutes; editable in the admin)."""

from django.db import migrations

NAME = "billing: reconcile budget counters"


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    from django.utils import timezone

    every_5_min, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "billing.tasks.reconcile_budget_counters",
            "interval": every_5_min,
            "description": "Raise Redis budget counters to the spend in usage records.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_default_schedules")]
    operations = [migrations.RunPython(create, delete)]
