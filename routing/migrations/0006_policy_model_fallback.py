from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0005_budgets_only_in_billing"),
    ]

    operations = [
        migrations.AddField(
            model_name="routingpolicy",
            name="model_fallback",
            field=models.CharField(
                choices=[
                    (
                        "same_model",
                        "Same model only (another endpoint or provider, or the alias's targets)",
                    ),
                    ("any_model", "Any model at or above the requested tier"),
                ],
                default="same_model",
                help_text="What a request naming a model may fall back to.",
                max_length=16,
            ),
        ),
    ]
