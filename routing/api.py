"""Router API: dry-run routing decisions (route, route/batch, router/select), outcomes and
metrics. The policy and weights views are in routing.policy.api.

Reads need the viewer role, writes admin. ``route``, ``route/batch`` and ``router/select``
are POST/GET reads: they explain the decision the gateway would make and call no provider.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from aura.errors import DomainError
from routing import engine, selectors
from routing.gateway.context import RoutingContext, cache
from routing.gateway.requests import (
    InvalidRequest,
    route_request_for_chat,
    route_request_for_embeddings,
    validate_chat,
    validate_embeddings,
)

if TYPE_CHECKING:
    from routing.learning.prediction import Learned
from routing.policy.api import json_object
from routing.policy.services import (
    routing_outcome_record,
)
from tenants.models import Role
from tenants.scoping import TenantScopedAPIView

MAX_BATCH = 100
MAX_OUTCOME_LATENCY_MS = 86_400_000.0  # a day
MAX_OUTCOME_COST_USD = 1_000_000
METRICS_DEFAULT_WINDOW = timedelta(days=7)
# Output-only keys of the policy body: ignored on PUT/PATCH so a GET body can be sent back.
_HINT_HEADERS = {
    "objective": "X-Aura-Objective",
    "session_id": "X-Aura-Session-Id",
    "max_cost": "X-Aura-Max-Cost",
}
_HINT_KEYS = ("objective", "session_id", "max_cost", "tier")


# --------------------------------------------------------------------------- weights


# --------------------------------------------------------------------------- route


def _hints(body: Mapping[str, Any], request: Request) -> dict[str, str]:
    """Routing hints: the body's ``aura`` object wins over the x-aura-* headers."""
    hints: dict[str, str] = {}
    for name, header in _HINT_HEADERS.items():
        value = request.headers.get(header)
        if value:
            hints[name] = value
    aura = body.get("aura")
    if aura is None:
        return hints
    if not isinstance(aura, Mapping):
        raise InvalidRequest("'aura' must be an object of routing hints.", "aura")
    for key, value in aura.items():
        if key not in _HINT_KEYS:
            raise InvalidRequest(
                f"Unknown routing hint 'aura.{key}'; expected any of {', '.join(_HINT_KEYS)}.",
                f"aura.{key}",
            )
        if value is None:
            continue
        if key == "max_cost" and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidRequest(f"'aura.{key}' must be a string.", f"aura.{key}")
        hints[key] = value
    tier = hints.get("tier")
    if tier is not None and tier not in engine.TIERS:
        raise InvalidRequest(f"'aura.tier' must be one of {', '.join(engine.TIERS)}.", "aura.tier")
    return hints


def _embedding_hints(hints: Mapping[str, str]) -> dict[str, Any]:
    objective = hints.get("objective")
    if objective is not None and objective not in engine.OBJECTIVES:
        raise InvalidRequest(
            f"objective must be one of {', '.join(engine.OBJECTIVES)}.", "x-aura-objective"
        )
    max_cost = None
    if hints.get("max_cost") is not None:
        try:
            max_cost = float(hints["max_cost"])
        except ValueError:
            raise InvalidRequest("max cost must be a number of USD.", "x-aura-max-cost") from None
    return {"objective": objective, "max_cost": max_cost, "session_id": hints.get("session_id")}


def _check_max_cost(req: engine.RouteRequest) -> None:
    if req.max_cost is not None and (not math.isfinite(req.max_cost) or req.max_cost < 0):
        raise InvalidRequest("max cost must be a non-negative number of USD.", "x-aura-max-cost")


def route_request_from_body(body: Any, request: Request) -> engine.RouteRequest:
    """Validate a chat or ``{"kind": "embeddings", ...}`` body into an engine request."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    kind = body.get("kind", "chat")
    if kind not in engine.KINDS:
        raise InvalidRequest(f"'kind' must be one of {', '.join(engine.KINDS)}.", "kind")
    hints = _hints(body, request)
    overrides = _overrides(body)
    payload = {k: v for k, v in body.items() if k not in ("kind", "aura", *_OVERRIDES)}
    try:
        if kind == "chat":
            validate_chat(payload)
            req = route_request_for_chat(payload, hints)
        else:
            validate_embeddings(payload)
            req = route_request_for_embeddings(payload)
            req = replace(req, **_embedding_hints(hints))
    except ValueError as exc:  # a RouteRequest invariant the validators did not cover
        raise InvalidRequest(str(exc)) from None
    _check_max_cost(req)
    return replace(req, **overrides) if overrides else req


# Dry-run overrides of the routing API (not gateway hints): the decision under other
# weights or another objective than the policy's, so a trade-off curve is one batch call.
_OVERRIDES = ("objective", "weights", "quality_target")


def _overrides(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    objective = body.get("objective")
    if objective is not None:
        if objective not in engine.OBJECTIVES:
            raise InvalidRequest(
                f"'objective' must be one of {', '.join(engine.OBJECTIVES)}.", "objective"
            )
        out["objective"] = objective
    weights = body.get("weights")
    if weights is not None:
        if not isinstance(weights, Mapping) or set(weights) != {"quality", "cost", "latency"}:
            raise InvalidRequest(
                "'weights' must be an object with quality, cost and latency.", "weights"
            )
        values = {k: weights[k] for k in ("quality", "cost", "latency")}
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values.values()):
            raise InvalidRequest("'weights' values must be numbers.", "weights")
        try:
            out["weights"] = engine.Weights(**{k: float(v) for k, v in values.items()})
        except ValueError as exc:
            raise InvalidRequest(f"'weights': {exc}.", "weights") from None
    target = body.get("quality_target")
    if target is not None:
        if (
            isinstance(target, bool)
            or not isinstance(target, int | float)
            or not math.isfinite(target)
            or not 0 < target <= 1
        ):
            raise InvalidRequest(
                "'quality_target' must be a number above 0 and at most 1.", "quality_target"
            )
        out["quality_target"] = float(target)
    return out


def _learned(ctx: RoutingContext, body: Any) -> Learned | None:
    """The prompt's predictions when the tenant has learning on, as the gateway makes them."""
    if not ctx.learning.enabled or not isinstance(body, Mapping):
        return None
    if body.get("kind", "chat") != "chat":
        return None
    from routing.learning.features import prompt_text  # numpy: only once learning is on
    from routing.learning.index import predictors
    from routing.learning.prediction import learned_for_text

    return learned_for_text(predictors.get(ctx.tenant_id), prompt_text(body.get("messages")))


def _routing_inputs(tenant_id: int) -> tuple[RoutingContext, engine.HealthSnapshot]:
    ctx = cache.get(tenant_id)
    return ctx, selectors.health_snapshot(ctx)


class RouteView(TenantScopedAPIView):
    """POST /api/v1/route — the decision for one request, explained; calls nothing."""

    def post(self, request: Request) -> Response:
        try:
            req = route_request_from_body(request.data, request)
        except InvalidRequest as exc:
            raise DomainError(exc.message, param=exc.param) from None
        ctx, health = _routing_inputs(self.tenant.pk)
        return Response(
            selectors.route_explain(
                ctx=ctx,
                request=req,
                health=health,
                rng=random.Random(),
                learned=_learned(ctx, request.data),
            )
        )


class RouteBatchView(TenantScopedAPIView):
    """POST /api/v1/route/batch {"requests": [...]} — one answer (or error) per item."""

    def post(self, request: Request) -> Response:
        data = json_object(request.data)
        items = data.get("requests")
        if not isinstance(items, list):
            raise DomainError("'requests' must be an array of request bodies.", param="requests")
        if len(items) > MAX_BATCH:
            raise DomainError(
                f"'requests' has {len(items)} items; at most {MAX_BATCH} are allowed.",
                param="requests",
            )
        parsed: list[engine.RouteRequest | InvalidRequest] = []
        for item in items:
            try:
                parsed.append(route_request_from_body(item, request))
            except InvalidRequest as exc:
                parsed.append(exc)
        results: list[dict[str, Any]] = []
        if any(isinstance(p, engine.RouteRequest) for p in parsed):
            ctx, health = _routing_inputs(self.tenant.pk)
            rng = random.Random()
        for item, p in zip(items, parsed, strict=True):
            if isinstance(p, InvalidRequest):
                results.append({"error": {"field": p.param, "message": p.message}})
            else:
                results.append(
                    selectors.route_explain(
                        ctx=ctx, request=p, health=health, rng=rng, learned=_learned(ctx, item)
                    )
                )
        return Response({"results": results})


class SelectView(TenantScopedAPIView):
    """GET /api/v1/router/select?model=auto&prompt=...&max_tokens=... — the short answer."""

    def get(self, request: Request) -> Response:
        params = request.query_params
        prompt = params.get("prompt")
        if not prompt:
            raise DomainError("'prompt' is required.", param="prompt")
        body: dict[str, Any] = {
            "model": params.get("model") or "auto",
            "messages": [{"role": "user", "content": prompt}],
        }
        if params.get("max_tokens"):
            try:
                body["max_tokens"] = int(params["max_tokens"])
            except ValueError:
                raise DomainError(
                    "'max_tokens' must be a positive integer.", param="max_tokens"
                ) from None
        try:
            req = route_request_from_body(body, request)
        except InvalidRequest as exc:
            raise DomainError(exc.message, param=exc.param) from None
        ctx, health = _routing_inputs(self.tenant.pk)
        decision = selectors.route_explain(ctx=ctx, request=req, health=health, rng=random.Random())
        score = next(
            (c["score"] for c in decision["candidates"] if c["model"] == decision["model"]), None
        )
        return Response(
            {
                "model": decision["model"],
                "provider": decision["provider"],
                "score": score,
                "fallbacks": decision["fallbacks"],
                "error": decision["error"],
            }
        )


# --------------------------------------------------------------------------- outcomes


class RecordInput(serializers.Serializer):
    model = serializers.CharField(max_length=260)
    # Bounded so stored outcomes can always be aggregated (a 1e308 latency overflowed the
    # metrics' averages for the whole window).
    latency_ms = serializers.FloatField(min_value=0, max_value=MAX_OUTCOME_LATENCY_MS)
    cost_usd = serializers.DecimalField(
        max_digits=18, decimal_places=10, min_value=0, max_value=MAX_OUTCOME_COST_USD
    )
    success = serializers.BooleanField()
    quality_score = serializers.FloatField(
        min_value=0, max_value=1, required=False, allow_null=True
    )
    request_id = serializers.CharField(max_length=64, required=False, allow_blank=True)


def _catalog_key(ctx: RoutingContext, name: str) -> str:
    """The candidate key ``name`` refers to (a key, or a model id served once)."""
    if any(c.key == name for c in ctx.candidates):
        return name
    keys = sorted({c.key for c in ctx.candidates if c.model_id == name})
    if len(keys) == 1:
        return keys[0]
    if keys:
        raise serializers.ValidationError(
            {"model": [f"{name!r} is served by several providers; use one of {', '.join(keys)}."]}
        )
    raise serializers.ValidationError({"model": [f"{name!r} is not a model of the catalog."]})


class RecordView(TenantScopedAPIView):
    """POST /api/v1/router/record — one observed outcome (source "api"). With the
    ``request_id`` of a request served while learning was on and a ``quality_score`` (or
    ``success: false``, quality 0), it also joins the outcome memory (``learned: true``)."""

    required_role = Role.ADMIN

    def post(self, request: Request) -> Response:
        data = RecordInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        key = _catalog_key(cache.get(self.tenant.pk), values["model"])
        request_id = values.get("request_id", "")
        with transaction.atomic():
            outcome = routing_outcome_record(
                tenant=self.tenant,
                model_key=key,
                success=values["success"],
                latency_ms=values["latency_ms"],
                cost_usd=values["cost_usd"],
                quality_score=values.get("quality_score"),
                request_id=request_id,
                source="api",
            )
            learned = False
            if request_id and (values.get("quality_score") is not None or not values["success"]):
                # numpy and the learning services load only for outcomes they could use.
                from routing.learning.services import record_remember

                learned = (
                    record_remember(
                        tenant=self.tenant,
                        request_id=request_id,
                        model=key,
                        quality=values.get("quality_score"),
                        success=values["success"],
                        cost=values["cost_usd"],
                        latency=values["latency_ms"],
                    )
                    is not None
                )
        body = outcome.as_dict()
        body.update(
            {
                "id": outcome.pk,
                "request_id": outcome.request_id,
                "source": outcome.source,
                "learned": learned,
            }
        )
        return Response(body, status=status.HTTP_201_CREATED)


def parse_instant(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        # An unencoded "+01:00" offset arrives as " 01:00" in a query string.
        value = parse_datetime(raw) or parse_datetime(raw.replace(" ", "+"))
        if value is None:
            day = parse_date(raw)
            if day is not None:
                value = datetime(day.year, day.month, day.day)
    except ValueError:
        value = None
    if value is None:
        raise DomainError(f"'{name}' must be an ISO 8601 date or date-time.", param=name)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


class MetricsView(TenantScopedAPIView):
    """GET /api/v1/router/metrics?since=ISO&until=ISO (default: the last 7 days)."""

    def get(self, request: Request) -> Response:
        until = parse_instant(request.query_params.get("until"), "until") or timezone.now()
        since = parse_instant(request.query_params.get("since"), "since") or (
            until - METRICS_DEFAULT_WINDOW
        )
        if since > until:
            raise DomainError("'since' must not be after 'until'.", param="since")
        rows = selectors.outcome_metrics(tenant_id=self.tenant.pk, since=since, until=until)
        if rows:
            ctx, health = _routing_inputs(self.tenant.pk)
            scores = selectors.model_scores(
                ctx=ctx,
                health=health,
                observed_latency_ms={r["model"]: r["mean_latency_ms"] for r in rows},
            )
            for r in rows:
                score = scores.get(r["model"])
                r["score"] = round(score, 6) if score is not None else None
        return Response({"since": since, "until": until, "models": rows})
