"""The semantic cache's entries (pgvector, HNSW cosine per vector size), and the beat
schedule that expires and caps them (every 10 minutes; editable in the admin)."""

import django.db.models.deletion
import pgvector.django.indexes
import pgvector.django.vector
from django.db import migrations, models

EXPIRE = "routing: expire and cap semantic cache entries"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    from django.utils import timezone

    every_10_min, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=EXPIRE,
        defaults={
            "task": "routing.cache.tasks.expire_semantic_cache",
            "interval": every_10_min,
            "description": "Delete expired semantic cache entries and each tenant's oldest "
            "beyond its cap.",
        },
    )
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=EXPIRE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0009_policy_cache"),
        ("tenants", "0002_api_key_verbose_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="CacheEntry",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("partition", models.CharField(max_length=64)),
                ("model", models.CharField(max_length=260)),
                ("provider", models.CharField(blank=True, max_length=64)),
                ("prompt", models.TextField()),
                ("embedder", models.CharField(max_length=100)),
                (
                    "embedding",
                    pgvector.django.vector.VectorField(blank=True, dimensions=256, null=True),
                ),
                (
                    "embedding_384",
                    pgvector.django.vector.VectorField(blank=True, dimensions=384, null=True),
                ),
                (
                    "embedding_1536",
                    pgvector.django.vector.VectorField(blank=True, dimensions=1536, null=True),
                ),
                ("response", models.JSONField()),
                ("prompt_tokens", models.PositiveIntegerField(default=0)),
                ("completion_tokens", models.PositiveIntegerField(default=0)),
                ("cost_usd", models.DecimalField(decimal_places=10, default=0, max_digits=18)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("expires_at", models.DateTimeField(db_index=True)),
                ("hits", models.PositiveIntegerField(default=0)),
                ("last_hit_at", models.DateTimeField(blank=True, null=True)),
                (
                    "tenant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "cache entries",
                "indexes": [
                    models.Index(
                        fields=["tenant", "partition", "embedder", "expires_at"],
                        name="cache_partition_idx",
                    ),
                    models.Index(fields=["tenant", "-created_at"], name="cache_tenant_created_idx"),
                    models.Index(fields=["tenant", "model"], name="cache_tenant_model_idx"),
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["embedding"],
                        m=16,
                        name="cache_embedding_hnsw",
                        opclasses=["vector_cosine_ops"],
                    ),
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["embedding_384"],
                        m=16,
                        name="cache_embedding_384_hnsw",
                        opclasses=["vector_cosine_ops"],
                    ),
                    pgvector.django.indexes.HnswIndex(
                        ef_construction=64,
                        fields=["embedding_1536"],
                        m=16,
                        name="cache_embedding_1536_hnsw",
                        opclasses=["vector_cosine_ops"],
                    ),
                ],
            },
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
