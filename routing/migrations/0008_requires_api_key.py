from typing import Any

from django.db import migrations, models

API_KEY_CHOICES = [(True, "Yes"), (False, "No: keyless, routable without a credential")]


def local_providers_stay_keyless(apps: Any, schema_editor: Any) -> None:
    # Before this field, every `is_local` provider was routable without a credential;
    # keep it so for existing rows (new ones say it explicitly).
    Provider = apps.get_model("routing", "Provider")
    Provider.objects.filter(is_local=True).exclude(wire_format="ollama").update(
        requires_api_key=False
    )


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0007_policy_cost_cap_precision_weight_history_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="provider",
            name="requires_api_key",
            field=models.BooleanField(
                blank=True,
                choices=API_KEY_CHOICES,
                help_text="Calls need a credential. Empty: by wire format (Ollama: no, others: yes).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="providerendpoint",
            name="requires_api_key",
            field=models.BooleanField(
                blank=True,
                choices=API_KEY_CHOICES,
                help_text="Calls need a credential. Empty: as the provider says.",
                null=True,
            ),
        ),
        migrations.RunPython(local_providers_stay_keyless, migrations.RunPython.noop),
    ]
