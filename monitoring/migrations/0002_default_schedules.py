"""Default beat schedules for provider health (operators edit them in the admin).

The probe round runs every 10 seconds and probes the endpoints that are due (each every
HEALTH_CHECK_INTERVAL seconds unless the endpoint says otherwise), so a shorter
per-endpoint interval is honoured; the rest follow from the round or run on their own."""

from django.db import migrations

ROUND = "monitoring: probe provider endpoints"
FLIPS = "monitoring: turn health flips into alerts"
SLA = "monitoring: evaluate SLA targets and anomalies"
PRUNE = "monitoring: prune old health checks"

SCHEDULES = [
    (ROUND, "monitoring.tasks.check_providers", 10, "seconds", "Probe every due endpoint."),
    (
        FLIPS,
        "monitoring.tasks.process_flips",
        1,
        "minutes",
        "Alerts from unprocessed flips (each round also enqueues this when it flipped something).",
    ),
    (
        SLA,
        "monitoring.tasks.evaluate_sla",
        1,
        "minutes",
        "SLA breaches and anomalies: raise, escalate and resolve alerts, then notify.",
    ),
    (
        PRUNE,
        "monitoring.tasks.prune_health_checks",
        1,
        "days",
        "Delete probe results older than the longest SLA window.",
    ),
]


def create_schedules(apps, schema_editor):
    from django.utils import timezone

    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    for name, task, every, period, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": interval, "description": description}
        )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
