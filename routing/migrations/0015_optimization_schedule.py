"""The hourly beat row that queues each tenant's weekly weight optimization when its slot
(policy ``optimization.day``/``hour``, tenant time; Sunday 02:00 by default) has passed.
Operators edit or disable it in the admin (Periodic tasks)."""

from django.db import migrations

NAME = "routing: run due weekly weight optimizations"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    from django.utils import timezone

    hourly, _ = CrontabSchedule.objects.get_or_create(
        minute="5",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "routing.learning.tasks.run_due_optimizations",
            "crontab": hourly,
            "description": "Queue the weekly weight optimization of each tenant whose slot "
            "(Sunday 02:00 tenant time unless its policy says otherwise) has passed.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0014_weight_optimization"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
