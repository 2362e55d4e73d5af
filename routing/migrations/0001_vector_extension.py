from __future__ import annotations

from django.db import migrations

from aura.pgvector import CreateVectorExtension


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [CreateVectorExtension()]
