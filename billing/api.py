"""Billing API: budgets, budget alerts, usage records (JSON or CSV) and spend summaries.

Tenant endpoints read with the viewer role and write with admin. ``operator/...`` endpoints
are for superusers acting across tenants (session login, no API key); everyone else gets
403 there. Every 400 names the field: ``{"<field>": ["message"]}``.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.core.validators import URLValidator
from django.db.models import QuerySet
from django.http import Http404, HttpResponseBase, StreamingHttpResponse
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import permissions, renderers, serializers, status
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from aura.errors import DomainError
from billing import selectors
from billing.models import Budget, BudgetAlert, UsageRecord
from billing.services import BudgetError, budget_create, budget_delete, budget_update
from billing.usage import COLUMNS
from routing.catalog.services import base_url_check, tenant_allows_private_base_urls
from tenants.auth import KeyPrincipal
from tenants.models import ApiKey, Role, Tenant
from tenants.scoping import TENANT_HEADER, TenantScopedAPIView

USAGE_MAX_LIMIT = 1000

# --------------------------------------------------------------------------- budgets


class TenantApiKeyField(serializers.PrimaryKeyRelatedField):
    """The id of one of the caller's tenant's keys; any other id is "does not exist"."""

    default_error_messages = {
        "does_not_exist": "No API key with id {pk_value} in this tenant.",
        "incorrect_type": "Expected the id of an API key, got {data_type}.",
    }

    def get_queryset(self) -> QuerySet[ApiKey]:
        tenant: Tenant = self.context["tenant"]
        return ApiKey.objects.for_tenant(tenant)


class BudgetInput(serializers.Serializer):
    api_key = TenantApiKeyField(allow_null=True, required=False, default=None)
    period = serializers.ChoiceField(choices=Budget.Period.choices)
    limit_usd = serializers.DecimalField(max_digits=14, decimal_places=6)
    mode = serializers.ChoiceField(choices=Budget.Mode.choices, default=Budget.Mode.BLOCK)
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=100),
        allow_empty=False,
        max_length=100,
        default=lambda: list(Budget.DEFAULT_THRESHOLDS),
    )
    webhook_url = serializers.URLField(
        max_length=500,
        allow_blank=True,
        allow_null=True,
        default="",
        validators=[URLValidator(schemes=["http", "https"], message="Enter an http(s) URL.")],
    )
    enabled = serializers.BooleanField(default=True)

    def validate_limit_usd(self, value: Decimal) -> Decimal:
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value

    def validate_thresholds(self, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Thresholds must be unique.")
        return sorted(value)

    def validate_webhook_url(self, value: str | None) -> str:
        # The same check as a tenant's endpoint base URL (aura.netguard, names resolved);
        # the sender re-checks and pins the address at send time.
        if value:
            allow_private = tenant_allows_private_base_urls(self.context["tenant"])
            try:
                base_url_check(value, allow_private=allow_private, field="webhook_url")
            except DomainError as exc:
                raise serializers.ValidationError(exc.message) from None
        return value or ""


def _raise_as_field_error(exc: BudgetError) -> None:
    raise serializers.ValidationError(
        {exc.param or api_settings.NON_FIELD_ERRORS_KEY: [exc.message]}, code=exc.code
    ) from None


def _iso(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).isoformat()


def budget_body(
    budget: Budget, period: selectors.CurrentPeriod | None, tz: tzinfo
) -> dict[str, Any]:
    return {
        "id": budget.pk,
        "api_key": budget.api_key_id,
        "api_key_name": budget.api_key.name if budget.api_key else None,
        "period": budget.period,
        "limit_usd": f"{budget.limit_usd:f}",
        "mode": budget.mode,
        "thresholds": budget.alert_thresholds,
        "webhook_url": budget.webhook_url,
        "enabled": budget.enabled,
        "created_at": budget.created_at,
        "updated_at": budget.updated_at,
        # Times in the tenant's zone, so a day budget visibly starts at local midnight.
        "current_period": None
        if period is None
        else {
            "start": _iso(period.start, tz),
            "end": _iso(period.end, tz),
            "resets_at": _iso(period.end, tz),
            "spent_usd": f"{Decimal(period.spent_usd).quantize(Decimal('0.000001')):f}",
        },
    }


class _BudgetViewMixin(TenantScopedAPIView):
    def render_budgets(self, budgets: list[Budget]) -> list[dict[str, Any]]:
        periods = selectors.budgets_current_periods(tenant=self.tenant, budgets=budgets)
        tz = selectors.tenant_tz(self.tenant)
        return [budget_body(b, periods[b.pk], tz) for b in budgets]


class BudgetListCreateView(_BudgetViewMixin):
    """GET/POST /api/v1/budgets"""

    required_roles = {"GET": Role.VIEWER, "POST": Role.ADMIN}

    def get(self, request: Request) -> Response:
        qs = self.scoped(Budget).select_related("api_key").order_by("period", "api_key_id", "id")
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(self.render_budgets(list(page)))

    def post(self, request: Request) -> Response:
        data = BudgetInput(data=request.data, context={"tenant": self.tenant})
        data.is_valid(raise_exception=True)
        try:
            budget = budget_create(tenant=self.tenant, **data.validated_data)
        except BudgetError as exc:
            _raise_as_field_error(exc)
        return Response(self.render_budgets([budget])[0], status=status.HTTP_201_CREATED)


class BudgetDetailView(_BudgetViewMixin):
    """GET/PATCH/DELETE /api/v1/budgets/<id>"""

    required_roles = {"GET": Role.VIEWER, "PATCH": Role.ADMIN, "DELETE": Role.ADMIN}

    def _budget(self, budget_id: int) -> Budget:
        budget = self.scoped(Budget).select_related("api_key").filter(pk=budget_id).first()
        if budget is None:
            raise Http404
        return budget

    def get(self, request: Request, budget_id: int) -> Response:
        return Response(self.render_budgets([self._budget(budget_id)])[0])

    def patch(self, request: Request, budget_id: int) -> Response:
        budget = self._budget(budget_id)
        data = BudgetInput(data=request.data, partial=True, context={"tenant": self.tenant})
        data.is_valid(raise_exception=True)
        try:
            budget = budget_update(budget=budget, changes=data.validated_data)
        except BudgetError as exc:
            _raise_as_field_error(exc)
        return Response(self.render_budgets([budget])[0])

    def delete(self, request: Request, budget_id: int) -> Response:
        budget_delete(budget=self._budget(budget_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- alerts


class AlertOutput(serializers.ModelSerializer):
    budget = serializers.SerializerMethodField()

    class Meta:
        model = BudgetAlert
        fields = [
            "id",
            "budget",
            "threshold",
            "spent_usd",
            "limit_usd",
            "period_start",
            "created_at",
            "emailed_at",
            "webhook_status",
        ]

    def get_budget(self, alert: BudgetAlert) -> dict[str, Any]:
        b = alert.budget
        return {
            "id": b.pk,
            "api_key": b.api_key_id,
            "period": b.period,
            "limit_usd": f"{b.limit_usd:f}",
            "mode": b.mode,
        }


class AlertFilterInput(serializers.Serializer):
    budget = serializers.IntegerField(required=False, min_value=1)


class AlertListView(TenantScopedAPIView):
    """GET /api/v1/alerts[?budget=<id>] — newest first, paginated."""

    def get(self, request: Request) -> Response:
        filters = AlertFilterInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = self.scoped(BudgetAlert).select_related("budget").order_by("-created_at", "-id")
        if "budget" in filters.validated_data:
            qs = qs.filter(budget_id=filters.validated_data["budget"])
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AlertOutput(page, many=True).data)


# --------------------------------------------------------------------------- usage


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``?format=csv`` / ``Accept: text/csv`` through content negotiation; the view
    answers those with a StreamingHttpResponse, which DRF does not render."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> bytes:
        raise NotImplementedError("CSV responses are streamed by the view")


def _instant(raw: str, name: str, tz: tzinfo) -> datetime:
    """An ISO 8601 date-time (naive: in ``tz``) or date (midnight in ``tz``), as UTC."""
    value: datetime | None = None
    try:
        # An unencoded "+01:00" offset arrives as " 01:00" in a query string.
        value = parse_datetime(raw) or parse_datetime(raw.replace(" ", "+"))
        if value is None:
            day = parse_date(raw)
            if day is not None:
                value = datetime.combine(day, time(0))
    except ValueError:
        value = None
    if value is None:
        raise serializers.ValidationError(
            {name: [f"Expected an ISO 8601 date-time or date, got {raw!r}."]}
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


class UsageFilterInput(serializers.Serializer):
    since = serializers.CharField(required=False)
    until = serializers.CharField(required=False)
    api_key = serializers.IntegerField(required=False, min_value=1)
    provider = serializers.CharField(required=False, max_length=64)
    model = serializers.CharField(required=False, max_length=200)
    status = serializers.ChoiceField(required=False, choices=UsageRecord.Status.choices)
    kind = serializers.CharField(required=False, max_length=16)
    # How many records: the page size (JSON) or the row count (CSV). ``page_size`` is the
    # older name of the JSON page size.
    limit = serializers.IntegerField(required=False, min_value=1, max_value=USAGE_MAX_LIMIT)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=USAGE_MAX_LIMIT)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        tz: tzinfo = self.context["tz"]
        for name in ("since", "until"):
            if name in attrs:
                attrs[name] = _instant(attrs[name], name, tz)
        if "since" in attrs and "until" in attrs and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"since": ["Must not be after until."]})
        if "api_key" in attrs:
            attrs["api_key_id"] = attrs.pop("api_key")
        return attrs


def _usage_limits(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """Split validated usage parameters into record filters and limit/page_size."""
    criteria = dict(values)
    limits: dict[str, int] = {
        name: criteria.pop(name) for name in ("limit", "page_size") if name in criteria
    }
    return criteria, limits


class UsageOutput(serializers.ModelSerializer):
    class Meta:
        model = UsageRecord
        # The columns the gateway writes, minus the tenant (implicit here).
        fields = [
            "id",
            *("api_key" if c == "api_key_id" else c for c in COLUMNS if c != "tenant_id"),
        ]


class OperatorUsageOutput(UsageOutput):
    tenant = serializers.CharField(source="tenant.slug")

    class Meta(UsageOutput.Meta):
        fields = ["tenant", *UsageOutput.Meta.fields]


class UsagePagination(CursorPagination):
    # Append-only table: a cursor stays correct while new rows arrive, unlike page numbers.
    ordering = ("-created_at", "-id")
    page_size = 50

    def __init__(self, limit: int | None = None) -> None:
        # Validated by UsageFilterInput; the next/previous links keep the query string.
        if limit is not None:
            self.page_size = limit


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(header: list[str], chunks: Iterator[list[list[Any]]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for chunk in chunks:
        yield "".join(writer.writerow(row) for row in chunk)


def _next_chunk(chunks: Iterator[list[list[Any]]]) -> list[list[Any]] | None:
    return next(chunks, None)


async def _csv_lines_async(
    header: list[str], chunks: Iterator[list[list[Any]]]
) -> AsyncIterator[str]:
    # Under ASGI, Django would buffer a synchronous iterator whole before sending it; this
    # streams instead, running each chunk's query in the request's database thread.
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    next_chunk = sync_to_async(_next_chunk, thread_sensitive=True)
    while True:
        chunk = await next_chunk(chunks)
        if chunk is None:
            return
        yield "".join(writer.writerow(row) for row in chunk)


class _UsageViewMixin(APIView):
    renderer_classes = [*cast(list[Any], api_settings.DEFAULT_RENDERER_CLASSES), CsvRenderer]

    def wants_csv(self, request: Request) -> bool:
        return isinstance(getattr(request, "accepted_renderer", None), CsvRenderer)

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # ``response`` may also be the CSV StreamingHttpResponse, which DRF passes through.
        # Errors (400/403/404) of a CSV request are still JSON bodies.
        if isinstance(response, Response) and self.wants_csv(request):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    def usage_response(
        self,
        request: Request,
        qs: QuerySet[UsageRecord],
        *,
        filename: str,
        limits: Mapping[str, int],
        operator: bool = False,
    ) -> HttpResponseBase:
        if self.wants_csv(request):
            header = ["tenant", *selectors.CSV_COLUMNS] if operator else list(selectors.CSV_COLUMNS)
            max_rows = limits.get("limit", selectors.CSV_MAX_ROWS)
            chunks = selectors.usage_csv_chunks(qs, with_tenant=operator, max_rows=max_rows)
            content: Iterator[str] | AsyncIterator[str]
            if isinstance(request._request, ASGIRequest):
                content = _csv_lines_async(header, chunks)
            else:
                content = _csv_lines(header, chunks)
            response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            response["X-Aura-Row-Limit"] = str(selectors.CSV_MAX_ROWS)
            return response
        if operator:
            qs = qs.select_related("tenant")
        paginator = UsagePagination(limits.get("limit", limits.get("page_size")))
        page = paginator.paginate_queryset(qs, request, view=self)
        output = OperatorUsageOutput if operator else UsageOutput
        return paginator.get_paginated_response(output(page, many=True).data)


class UsageListView(_UsageViewMixin, TenantScopedAPIView):
    """GET /api/v1/usage — filters since, until, api_key, provider, model, status, kind;
    cursor-paginated JSON, or the whole filtered list as CSV with ?format=csv."""

    def get(self, request: Request) -> HttpResponseBase:
        tz = selectors.tenant_tz(self.tenant)
        filters = UsageFilterInput(data=request.query_params, context={"tz": tz})
        filters.is_valid(raise_exception=True)
        criteria, limits = _usage_limits(filters.validated_data)
        qs = selectors.usage_records(tenant_ids=[self.tenant.pk], **criteria)
        return self.usage_response(
            request, qs, filename=f"{self.tenant.slug}-usage.csv", limits=limits
        )


# --------------------------------------------------------------------------- spend


class SpendFilterInput(serializers.Serializer):
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        first, last = selectors.current_month(self.context["tz"])
        attrs.setdefault("since", first)
        attrs.setdefault("until", last)
        if attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"since": ["Must not be after until."]})
        return attrs


class SpendSummaryView(TenantScopedAPIView):
    """GET /api/v1/spend/summary?since=DATE&until=DATE (inclusive; default: this month in
    the tenant's time zone). Rollups for completed days, live usage for today."""

    def get(self, request: Request) -> Response:
        tz = selectors.tenant_tz(self.tenant)
        filters = SpendFilterInput(data=request.query_params, context={"tz": tz})
        filters.is_valid(raise_exception=True)
        since: date = filters.validated_data["since"]
        until: date = filters.validated_data["until"]
        body = selectors.spend_summary(tenant_ids=[self.tenant.pk], since=since, until=until)
        return Response({"tenant": self.tenant.slug, "timezone": str(tz), **body})


# --------------------------------------------------------------------------- operators


class IsOperator(permissions.BasePermission):
    message = "Only operators (superusers, signed in) may see every tenant."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, KeyPrincipal):
            return False
        return bool(getattr(request.user, "is_superuser", False))


class _OperatorView(APIView):
    permission_classes = [permissions.IsAuthenticated, IsOperator]

    def tenant_filter(self, request: Request) -> Tenant | None:
        slug = request.query_params.get("tenant") or request.headers.get(TENANT_HEADER)
        if not slug:
            return None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise serializers.ValidationError({"tenant": [f"No tenant with slug {slug!r}."]})
        return tenant


class OperatorUsageView(_UsageViewMixin, _OperatorView):
    """GET /api/v1/operator/usage — every tenant's usage (``tenant`` slug filter)."""

    def get(self, request: Request) -> HttpResponseBase:
        tenant = self.tenant_filter(request)
        tz = selectors.tenant_tz(tenant) if tenant else UTC
        params = {k: v for k, v in request.query_params.items() if k != "tenant"}
        filters = UsageFilterInput(data=params, context={"tz": tz})
        filters.is_valid(raise_exception=True)
        criteria, limits = _usage_limits(filters.validated_data)
        qs = selectors.usage_records(tenant_ids=[tenant.pk] if tenant else None, **criteria)
        name = f"{tenant.slug}-usage.csv" if tenant else "usage.csv"
        return self.usage_response(request, qs, filename=name, limits=limits, operator=True)


class OperatorSpendSummaryView(_OperatorView):
    """GET /api/v1/operator/spend/summary — all tenants (or ``tenant``), with a per-tenant
    breakdown; the default period is this month in UTC (or the named tenant's zone)."""

    def get(self, request: Request) -> Response:
        tenant = self.tenant_filter(request)
        tz = selectors.tenant_tz(tenant) if tenant else UTC
        filters = SpendFilterInput(data=request.query_params, context={"tz": tz})
        filters.is_valid(raise_exception=True)
        body = selectors.spend_summary(
            tenant_ids=[tenant.pk] if tenant else None,
            since=filters.validated_data["since"],
            until=filters.validated_data["until"],
            per_tenant=True,
        )
        return Response({"tenant": tenant.slug if tenant else None, "timezone": str(tz), **body})
