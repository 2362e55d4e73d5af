"""Default beat schedules for billing (operators edit them in the admin afterwards)."""

from django.db import migrations

REFRESH = "billing: refresh usage rollups"
WEEKLY = "billing: send due weekly reports"


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    from django.utils import timezone

    every_10_min, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    hourly, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="*",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.get_or_create(
        name=REFRESH,
        defaults={
            "task": "billing.tasks.refresh_rollups",
            "interval": every_10_min,
            "description": "Recompute today's and yesterday's DailyRollup rows per tenant.",
        },
    )
    PeriodicTask.objects.get_or_create(
        name=WEEKLY,
        defaults={
            "task": "billing.tasks.send_due_weekly_reports",
            "crontab": hourly,
            "description": "Queue weekly cost reports due (Monday 08:00 tenant-local).",
        },
    )
    # Historical models send no signals: tell a running DatabaseScheduler to reload.
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[REFRESH, WEEKLY]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_jobclaim_budget_budgetalert_dailyrollup_weeklyreport_and_more"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
