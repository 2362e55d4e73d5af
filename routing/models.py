"""Providers, endpoints, credentials, the model catalog and per-tenant routing policy."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from tenants.models import Tenant, TenantOwned

WIRE_FORMATS = [
    ("openai", "OpenAI / OpenAI-compatible"),
    ("azure", "Azure OpenAI"),
    ("anthropic", "Anthropic Messages"),
    ("gemini", "Google Gemini"),
    ("ollama", "Ollama"),
]
# Wire formats whose servers have no authentication of their own (a key configured anyway
# is still sent: it means a proxy in front expects one).
KEYLESS_WIRE_FORMATS = frozenset({"ollama"})
API_KEY_CHOICES = [(True, "Yes"), (False, "No: keyless, routable without a credential")]
CAPABILITIES = ("chat", "tools", "vision", "json", "streaming", "embeddings")
CATEGORIES = ("code", "math", "reasoning", "extraction", "summarization", "creative", "chat")
TIERS = [("eco", "Eco"), ("balanced", "Balanced"), ("premium", "Premium")]
OBJECTIVES = [
    ("balanced", "Balanced"),
    ("minimize_cost", "Minimize cost"),
    ("maximize_quality", "Maximize quality"),
    ("minimize_latency", "Minimize latency"),
    ("custom", "Custom weights"),
]
MODEL_FALLBACKS = [
    ("same_model", "Same model only (another endpoint or provider, or the alias's targets)"),
    ("any_model", "Any model at or above the requested tier"),
]
STRATEGIES = [
    ("scored", "Scored top-1"),
    ("weighted_round_robin", "Weighted round robin"),
    ("least_in_flight", "Least in flight"),
    ("lowest_latency", "Lowest latency"),
    ("power_of_two", "Power of two choices"),
    ("consistent_hash", "Consistent hashing (session affinity)"),
    ("hedge", "Top-k hedging"),
]


class Provider(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    wire_format = models.CharField(max_length=16, choices=WIRE_FORMATS)
    default_base_url = models.URLField(max_length=500, blank=True)
    is_local = models.BooleanField(default=False, help_text="Runs on our own hardware (privacy).")
    requires_api_key = models.BooleanField(
        null=True,
        blank=True,
        choices=API_KEY_CHOICES,
        help_text="Calls need a credential. Empty: by wire format (Ollama: no, others: yes).",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def needs_api_key(self) -> bool:
        if self.requires_api_key is None:
            return self.wire_format not in KEYLESS_WIRE_FORMATS
        return self.requires_api_key


class CatalogModel(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat", "Chat"
        EMBEDDINGS = "embeddings", "Embeddings"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=200, help_text="The provider's own model id.")
    display_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHAT)
    aliases = models.JSONField(default=list, blank=True)
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cached_input_price_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    context_window = models.PositiveIntegerField(default=8192)
    max_output_tokens = models.PositiveIntegerField(default=4096)
    capabilities = models.JSONField(default=list, blank=True)
    quality = models.JSONField(default=dict, blank=True, help_text="category -> 0..1")
    tier = models.CharField(max_length=16, choices=TIERS, default="balanced")
    is_local = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    price_source = models.URLField(max_length=500, blank=True)
    price_source_date = models.DateField(null=True, blank=True)
    notes = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider__slug", "model_id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "model_id"], name="catalog_unique_model")
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        return f"{self.provider.slug}/{self.model_id}"

    def clean(self) -> None:
        bad = [c for c in self.capabilities if c not in CAPABILITIES]
        if bad:
            raise ValidationError({"capabilities": f"unknown capabilities: {', '.join(bad)}"})
        for cat, value in (self.quality or {}).items():
            if cat not in CATEGORIES:
                raise ValidationError({"quality": f"unknown category {cat!r}"})
            if not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValidationError({"quality": f"{cat} must be a number between 0 and 1"})
        if not isinstance(self.aliases, list) or not all(isinstance(a, str) for a in self.aliases):
            raise ValidationError({"aliases": "must be a list of strings"})


HEALTH_CHECK_MODES = [
    ("models", "List models"),
    ("completion", "1-token completion"),
    ("off", "Off"),
]


class ProviderEndpoint(models.Model):
    """One base URL of a provider. Platform-wide (tenant empty) or a tenant's own (BYOK)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="endpoints")
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: platform endpoint for every tenant. Set: this tenant's own.",
    )
    name = models.CharField(max_length=100)
    base_url = models.URLField(max_length=500)
    api_version = models.CharField(max_length=32, blank=True, help_text="Azure api-version.")
    deployments = models.JSONField(
        default=dict, blank=True, help_text="Azure: catalog model id -> deployment name."
    )
    extra_headers = models.JSONField(default=dict, blank=True)
    served_models = models.ManyToManyField(
        CatalogModel,
        blank=True,
        related_name="endpoints",
        help_text="Models served here. Empty: every model of the provider.",
    )
    connect_timeout = models.FloatField(default=5.0)
    first_byte_timeout = models.FloatField(default=60.0)
    total_timeout = models.FloatField(default=300.0)
    max_retries = models.PositiveSmallIntegerField(default=2)
    weight = models.FloatField(default=1.0, help_text="Weighted round robin share.")
    max_in_flight = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Calls at once per gateway process before requests queue by priority. "
        "Empty: the SHED_MAX_IN_FLIGHT setting; 0: no limit.",
    )
    requires_api_key = models.BooleanField(
        null=True,
        blank=True,
        choices=API_KEY_CHOICES,
        help_text="Calls need a credential. Empty: as the provider says.",
    )
    enabled = models.BooleanField(default=True)
    # Health checks (monitoring): empty / null fields take the HEALTH_CHECK_* settings.
    health_check_mode = models.CharField(
        max_length=16,
        choices=HEALTH_CHECK_MODES,
        blank=True,
        help_text="How to probe: list models (free), a 1-token completion (billed), or not "
        "at all. Empty: HEALTH_CHECK_MODE.",
    )
    health_check_model = models.CharField(
        max_length=200,
        blank=True,
        help_text="Completion probes: the model to ask. Empty: the cheapest one served here.",
    )
    health_check_interval = models.FloatField(
        null=True, blank=True, help_text="Seconds between probes. Empty: HEALTH_CHECK_INTERVAL."
    )
    health_check_timeout = models.FloatField(
        null=True, blank=True, help_text="Seconds a probe may take. Empty: HEALTH_CHECK_TIMEOUT."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider__slug", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "tenant", "name"],
                name="endpoint_unique_name",
                nulls_distinct=False,  # two *platform* endpoints may not share a name either
            )
        ]

    def __str__(self) -> str:
        owner = self.tenant.slug if self.tenant is not None else "platform"
        return f"{self.provider.slug}:{self.name} ({owner})"

    @property
    def needs_api_key(self) -> bool:
        if self.requires_api_key is None:
            return self.provider.needs_api_key
        return self.requires_api_key


class Credential(models.Model):
    """A provider API key, encrypted at rest (aura.crypto), bound to its row, write-only."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="credentials")
    endpoint = models.ForeignKey(
        ProviderEndpoint,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="credentials",
        help_text="Empty: used for every endpoint of the provider it is visible to.",
    )
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty: platform credential. Set: the tenant's own key (BYOK).",
    )
    name = models.CharField(max_length=100)
    ciphertext = models.TextField(editable=False)
    last4 = models.CharField(max_length=4, editable=False, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider__slug", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "tenant", "endpoint", "name"],
                name="credential_unique_name",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider.slug}:{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"••••{self.last4}" if self.last4 else "••••"


class RoutingPolicy(TenantOwned):
    """A tenant's routing policy; one row per tenant, versioned in WeightHistory."""

    objective = models.CharField(max_length=32, choices=OBJECTIVES, default="balanced")
    weight_quality = models.FloatField(default=0.4)
    weight_cost = models.FloatField(default=0.3)
    weight_latency = models.FloatField(default=0.3)
    allowed_providers = models.JSONField(null=True, blank=True, help_text="null = all")
    denied_providers = models.JSONField(default=list, blank=True)
    allowed_models = models.JSONField(null=True, blank=True, help_text="null = all")
    denied_models = models.JSONField(default=list, blank=True)
    local_only = models.BooleanField(default=False)
    # Ten decimal places like usage costs: a cap below a millionth of a dollar is kept.
    max_cost_per_request = models.DecimalField(
        max_digits=18, decimal_places=10, null=True, blank=True
    )
    min_quality = models.FloatField(null=True, blank=True)
    fallback_depth = models.PositiveSmallIntegerField(default=2)
    model_fallback = models.CharField(
        max_length=16,
        choices=MODEL_FALLBACKS,
        default="same_model",
        help_text="What a request naming a model may fall back to.",
    )
    strategy = models.CharField(max_length=32, choices=STRATEGIES, default="scored")
    hedge_k = models.PositiveSmallIntegerField(default=2)
    aliases = models.JSONField(default=dict, blank=True, help_text="alias -> [model, ...]")
    # No budgets here: they are billing.Budget rows (the policy document shows the
    # tenant-wide ones, see routing.policy.services.policy_state).
    rate_limits = models.JSONField(
        default=dict, blank=True, help_text="rpm / tpm (tenant), key_rpm / key_tpm (each key)."
    )
    cache = models.JSONField(
        default=dict,
        blank=True,
        help_text="Response cache: mode (off | exact | semantic), ttl_seconds, "
        "similarity_threshold, embedder. Empty = off.",
    )
    quality_target = models.FloatField(
        null=True,
        blank=True,
        help_text="Relative quality target: candidates predicted within this fraction of the "
        "best one (e.g. 0.95) come first, cheapest first. Empty: the objective decides.",
    )
    learning = models.JSONField(
        default=dict,
        blank=True,
        help_text="Learned routing: enabled, store_prompts (both false by default).",
    )
    optimization = models.JSONField(
        default=dict,
        blank=True,
        help_text="Weekly weight optimization: mode (off | propose | apply), method "
        "(outcome | variance), goal, quality_target, day, hour, window_days.",
    )
    allow_private_base_urls = models.BooleanField(
        default=False, help_text="Operator only: let this tenant's endpoints use private addresses."
    )
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "routing policies"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="policy_one_per_tenant")]

    def __str__(self) -> str:
        return f"policy of {self.tenant.name} (v{self.version})"

    @property
    def weights(self) -> dict[str, float]:
        return {
            "quality": self.weight_quality,
            "cost": self.weight_cost,
            "latency": self.weight_latency,
        }


class WeightHistory(TenantOwned):
    version = models.PositiveIntegerField()
    weights = models.JSONField()
    source = models.CharField(max_length=32, default="manual")  # manual | import | optimizer
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]
        verbose_name_plural = "weight history"

    def __str__(self) -> str:
        return f"weights v{self.version} ({self.source})"


class RoutingOutcome(TenantOwned):
    """One observed outcome of a model (recorded by the gateway or POST /router/record)."""

    model_key = models.CharField(max_length=260)
    success = models.BooleanField()
    latency_ms = models.FloatField()
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    quality_score = models.FloatField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, default="gateway")  # gateway | api
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "model_key", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.model_key} {'ok' if self.success else 'failed'} ({self.latency_ms:.0f} ms)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_key,
            "success": self.success,
            "latency_ms": self.latency_ms,
            "cost_usd": float(self.cost_usd),
            "quality_score": self.quality_score,
            "created_at": self.created_at,
        }


# The semantic cache's rows live in routing.cache; imported here so Django registers them.
from routing.cache.models import CacheEntry  # noqa: E402, F401
from routing.learning.models import (  # noqa: E402, F401
    OutcomeImport,
    OutcomeMemory,
    WeightOptimization,
)
